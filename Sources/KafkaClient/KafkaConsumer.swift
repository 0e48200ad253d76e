import CRdKafka
import LedgerSupport

/// A group consumer of one topic, owned by one thread (every call, and every callback it
/// makes, happens on that thread).
///
/// Start offsets come from the application, not from Kafka: when partitions are assigned,
/// `startOffset` is asked for each (the event log's last offset + 1, or nil for the
/// beginning) and the offsets are set **before** librdkafka is told to assign, with the
/// eager and the cooperative-sticky protocols alike. Auto-commit and auto offset store
/// are off; `commitAsync` reports progress to Kafka for lag monitoring only.
package final class KafkaConsumer: KafkaRebalanceHandler {
    /// A message, valid only inside the `poll` callback that received it.
    package struct Message {
        package var partition: Int32
        package var offset: Int64
        /// Kafka's timestamp in ms, -1 when the message has none.
        package var timestamp: Int64
        package var key: UnsafeRawBufferPointer?
        /// Nil for a tombstone (no value).
        package var value: UnsafeRawBufferPointer?
    }

    package let topic: String
    /// Partitions currently assigned to this consumer.
    package private(set) var assignment: Set<Int32> = []
    /// Assigned partitions whose next offset the broker does not have (with
    /// `auto.offset.reset=error`), each with the offset asked for. librdkafka stops
    /// fetching such a partition until `restart(partition:at:)`.
    package private(set) var offsetsOutOfRange: [Int32: Int64] = [:]

    private let handle: KafkaClientHandle
    private let logger = Logger(label: "consumer")
    private let startOffset: (Int32) throws -> Int64?
    private let onAssigned: ([Int32]) -> Void
    private let onRevoked: ([Int32]) -> Void
    private var failure: Error?
    private var closed = false
    private var batch = ConsumerBatch()

    /// Joins `groupId` and subscribes to `topic`.
    ///
    /// Defaults: `enable.auto.commit=false`, `enable.auto.offset.store=false`,
    /// `auto.offset.reset=earliest`, `fetch.wait.max.ms=100`, `queued.min.messages=1000000`;
    /// `configuration` overrides (e.g. `partition.assignment.strategy=cooperative-sticky`,
    /// `group.instance.id`).
    ///
    /// `queued.min.messages`: librdkafka stops fetching a partition whose prefetch queue
    /// holds that many messages and resumes only after a backoff of hundreds of ms, so with
    /// the default (100,000) a consumer that drains in large batches empties its queue and
    /// then sits idle (measured: ingest 0.11M → 0.27M events/s). The prefetch stays bounded
    /// by `queued.max.messages.kbytes` (64 MiB by default).
    /// - Parameters:
    ///   - startOffset: for a newly assigned partition, the offset to read from; nil: the beginning.
    ///   - onAssigned: called after partitions are assigned (with their start offsets set).
    ///   - onRevoked: called before partitions are taken away.
    package init(
        bootstrapServers: String, groupId: String, topic: String, configuration: KafkaConfiguration = KafkaConfiguration(),
        startOffset: @escaping (Int32) throws -> Int64?, onAssigned: @escaping ([Int32]) -> Void = { _ in },
        onRevoked: @escaping ([Int32]) -> Void = { _ in }
    ) throws(KafkaError) {
        self.topic = topic
        self.startOffset = startOffset
        self.onAssigned = onAssigned
        self.onRevoked = onRevoked
        let settings = KafkaConfiguration.client(
            bootstrapServers: bootstrapServers,
            defaults: [
                "group.id": groupId, "enable.auto.commit": "false", "enable.auto.offset.store": "false", "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": "100", "enable.partition.eof": "false", "queued.min.messages": "1000000",
            ],
            overrides: configuration)
        handle = try KafkaClientHandle(.consumer, settings, rebalancing: true)
        handle.rebalanceHandler = self
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        let subscribed = rd_kafka_subscribe(handle.client, list)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .clientCreation("subscribe to \(topic): " + KafkaError.describe(subscribed))
        }
    }

    deinit {
        close()
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands each (at most
    /// `maxMessages`) to `body`, in order per partition; serves rebalances meanwhile.
    /// - Returns: how many messages were handed over.
    /// - Throws: a fatal consumer error, a `startOffset` failure, or what `body` throws.
    @discardableResult
    package func poll(maxMessages: Int, timeoutMilliseconds: Int32, _ body: (Message) throws -> Void) throws -> Int {
        if let failure { throw failure }
        let count = batch.fill(handle, maxMessages: maxMessages, timeoutMilliseconds: timeoutMilliseconds)
        if let failure { throw failure }
        guard count > 0 else {
            if let ended = handle.failure {
                failure = ended
                throw ended
            }
            return 0
        }
        var delivered = 0
        try batch.drain { pointer in
            let message = pointer.pointee
            if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                try handleError(message)
                return
            }
            try body(Message(pointer))
            delivered += 1
        }
        return delivered
    }

    /// Tells Kafka how far this consumer got (`next` is the next offset to read, per
    /// partition), without waiting. For lag monitoring only.
    package func commitAsync(_ next: [Int32: Int64]) {
        guard !next.isEmpty, !closed else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(next.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in next where assignment.contains(partition) {
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
        }
        guard list!.pointee.cnt > 0 else { return }
        let result = rd_kafka_commit(handle.client, list, 1)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.debug("offset commit not sent", ["error": KafkaError.describe(result)])
        }
    }

    /// The partition's high watermark as last seen in fetch responses (no request).
    package func highWatermark(partition: Int32) -> Int64? {
        var low: Int64 = -1
        var high: Int64 = -1
        let result = rd_kafka_get_watermark_offsets(handle.client, topic, partition, &low, &high)
        return result == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// The broker's log start offset and high watermark of `partition`, asked of the
    /// broker (blocks up to `timeoutMilliseconds`).
    /// - Throws: `KafkaError` if the broker does not answer in time.
    package func queryWatermarks(partition: Int32, timeoutMilliseconds: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        try handle.watermarks(topic: topic, partition: partition, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Starts fetching an assigned partition again at `offset` (after it went out of
    /// range). librdkafka cannot seek a partition it stopped, so the partition is assigned
    /// anew: on its own with the cooperative protocol; with the eager one the whole
    /// assignment is, each other partition at `next(partition)`, the next offset the
    /// application needs (call this between batches, when nothing consumed is unhandled).
    /// - Throws: `KafkaError` if librdkafka refuses the assignment, or what `next` throws.
    package func restart(partition: Int32, at offset: Int64, others next: (Int32) throws -> Int64) throws {
        guard assignment.contains(partition) else { return }
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle.client)) == "COOPERATIVE"
        let list = rd_kafka_topic_partition_list_new(Int32(assignment.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if cooperative {
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
            if let error = rd_kafka_incremental_unassign(handle.client, list) { throw KafkaError.assignment(error, "unassign \(topic)/\(partition)") }
            if let error = rd_kafka_incremental_assign(handle.client, list) { throw KafkaError.assignment(error, "assign \(topic)/\(partition) at \(offset)") }
        } else {
            for assigned in assignment.sorted() {
                rd_kafka_topic_partition_list_add(list, topic, assigned).pointee.offset =
                    assigned == partition ? offset : try next(assigned)
            }
            let result = rd_kafka_assign(handle.client, list)
            guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.query(result, "assign \(topic) with \(partition) at \(offset)") }
        }
        offsetsOutOfRange[partition] = nil
        logger.info("partition restarted", ["partition": partition, "offset": offset, "protocol": cooperative ? "cooperative" : "eager"])
    }

    /// Leaves the group (revoking partitions through the callback) and stops fetching.
    package func close() {
        guard !closed else { return }
        closed = true
        // After a fatal error there is nothing to leave cleanly (see `KafkaClientHandle.deinit`).
        guard !handle.isFatal else { return }
        let result = rd_kafka_consumer_close(handle.client)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("consumer close", ["error": KafkaError.describe(result)])
        }
    }

    // MARK: - Callbacks

    func rebalance(_ error: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle.client)) == "COOPERATIVE"
        let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
        let partitions = elements.map(\.partition)
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            do {
                for index in elements.indices {
                    elements[index].offset = try startOffset(elements[index].partition) ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
                }
            } catch {
                // Without a trustworthy start offset nothing may be consumed: stop.
                failure = error
                logger.error("cannot start partitions", ["partitions": partitions, "error": error])
                return
            }
            if cooperative {
                report(rd_kafka_incremental_assign(handle.client, list), "incremental assign")
            } else {
                let result = rd_kafka_assign(handle.client, list)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR { logger.error("assign", ["error": KafkaError.describe(result)]) }
            }
            assignment.formUnion(partitions)
            logger.info(
                "partitions assigned", ["partitions": partitions.map(String.init).joined(separator: ","),
                                        "protocol": cooperative ? "cooperative" : "eager",
                                        "start": elements.map { "\($0.partition):\($0.offset)" }.joined(separator: ",")])
            onAssigned(partitions)
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            onRevoked(partitions)
            for partition in partitions { offsetsOutOfRange[partition] = nil }
            if cooperative {
                report(rd_kafka_incremental_unassign(handle.client, list), "incremental unassign")
                assignment.subtract(partitions)
            } else {
                rd_kafka_assign(handle.client, nil)
                assignment.removeAll()
            }
            logger.info("partitions revoked", ["partitions": partitions.map(String.init).joined(separator: ",")])
        default:
            logger.error("rebalance failed", ["error": KafkaError.describe(error)])
            rd_kafka_assign(handle.client, nil)
            assignment.removeAll()
            offsetsOutOfRange.removeAll()
        }
    }

    private func report(_ error: OpaquePointer?, _ what: String) {
        guard let error else { return }
        logger.error(what, ["error": String(cString: rd_kafka_error_string(error))])
        rd_kafka_error_destroy(error)
    }

    /// Raises a real fatal error inside librdkafka (`rd_kafka_test_fatal_error`), as a
    /// fenced static member would, so tests can show how it surfaces. Not for production.
    package func raiseFatalErrorForTesting(code: Int32, reason: String) {
        _ = rd_kafka_test_fatal_error(handle.client, rd_kafka_resp_err_t(rawValue: code), reason)
    }

    private func handleError(_ message: rd_kafka_message_t) throws {
        var copy = message
        let text = String(cString: rd_kafka_message_errstr(&copy))
        if message.err == RD_KAFKA_RESP_ERR__FATAL {
            try checkFatal()
        }
        if message.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
            // The broker no longer (or not yet) has the offset asked for, and
            // `auto.offset.reset=error` leaves what to do to the application.
            if assignment.contains(message.partition) { offsetsOutOfRange[message.partition] = message.offset }
            logger.notice("offset out of range at the broker", ["partition": message.partition, "offset": message.offset, "detail": text])
            return
        }
        logger.warning("consumer error (librdkafka retries)", ["error": KafkaError.describe(message.err), "detail": text, "partition": message.partition])
    }

    private func checkFatal() throws {
        guard let fatal = handle.fatalError else { return }
        failure = fatal
        throw fatal
    }
}
