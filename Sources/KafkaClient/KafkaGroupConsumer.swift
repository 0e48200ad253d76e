#if canImport(Glibc)
import Glibc
#endif
import CRdKafka
import LedgerSupport

/// A topic and partition: what a group consumer of several topics is assigned.
package struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    package var topic: String
    package var partition: Int32

    package init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    package static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }

    /// `topic:partition`.
    package var description: String { "\(topic):\(partition)" }
}

/// A group consumer of every topic matching a subscription (names, or regular expressions
/// starting with `^`), owned by one thread (every call, and every callback, on that thread).
///
/// Unlike `KafkaConsumer` (ingest's, whose start offsets come from the event log), its
/// progress is Kafka's committed offsets: a newly assigned partition starts after the
/// group's committed offset (or at the beginning, `auto.offset.reset=earliest`), and the
/// owner commits what it has finished with `commit`. Auto-commit and the offset store
/// are off, so nothing is committed behind the owner's back.
package final class KafkaGroupConsumer: KafkaRebalanceHandler {
    /// A message, valid only inside the `poll` callback that received it.
    package struct Message {
        package var topic: String
        package var partition: Int32
        package var offset: Int64
        /// Kafka's timestamp in ms, -1 when the message has none.
        package var timestamp: Int64
        package var key: UnsafeRawBufferPointer?
        /// Nil for a tombstone (no value).
        package var value: UnsafeRawBufferPointer?
    }

    /// Partitions currently assigned to this consumer.
    package private(set) var assignment: Set<TopicPartition> = []

    private let handle: KafkaClientHandle
    private let logger = Logger(label: "consumer")
    private let onAssigned: ([TopicPartition]) -> Void
    private let onRevoked: ([TopicPartition]) -> Void
    private var failure: Error?
    private var closed = false
    private var batch = ConsumerBatch()
    /// Topic names by librdkafka's topic handle (one String per topic, not per message).
    private var topicNames: [OpaquePointer: String] = [:]
    /// The topic handle `topicName` named last, with its name.
    private var lastTopicName: (handle: OpaquePointer, name: String)?

    /// Joins `groupId` and subscribes to `subscription`: topic names, or patterns that start
    /// with `^` (POSIX extended regular expressions, matched against every topic's name).
    ///
    /// Defaults: `enable.auto.commit=false`, `enable.auto.offset.store=false`,
    /// `auto.offset.reset=earliest`, `fetch.wait.max.ms=100`, `queued.min.messages=1000000`,
    /// `topic.metadata.refresh.interval.ms=10000` (how soon a new topic matching a pattern is
    /// consumed; librdkafka's default is 5 minutes); `configuration` overrides.
    /// - Parameters:
    ///   - onAssigned: called after partitions are assigned.
    ///   - onRevoked: called before partitions are taken away (commit what is done there).
    package init(
        bootstrapServers: String, groupId: String, subscription: [String], configuration: KafkaConfiguration = KafkaConfiguration(),
        onAssigned: @escaping ([TopicPartition]) -> Void = { _ in }, onRevoked: @escaping ([TopicPartition]) -> Void = { _ in }
    ) throws(KafkaError) {
        self.onAssigned = onAssigned
        self.onRevoked = onRevoked
        let settings = KafkaConfiguration.client(
            bootstrapServers: bootstrapServers,
            defaults: [
                "group.id": groupId, "enable.auto.commit": "false", "enable.auto.offset.store": "false", "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": "100", "enable.partition.eof": "false", "queued.min.messages": "1000000",
                "topic.metadata.refresh.interval.ms": "10000",
            ],
            overrides: configuration)
        handle = try KafkaClientHandle(.consumer, settings, rebalancing: true)
        handle.rebalanceHandler = self
        let list = rd_kafka_topic_partition_list_new(Int32(subscription.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in subscription { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let subscribed = rd_kafka_subscribe(handle.client, list)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .clientCreation("subscribe to \(subscription.joined(separator: ",")): " + KafkaError.describe(subscribed))
        }
    }

    deinit {
        close()
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands each (at most `maxMessages`)
    /// to `body`, in order per partition; serves rebalances meanwhile.
    /// - Returns: how many messages were handed over.
    /// - Throws: a fatal consumer error, or what `body` throws.
    @discardableResult
    package func poll(maxMessages: Int, timeoutMilliseconds: Int32, _ body: (Message) throws -> Void) throws -> Int {
        guard try fill(maxMessages: maxMessages, timeoutMilliseconds: timeoutMilliseconds) else { return 0 }
        var delivered = 0
        try batch.drain { pointer in
            let message = pointer.pointee
            if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                try handleError(message)
                return
            }
            let plain = KafkaConsumer.Message(pointer)
            try body(Message(
                topic: topicName(message.rkt), partition: plain.partition, offset: plain.offset, timestamp: plain.timestamp,
                key: plain.key, value: plain.value))
            delivered += 1
        }
        return delivered
    }

    /// `poll`, handing over each message itself: the caller copies its bytes where it
    /// chooses (another thread) and must `release()` every one.
    @discardableResult
    package func poll(maxMessages: Int, timeoutMilliseconds: Int32, retaining body: (RetainedMessage) -> Void) throws -> Int {
        guard try fill(maxMessages: maxMessages, timeoutMilliseconds: timeoutMilliseconds) else { return 0 }
        var delivered = 0
        try batch.drain(handingOver: { pointer in
            let message = pointer.pointee
            if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                try handleError(message)
                return false
            }
            body(RetainedMessage(pointer, topic: topicName(message.rkt)))
            delivered += 1
            return true
        })
        return delivered
    }

    /// Takes the next messages into `batch`; false when none came (rebalances and errors
    /// are served either way).
    /// - Throws: a fatal consumer error.
    private func fill(maxMessages: Int, timeoutMilliseconds: Int32) throws -> Bool {
        if let failure { throw failure }
        guard maxMessages > 0 else {
            rd_kafka_poll(handle.client, 0)  // rebalances and errors still need serving
            return false
        }
        let count = batch.fill(handle, maxMessages: maxMessages, timeoutMilliseconds: timeoutMilliseconds)
        if let failure { throw failure }
        guard count > 0 else {
            if let ended = handle.failure {
                failure = ended
                throw ended
            }
            return false
        }
        return true
    }

    /// Commits `next` (per partition, the next offset to read) to the group. Partitions no
    /// longer assigned are left out.
    /// - Parameter synchronously: wait for the broker's answer (before giving partitions up).
    /// - Throws: `KafkaError` when a synchronous commit fails.
    package func commit(_ next: [TopicPartition: Int64], synchronously: Bool = false) throws(KafkaError) {
        guard !next.isEmpty, !closed, !handle.isFatal else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(next.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in next where assignment.contains(partition) {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition).pointee.offset = offset
        }
        guard list!.pointee.cnt > 0 else { return }
        let result = rd_kafka_commit(handle.client, list, synchronously ? 0 : 1)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            if synchronously { throw .commit(result) }
            logger.debug("offset commit not sent", ["error": KafkaError.describe(result)])
            return
        }
    }

    /// The group's committed offsets of `partitions` (the next offset to read; nil where the
    /// group has none), asked of the broker.
    package func committed(_ partitions: [TopicPartition], timeoutMilliseconds: Int32 = 10_000) throws(KafkaError) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition) }
        let result = rd_kafka_committed(handle.client, list, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .commit(result) }
        var offsets: [TopicPartition: Int64] = [:]
        let elements = UnsafeBufferPointer(start: list!.pointee.elems, count: Int(list!.pointee.cnt))
        for element in elements where element.offset >= 0 {
            offsets[TopicPartition(String(cString: element.topic), element.partition)] = element.offset
        }
        return offsets
    }

    /// The partition's high watermark as last seen in fetch responses (no request).
    package func highWatermark(_ partition: TopicPartition) -> Int64? {
        var low: Int64 = -1
        var high: Int64 = -1
        let result = rd_kafka_get_watermark_offsets(handle.client, partition.topic, partition.partition, &low, &high)
        return result == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// Where the broker's log of `partition` starts now (its low watermark), asked of the
    /// broker; nil when it does not answer within `timeoutMilliseconds`.
    package func logStart(_ partition: TopicPartition, timeoutMilliseconds: Int32) -> Int64? {
        let low = try? handle.watermarks(topic: partition.topic, partition: partition.partition, timeoutMilliseconds: timeoutMilliseconds).low
        return low.flatMap { $0 >= 0 ? $0 : nil }
    }

    /// Leaves the group (revoking partitions through the callback) and stops fetching.
    package func close() {
        guard !closed else { return }
        closed = true
        guard !handle.isFatal else { return }  // see KafkaConsumer.close
        let result = rd_kafka_consumer_close(handle.client)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("consumer close", ["error": KafkaError.describe(result)])
        }
    }

    // MARK: - Internals

    private func topicName(_ topic: OpaquePointer?) -> String {
        guard let topic else { return "" }
        // A poll's messages come in runs of one partition: most find the last one's name
        // (checked against librdkafka's, as below, in case the handle was reused).
        if let last = lastTopicName, last.handle == topic, let raw = rd_kafka_topic_name(topic),
            last.name.withCString({ strcmp($0, raw) == 0 })
        {
            return last.name
        }
        let name = lookUpTopicName(topic)
        lastTopicName = (topic, name)
        return name
    }

    private func lookUpTopicName(_ topic: OpaquePointer) -> String {
        let raw = rd_kafka_topic_name(topic)
        if let known = topicNames[topic], let raw, known.withCString({ strcmp($0, raw) == 0 }) { return known }
        let name = raw.map { String(cString: $0) } ?? ""
        topicNames[topic] = name
        return name
    }

    func rebalance(_ error: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle.client)) == "COOPERATIVE"
        let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
        let partitions = elements.map { TopicPartition(String(cString: $0.topic), $0.partition) }
        let sorted = partitions.sorted()
        let names = sorted.prefix(8).map(\.description).joined(separator: ",") + (sorted.count > 8 ? ",… (\(sorted.count) in all)" : "")
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(handle.client, list) {
                    logger.error("incremental assign", ["error": String(cString: rd_kafka_error_string(error))])
                    rd_kafka_error_destroy(error)
                }
            } else {
                let result = rd_kafka_assign(handle.client, list)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR { logger.error("assign", ["error": KafkaError.describe(result)]) }
            }
            assignment.formUnion(partitions)
            logger.info("partitions assigned", ["partitions": names, "protocol": cooperative ? "cooperative" : "eager"])
            onAssigned(partitions)
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            onRevoked(partitions)
            if cooperative {
                if let error = rd_kafka_incremental_unassign(handle.client, list) {
                    logger.error("incremental unassign", ["error": String(cString: rd_kafka_error_string(error))])
                    rd_kafka_error_destroy(error)
                }
                assignment.subtract(partitions)
            } else {
                rd_kafka_assign(handle.client, nil)
                assignment.removeAll()
            }
            logger.info("partitions revoked", ["partitions": names])
        default:
            logger.error("rebalance failed", ["error": KafkaError.describe(error)])
            rd_kafka_assign(handle.client, nil)
            assignment.removeAll()
        }
    }

    private func handleError(_ message: rd_kafka_message_t) throws {
        var copy = message
        let text = String(cString: rd_kafka_message_errstr(&copy))
        if message.err == RD_KAFKA_RESP_ERR__FATAL { try checkFatal() }
        if message.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || message.err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC {
            // A pattern subscription sees topics come and go; not worth a warning each time.
            logger.debug("topic not available", ["detail": text])
            return
        }
        logger.warning("consumer error (librdkafka retries)", ["error": KafkaError.describe(message.err), "detail": text])
    }

    private func checkFatal() throws {
        guard let fatal = handle.fatalError else { return }
        failure = fatal
        throw fatal
    }
}
