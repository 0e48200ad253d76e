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
    // SAFETY: the handles are immutable; librdkafka's produce, flush, metadata and consume
    // calls are thread-safe; `closed` is atomic; `batch` and `failure` are used only by
    // `read`, which one reader thread calls at a time.
    /// A record read from the channel.
    package struct Record: Sendable {
        package var offset: Int64
        package var key: [UInt8]
        package var value: [UInt8]
    }

    package let topic: String
    package let partition: Int32
    private let producer: KafkaClientHandle
    private let producerTopic: OpaquePointer
    private let consumer: KafkaClientHandle
    private let closed = Atomic<Bool>(false)
    private var batch = ConsumerBatch()
    private var failure: KafkaError?

    /// Connects a producer and a group-less consumer of `topic`'s `partition`, read from the beginning.
    /// - Throws: `KafkaError` if librdkafka refuses the configuration or the assignment.
    package init(
        bootstrapServers: String, topic: String, partition: Int32 = 0, configuration: KafkaConfiguration = KafkaConfiguration()
    ) throws(KafkaError) {
        self.topic = topic
        self.partition = partition
        // The channel picks its partition itself, and reads without a group, at its own pace.
        producer = try KafkaClientHandle(
            .producer,
            KafkaConfiguration.client(
                bootstrapServers: bootstrapServers, defaults: ["enable.idempotence": "true", "linger.ms": "0"], overrides: configuration,
                excluding: { KafkaConfiguration.isGroupSetting($0) || $0 == "fetch.wait.max.ms" || $0 == "partitioner" }))
        consumer = try KafkaClientHandle(
            .consumer,
            KafkaConfiguration.client(
                bootstrapServers: bootstrapServers,
                defaults: [
                    "group.id": "chatledger-membership-reader", "enable.auto.commit": "false", "enable.auto.offset.store": "false",
                    "enable.partition.eof": "false", "fetch.wait.max.ms": "10",
                ],
                overrides: configuration, excluding: { KafkaConfiguration.isGroupSetting($0) || $0 == "fetch.wait.max.ms" }))
        guard let topicHandle = rd_kafka_topic_new(producer.client, topic, nil) else { throw .produce(rd_kafka_last_error(), topic: topic) }
        producerTopic = topicHandle
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
        let result = rd_kafka_assign(consumer.client, list)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .query(result, "assign \(topic)/\(partition)")
        }
    }

    deinit {
        close()
        rd_kafka_topic_destroy(producerTopic)
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
        let flushed = rd_kafka_flush(producer.client, timeoutMilliseconds)
        guard flushed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .flush("records to \(topic)/\(partition) not acknowledged after \(timeoutMilliseconds) ms")
        }
    }

    /// Waits up to `timeoutMilliseconds` for records and hands each to `body`, in order.
    /// - Returns: how many were handed over.
    /// - Throws: `KafkaError` when the cluster refused the login or the TLS handshake, or
    ///   librdkafka reported a fatal error (then at every later read too).
    @discardableResult
    package func read(timeoutMilliseconds: Int32, _ body: (Record) -> Void) throws(KafkaError) -> Int {
        if let failure { throw failure }
        var delivered = 0
        var wait = timeoutMilliseconds
        while batch.fill(consumer, maxMessages: 1_000, timeoutMilliseconds: wait) > 0 {
            wait = 0
            batch.drain { message in
                let record = message.pointee
                guard record.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    Logger(label: "membership").debug("channel read", ["error": KafkaError.describe(record.err)])
                    return
                }
                let key = record.key.map { Array(UnsafeRawBufferPointer(start: $0, count: record.key_len)) } ?? []
                let value = record.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: record.len)) } ?? []
                body(Record(offset: record.offset, key: key, value: value))
                delivered += 1
            }
        }
        if delivered == 0, let ended = consumer.failure {
            failure = ended
            throw ended
        }
        return delivered
    }

    /// The number of partitions of `topic` (another topic), asked of the broker.
    /// - Throws: `KafkaError` if the broker does not know it within `timeoutMilliseconds`.
    package func partitionCount(of topic: String, timeoutMilliseconds: Int32 = 10_000) throws(KafkaError) -> Int {
        guard let handle = rd_kafka_topic_new(producer.client, topic, nil) else { throw .produce(rd_kafka_last_error(), topic: topic) }
        defer { rd_kafka_topic_destroy(handle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let result = rd_kafka_metadata(producer.client, 0, handle, &metadata, timeoutMilliseconds)
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
        rd_kafka_flush(producer.client, 2_000)
    }
}
