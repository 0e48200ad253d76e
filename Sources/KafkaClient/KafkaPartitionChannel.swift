import CRdKafka
import LedgerSupport
import Synchronization

/// One partition of a topic used as an ordered channel (cluster membership): records are
/// written synchronously to that partition, and read from its beginning without a group.
///
/// Every record goes to the same partition, so all readers see all writes in one order
/// (the broker's), whatever the topic's partition count. `write` and `partitionCount` may
/// be called from any thread; `read` from one reader thread at a time.
package final class KafkaPartitionChannel: @unchecked Sendable {
    // SAFETY: the stored properties are immutable handles; librdkafka's produce, flush,
    // metadata and consume-queue calls are thread-safe; `closed` is atomic.
    /// A record read from the channel.
    package struct Record: Sendable {
        package var offset: Int64
        package var key: [UInt8]
        package var value: [UInt8]
    }

    package let topic: String
    package let partition: Int32
    private let producer: OpaquePointer
    private let producerTopic: OpaquePointer
    private let consumer: OpaquePointer
    private let queue: OpaquePointer
    private let closed = Atomic<Bool>(false)

    /// Connects a producer and a group-less consumer of `topic`'s `partition`, read from the beginning.
    /// - Throws: `KafkaError` if librdkafka refuses the configuration or the assignment.
    package init(
        bootstrapServers: String, topic: String, partition: Int32 = 0, configuration: KafkaConfiguration = KafkaConfiguration()
    ) throws(KafkaError) {
        self.topic = topic
        self.partition = partition
        var producerSettings = KafkaConfiguration([
            "bootstrap.servers": bootstrapServers, "enable.idempotence": "true", "linger.ms": "0",
        ])
        var consumerSettings = KafkaConfiguration([
            "bootstrap.servers": bootstrapServers, "group.id": "chatledger-membership-reader", "enable.auto.commit": "false",
            "enable.auto.offset.store": "false", "enable.partition.eof": "false", "fetch.wait.max.ms": "10",
        ])
        for (key, value) in configuration.properties {
            guard !KafkaConfiguration.isGroupSetting(key), key != "fetch.wait.max.ms" else { continue }
            producerSettings[key] = value
            consumerSettings[key] = value
        }
        producerSettings["partitioner"] = nil
        producer = try makeClient(RD_KAFKA_PRODUCER, try producerSettings.makeNative())
        guard let topicHandle = rd_kafka_topic_new(producer, topic, nil) else {
            rd_kafka_destroy(producer)
            throw .produce(rd_kafka_last_error(), topic: topic)
        }
        producerTopic = topicHandle
        do {
            consumer = try makeClient(RD_KAFKA_CONSUMER, try consumerSettings.makeNative())
        } catch {
            rd_kafka_topic_destroy(topicHandle)
            rd_kafka_destroy(producer)
            throw error
        }
        rd_kafka_poll_set_consumer(consumer)
        queue = rd_kafka_queue_get_consumer(consumer)
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
        let result = rd_kafka_assign(consumer, list)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .query(result, "assign \(topic)/\(partition)")
        }
    }

    deinit {
        close()
        rd_kafka_topic_destroy(producerTopic)
        rd_kafka_destroy(producer)
        destroyConsumer(consumer, queue: queue, afterFatalError: false)
    }

    /// Writes records to the channel's partition, in order, and waits until the broker has them all.
    /// - Throws: `KafkaError` if one is refused or they are not acknowledged within `timeoutMilliseconds`.
    package func write(_ records: [(key: [UInt8], value: [UInt8])], timeoutMilliseconds: Int32 = 10_000) throws(KafkaError) {
        for record in records {
            let result = record.value.withUnsafeBytes { valueBytes in
                record.key.withUnsafeBytes { keyBytes in
                    rd_kafka_produce(
                        producerTopic, partition, RD_KAFKA_MSG_F_COPY, UnsafeMutableRawPointer(mutating: valueBytes.baseAddress),
                        valueBytes.count, keyBytes.baseAddress, keyBytes.count, nil)
                }
            }
            guard result == 0 else { throw .produce(rd_kafka_last_error(), topic: topic) }
        }
        let flushed = rd_kafka_flush(producer, timeoutMilliseconds)
        guard flushed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .flush("records to \(topic)/\(partition) not acknowledged after \(timeoutMilliseconds) ms")
        }
    }

    /// Waits up to `timeoutMilliseconds` for records and hands each to `body`, in order.
    /// - Returns: how many were handed over.
    @discardableResult
    package func read(timeoutMilliseconds: Int32, _ body: (Record) -> Void) -> Int {
        var delivered = 0
        var wait = timeoutMilliseconds
        while let message = rd_kafka_consume_queue(queue, wait) {
            defer { rd_kafka_message_destroy(message) }
            wait = 0
            let record = message.pointee
            guard record.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                Logger(label: "membership").debug("channel read", ["error": KafkaError.describe(record.err)])
                continue
            }
            let key = record.key.map { Array(UnsafeRawBufferPointer(start: $0, count: record.key_len)) } ?? []
            let value = record.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: record.len)) } ?? []
            body(Record(offset: record.offset, key: key, value: value))
            delivered += 1
        }
        return delivered
    }

    /// The number of partitions of `topic` (another topic), asked of the broker.
    /// - Throws: `KafkaError` if the broker does not know it within `timeoutMilliseconds`.
    package func partitionCount(of topic: String, timeoutMilliseconds: Int32 = 10_000) throws(KafkaError) -> Int {
        guard let handle = rd_kafka_topic_new(producer, topic, nil) else { throw .produce(rd_kafka_last_error(), topic: topic) }
        defer { rd_kafka_topic_destroy(handle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let result = rd_kafka_metadata(producer, 0, handle, &metadata, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw .query(result, "metadata of \(topic)") }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1, metadata.pointee.topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR,
            metadata.pointee.topics[0].partition_cnt > 0
        else {
            throw .query(metadata.pointee.topic_cnt == 1 ? metadata.pointee.topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, "metadata of \(topic)")
        }
        return Int(metadata.pointee.topics[0].partition_cnt)
    }

    /// Stops reading (the producer is flushed and destroyed with the channel).
    package func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        rd_kafka_flush(producer, 2_000)
    }
}
