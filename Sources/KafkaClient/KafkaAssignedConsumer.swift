import CRdKafka
import LedgerSupport

/// A consumer of chosen partitions of one topic, without a group (cluster mode's standby
/// replicas): the caller says which partitions to read and from where, and may change that
/// at any time. Nothing is committed. Used from one thread at a time (`assign` and `poll`
/// may alternate between threads under the caller's lock).
package final class KafkaAssignedConsumer {
    package let topic: String
    /// The partitions assigned, each with the offset it was assigned at.
    package private(set) var assignment: [Int32: Int64] = [:]
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private let logger = Logger(label: "standby-consumer")

    /// Connects a group-less consumer of `topic` that reads nothing until `assign`.
    /// - Throws: `KafkaError` if librdkafka refuses the configuration.
    package init(bootstrapServers: String, topic: String, configuration: KafkaConfiguration = KafkaConfiguration()) throws(KafkaError) {
        self.topic = topic
        var settings = KafkaConfiguration([
            "bootstrap.servers": bootstrapServers, "group.id": "chatledger-standby-reader", "enable.auto.commit": "false",
            "enable.auto.offset.store": "false", "enable.partition.eof": "false", "auto.offset.reset": "error",
        ])
        for (key, value) in configuration.properties {
            guard !KafkaConfiguration.isGroupSetting(key), key != "auto.offset.reset" else { continue }
            settings[key] = value
        }
        handle = try makeClient(RD_KAFKA_CONSUMER, try settings.makeNative())
        rd_kafka_poll_set_consumer(handle)
        queue = rd_kafka_queue_get_consumer(handle)
    }

    deinit {
        rd_kafka_assign(handle, nil)
        destroyConsumer(handle, queue: queue, afterFatalError: false)
    }

    /// Reads exactly `partitions` from here on, each from its offset (what is fetched but
    /// not yet polled for a partition dropped is discarded).
    /// - Throws: `KafkaError` if librdkafka refuses the assignment.
    package func assign(_ partitions: [Int32: Int64]) throws(KafkaError) {
        let list = rd_kafka_topic_partition_list_new(Int32(max(1, partitions.count)))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in partitions.sorted(by: { $0.key < $1.key }) {
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
        }
        let result = rd_kafka_assign(handle, list)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .query(result, "assign \(topic)") }
        assignment = partitions
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands up to `maxMessages` to
    /// `body`, in order per partition. Errors (an offset out of range, a broker going away)
    /// are returned, not thrown: the caller decides what they mean.
    /// - Returns: the messages handed over, and the partitions reported out of range.
    package func poll(
        maxMessages: Int, timeoutMilliseconds: Int32, _ body: (KafkaConsumer.Message) throws -> Void
    ) rethrows -> (delivered: Int, outOfRange: [Int32]) {
        var delivered = 0
        var outOfRange: [Int32] = []
        var wait = timeoutMilliseconds
        while delivered < maxMessages, let pointer = rd_kafka_consume_queue(queue, wait) {
            defer { rd_kafka_message_destroy(pointer) }
            wait = 0
            let message = pointer.pointee
            guard message.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                if message.err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE || message.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
                    outOfRange.append(message.partition)
                } else {
                    logger.debug("standby read", ["error": KafkaError.describe(message.err)])
                }
                continue
            }
            var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            // The timestamp is found from the message's address: the original pointer, never a copy.
            let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
            try body(KafkaConsumer.Message(
                partition: message.partition, offset: message.offset, timestamp: timestamp,
                key: message.key.map { UnsafeRawBufferPointer(start: $0, count: message.key_len) },
                value: message.payload.map { UnsafeRawBufferPointer(start: $0, count: message.len) }))
            delivered += 1
        }
        return (delivered, outOfRange)
    }
}
