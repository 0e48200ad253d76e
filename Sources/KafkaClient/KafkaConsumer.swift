import CRdKafka
import Synchronization
import LedgerSupport

/// A group consumer of one topic, owned by one thread (every call, and every callback it
/// makes, happens on that thread).
///
/// Start offsets come from the application, not from Kafka: when partitions are assigned,
/// `startOffset` is asked for each (the event log's last offset + 1, or nil for the
/// beginning) and the offsets are set **before** librdkafka is told to assign, with the
/// eager and the cooperative-sticky protocols alike. Auto-commit and auto offset store
/// are off; `commitAsync` reports progress to Kafka for lag monitoring only.
package final class KafkaConsumer {
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

    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private let logger = Logger(label: "consumer")
    private let startOffset: (Int32) throws -> Int64?
    private let onAssigned: ([Int32]) -> Void
    private let onRevoked: ([Int32]) -> Void
    private var failure: Error?
    /// Whether librdkafka reported a fatal error: the client is unusable from then on.
    private var isFatal = false
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
        var settings = KafkaConfiguration([
            "bootstrap.servers": bootstrapServers, "group.id": groupId, "enable.auto.commit": "false",
            "enable.auto.offset.store": "false", "auto.offset.reset": "earliest", "fetch.wait.max.ms": "100",
            "enable.partition.eof": "false", "queued.min.messages": "1000000",
        ])
        for (key, value) in configuration.properties { settings[key] = value }
        let conf = try settings.makeNative()
        // A box the C callbacks reach us through; it must exist before rd_kafka_new.
        let box = CallbackBox()
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(box).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { client, error, partitions, opaque in
            guard let client, let opaque, let partitions else { return }
            if let consumer = Unmanaged<CallbackBox>.fromOpaque(opaque).takeUnretainedValue().consumer {
                consumer.rebalance(error, partitions)
            } else {
                // The consumer is being deinitialized (its weak reference is already nil)
                // and its close is leaving the group: librdkafka waits until the partitions
                // are given up, which the consumer can no longer do. Without this, a close
                // reached from deinit (after `ingest` failed) blocked forever.
                KafkaConsumer.giveUp(client, partitions)
            }
        }
        rd_kafka_conf_set_error_cb(conf) { _, error, reason, opaque in
            guard let refused = consumerError(error, reason), let opaque else { return }
            Unmanaged<CallbackBox>.fromOpaque(opaque).takeUnretainedValue().authenticationFailure.withLock {
                if $0 == nil { $0 = refused }
            }
        }
        handle = try makeClient(RD_KAFKA_CONSUMER, conf)
        rd_kafka_poll_set_consumer(handle)
        queue = rd_kafka_queue_get_consumer(handle)
        callbackBox = box
        box.consumer = self
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        let subscribed = rd_kafka_subscribe(handle, list)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .clientCreation("subscribe to \(topic): " + KafkaError.describe(subscribed))
        }
    }

    private var callbackBox: CallbackBox?

    deinit {
        close()
        destroyConsumer(handle, queue: queue, afterFatalError: isFatal)
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands each (at most
    /// `maxMessages`) to `body`, in order per partition; serves rebalances meanwhile.
    /// - Returns: how many messages were handed over.
    /// - Throws: a fatal consumer error, a `startOffset` failure, or what `body` throws.
    @discardableResult
    package func poll(maxMessages: Int, timeoutMilliseconds: Int32, _ body: (Message) throws -> Void) throws -> Int {
        if let failure { throw failure }
        let count = batch.fill(queue: queue, handle: handle, maxMessages: maxMessages, timeoutMilliseconds: timeoutMilliseconds)
        if let failure { throw failure }
        guard count > 0 else {
            try checkFatal()
            if let refused = callbackBox?.authenticationFailure.withLock({ $0 }) {
                failure = refused
                throw refused
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
            var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            // librdkafka finds the timestamp from the message's address (it lives in an
            // enclosing struct), so it must get the original pointer, never a copy.
            let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
            try body(Message(
                partition: message.partition, offset: message.offset, timestamp: timestamp,
                key: message.key.map { UnsafeRawBufferPointer(start: $0, count: message.key_len) },
                value: message.payload.map { UnsafeRawBufferPointer(start: $0, count: message.len) }))
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
        let result = rd_kafka_commit(handle, list, 1)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.debug("offset commit not sent", ["error": KafkaError.describe(result)])
        }
    }

    /// The partition's high watermark as last seen in fetch responses (no request).
    package func highWatermark(partition: Int32) -> Int64? {
        var low: Int64 = -1
        var high: Int64 = -1
        let result = rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high)
        return result == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// The broker's log start offset and high watermark of `partition`, asked of the
    /// broker (blocks up to `timeoutMilliseconds`).
    /// - Throws: `KafkaError` if the broker does not answer in time.
    package func queryWatermarks(partition: Int32, timeoutMilliseconds: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = -1
        var high: Int64 = -1
        let result = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .query(result, "watermarks of \(topic)/\(partition)") }
        return (low, high)
    }

    /// Starts fetching an assigned partition again at `offset` (after it went out of
    /// range). librdkafka cannot seek a partition it stopped, so the partition is assigned
    /// anew: on its own with the cooperative protocol; with the eager one the whole
    /// assignment is, each other partition at `next(partition)`, the next offset the
    /// application needs (call this between batches, when nothing consumed is unhandled).
    /// - Throws: `KafkaError` if librdkafka refuses the assignment, or what `next` throws.
    package func restart(partition: Int32, at offset: Int64, others next: (Int32) throws -> Int64) throws {
        guard assignment.contains(partition) else { return }
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        let list = rd_kafka_topic_partition_list_new(Int32(assignment.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if cooperative {
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
            if let error = rd_kafka_incremental_unassign(handle, list) { throw KafkaError.assignment(error, "unassign \(topic)/\(partition)") }
            if let error = rd_kafka_incremental_assign(handle, list) { throw KafkaError.assignment(error, "assign \(topic)/\(partition) at \(offset)") }
        } else {
            for assigned in assignment.sorted() {
                rd_kafka_topic_partition_list_add(list, topic, assigned).pointee.offset =
                    assigned == partition ? offset : try next(assigned)
            }
            let result = rd_kafka_assign(handle, list)
            guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.query(result, "assign \(topic) with \(partition) at \(offset)") }
        }
        offsetsOutOfRange[partition] = nil
        logger.info("partition restarted", ["partition": partition, "offset": offset, "protocol": cooperative ? "cooperative" : "eager"])
    }

    /// Leaves the group (revoking partitions through the callback) and stops fetching.
    package func close() {
        guard !closed else { return }
        closed = true
        guard !isFatal else { return }  // nothing to leave cleanly; see deinit
        let result = rd_kafka_consumer_close(handle)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("consumer close", ["error": KafkaError.describe(result)])
        }
    }

    // MARK: - Callbacks

    private func rebalance(_ error: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
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
                report(rd_kafka_incremental_assign(handle, list), "incremental assign")
            } else {
                let result = rd_kafka_assign(handle, list)
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
                report(rd_kafka_incremental_unassign(handle, list), "incremental unassign")
                assignment.subtract(partitions)
            } else {
                rd_kafka_assign(handle, nil)
                assignment.removeAll()
            }
            logger.info("partitions revoked", ["partitions": partitions.map(String.init).joined(separator: ",")])
        default:
            logger.error("rebalance failed", ["error": KafkaError.describe(error)])
            rd_kafka_assign(handle, nil)
            assignment.removeAll()
            offsetsOutOfRange.removeAll()
        }
    }

    /// Gives up `partitions` (or the whole assignment) without the application.
    private static func giveUp(_ client: OpaquePointer, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        if String(cString: rd_kafka_rebalance_protocol(client)) == "COOPERATIVE" {
            if let error = rd_kafka_incremental_unassign(client, partitions) { rd_kafka_error_destroy(error) }
        } else {
            rd_kafka_assign(client, nil)
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
        _ = rd_kafka_test_fatal_error(handle, rd_kafka_resp_err_t(rawValue: code), reason)
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
        var text = [CChar](repeating: 0, count: 512)
        let fatal = rd_kafka_fatal_error(handle, &text, text.count)
        guard fatal != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        let error = KafkaError.fatal(fatal, String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        isFatal = true
        failure = error
        throw error
    }
}

/// What the C callbacks hold on to: a weak way back to the consumer, and what the error
/// callback (on librdkafka's thread) reports to the polling thread.
private final class CallbackBox {
    weak var consumer: KafkaConsumer?
    let authenticationFailure = Mutex<KafkaError?>(nil)
}
