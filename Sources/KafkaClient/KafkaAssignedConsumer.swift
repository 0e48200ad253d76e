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
    private let handle: KafkaClientHandle
    private var batch = ConsumerBatch()
    private var failure: KafkaError?
    private let logger = Logger(label: "standby-consumer")

    /// Connects a group-less consumer of `topic` that reads nothing until `assign`.
    ///
    /// Of `configuration`, the group's settings (`KafkaConfiguration.isGroupSetting`) and
    /// `auto.offset.reset` are left out: an offset the broker no longer has is reported
    /// (`poll`'s `outOfRange`), never skipped.
    /// - Throws: `KafkaError` if librdkafka refuses the configuration.
    package init(bootstrapServers: String, topic: String, configuration: KafkaConfiguration = KafkaConfiguration()) throws(KafkaError) {
        self.topic = topic
        let settings = KafkaConfiguration.client(
            bootstrapServers: bootstrapServers,
            defaults: [
                "group.id": "chatledger-standby-reader", "enable.auto.commit": "false", "enable.auto.offset.store": "false",
                "enable.partition.eof": "false", "auto.offset.reset": "error",
            ],
            overrides: configuration, excluding: { KafkaConfiguration.isGroupSetting($0) || $0 == "auto.offset.reset" })
        handle = try KafkaClientHandle(.consumer, settings)
    }

    deinit {
        rd_kafka_assign(handle.client, nil)
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
        let result = rd_kafka_assign(handle.client, list)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .query(result, "assign \(topic)") }
        assignment = partitions
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands up to `maxMessages` to
    /// `body`, in order per partition. Errors librdkafka retries (an offset out of range, a
    /// broker going away) are returned or logged, not thrown: the caller decides what they
    /// mean.
    /// - Returns: the messages handed over, and the partitions reported out of range.
    /// - Throws: `KafkaError` when the cluster refused the login or the TLS handshake, or
    ///   librdkafka reported a fatal error (then at every later poll too); what `body` throws.
    package func poll(
        maxMessages: Int, timeoutMilliseconds: Int32, _ body: (KafkaConsumer.Message) throws -> Void
    ) throws -> (delivered: Int, outOfRange: [Int32]) {
        if let failure { throw failure }
        var delivered = 0
        var outOfRange: [Int32] = []
        let count = batch.fill(handle, maxMessages: maxMessages, timeoutMilliseconds: timeoutMilliseconds)
        guard count > 0 else {
            failure = handle.failure
            if let failure { throw failure }
            return (0, [])
        }
        try batch.drain { pointer in
            let message = pointer.pointee
            guard message.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if message.err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE || message.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
                    outOfRange.append(message.partition)
                } else if message.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    logger.debug("standby read", ["error": KafkaError.describe(message.err)])
                }
                return
            }
            try body(KafkaConsumer.Message(pointer))
            delivered += 1
        }
        return (delivered, outOfRange)
    }
}
