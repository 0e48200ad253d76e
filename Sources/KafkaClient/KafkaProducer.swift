import CRdKafka
import Synchronization

/// What the broker confirmed for the messages a producer sent.
package struct DeliveryReport: Sendable, Hashable {
    /// Messages the broker acknowledged.
    package var delivered = 0
    /// Messages that failed for good.
    package var failed = 0
    /// The highest acknowledged offset per partition.
    package var lastOffsets: [Int32: Int64] = [:]
    /// The first delivery failure, if any, in librdkafka's words.
    package var firstFailure: String?

    package init() {}
}

/// A librdkafka producer: idempotent (broker retries never duplicate), keyed messages,
/// delivery reports counted per partition. A refused login or TLS handshake with no
/// delivery going through fails `flush` (and a `send` waiting for room in the queue, whose
/// message is then not enqueued) instead of leaving the messages to time out. Used from
/// one thread.
package final class KafkaProducer {
    private let handle: KafkaClientHandle
    private let deliveries: DeliveryTracker
    private var topics: [String: OpaquePointer] = [:]
    /// The topic sent to last: most callers send to one topic, found here without hashing its name.
    private var lastTopic: (name: String, handle: OpaquePointer)?
    private var sendsSincePoll = 0

    /// Delivery reports are served after this many sends (and by `poll`, `flush`): often
    /// enough that they never pile up, without a poll's locking for every message.
    static let sendsPerPoll = 64

    /// Creates a producer for `bootstrapServers`.
    ///
    /// Defaults: `enable.idempotence=true`, `partitioner=murmur2_random` (the Java
    /// client's partitioner, so a device lands on the same partition whichever client
    /// produced it), `linger.ms=5`. `configuration` overrides any of them.
    /// - Throws: `KafkaError` if librdkafka refuses the configuration.
    package init(bootstrapServers: String, configuration: KafkaConfiguration = KafkaConfiguration()) throws(KafkaError) {
        let settings = KafkaConfiguration.client(
            bootstrapServers: bootstrapServers,
            defaults: ["enable.idempotence": "true", "partitioner": "murmur2_random", "linger.ms": "5"], overrides: configuration)
        let deliveries = DeliveryTracker()
        self.deliveries = deliveries
        handle = try KafkaClientHandle(.producer, settings, onDelivery: { deliveries.record($0.pointee) })
    }

    deinit {
        rd_kafka_flush(handle.client, 2_000)
        for topic in topics.values { rd_kafka_topic_destroy(topic) }
    }

    /// Enqueues one message; waits (serving delivery reports) while the local queue is full.
    /// A nil `value` is a tombstone; an empty one is an empty value.
    /// - Throws: `KafkaError` for anything but a full queue (unknown topic, message too large).
    package func send(topic: String, key: [UInt8], value: [UInt8]?) throws(KafkaError) {
        try key.withUnsafeBytes { keyBytes in
            Result { () throws(KafkaError) in try send(topic: topic, keyBytes: keyBytes, value: value) }
        }.get()
    }

    /// `send(topic:key:value:)` with the key's UTF-8 bytes (a device id), without copying them first.
    package func send(topic: String, key: String, value: [UInt8]?) throws(KafkaError) {
        var key = key
        try key.withUTF8 { keyBytes in
            Result { () throws(KafkaError) in try send(topic: topic, keyBytes: UnsafeRawBufferPointer(keyBytes), value: value) }
        }.get()
    }

    private func send(topic: String, keyBytes: UnsafeRawBufferPointer, value: [UInt8]?) throws(KafkaError) {
        let topicHandle = try self.topic(topic)
        var empty: UInt8 = 0
        while true {
            let result = withUnsafeMutablePointer(to: &empty) { emptyPointer in
                (value ?? []).withUnsafeBytes { valueBytes in
                    // librdkafka: a NULL payload is a tombstone, a non-NULL one of length 0 is empty.
                    let payload = value == nil ? nil : (valueBytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? UnsafeMutableRawPointer(emptyPointer))
                    return rd_kafka_produce(
                        topicHandle, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload, valueBytes.count,
                        keyBytes.baseAddress, keyBytes.count, nil)
                }
            }
            if result == 0 { break }
            let error = rd_kafka_last_error()
            guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw .produce(error, topic: topic) }
            // The queue is full: wait for deliveries, unless the cluster refused us.
            let deliveredBefore = deliveries.delivered
            rd_kafka_poll(handle.client, 100)
            if let refused = refusal(deliveredSince: deliveredBefore) { throw refused }
        }
        sendsSincePoll += 1
        if sendsSincePoll >= Self.sendsPerPoll {
            sendsSincePoll = 0
            rd_kafka_poll(handle.client, 0)
        }
    }

    /// Serves delivery reports for up to `timeoutMilliseconds`.
    package func poll(timeoutMilliseconds: Int32 = 0) {
        rd_kafka_poll(handle.client, timeoutMilliseconds)
    }

    /// Waits until every enqueued message is delivered or failed.
    /// - Throws: `KafkaError` if messages are still in flight after `timeoutMilliseconds`, or
    ///   within a `flushSlice` once the cluster refused the login or TLS handshake and
    ///   nothing is delivered (librdkafka would retry for ever, so the messages would only
    ///   time out).
    package func flush(timeoutMilliseconds: Int32) throws(KafkaError) {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMilliseconds)
        while true {
            let left = max(0, Int32((deadline - .now) / .milliseconds(1)))
            let deliveredBefore = deliveries.delivered
            if rd_kafka_flush(handle.client, min(left, Self.flushSlice)) == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            if let refused = refusal(deliveredSince: deliveredBefore) { throw refused }
            if left <= Self.flushSlice {
                throw .flush("\(rd_kafka_outq_len(handle.client)) messages undelivered after \(timeoutMilliseconds) ms")
            }
        }
    }

    /// How long `flush` waits between looks at whether the cluster refused the login.
    static let flushSlice: Int32 = 200

    /// What ends this producer: a fatal error, or a refused login or TLS handshake while
    /// nothing was delivered since `deliveredSince` (one broker's refusal with deliveries
    /// still going through is left to librdkafka's retries).
    private func refusal(deliveredSince: Int) -> KafkaError? {
        if let fatal = handle.fatalError { return fatal }
        guard let refused = handle.refusal, deliveries.delivered == deliveredSince else { return nil }
        return refused
    }

    /// Messages enqueued and not yet reported.
    package var inFlight: Int { Int(rd_kafka_outq_len(handle.client)) }

    /// Deliveries so far.
    package var report: DeliveryReport { deliveries.report }

    private func topic(_ name: String) throws(KafkaError) -> OpaquePointer {
        if let last = lastTopic, last.name == name { return last.handle }
        let found: OpaquePointer
        if let existing = topics[name] {
            found = existing
        } else {
            guard let created = rd_kafka_topic_new(handle.client, name, nil) else {
                throw .produce(rd_kafka_last_error(), topic: name)
            }
            topics[name] = created
            found = created
        }
        lastTopic = (name, found)
        return found
    }
}

/// Counts delivery reports; called by librdkafka on the thread serving `rd_kafka_poll`.
private final class DeliveryTracker: Sendable {
    private let state = Mutex(DeliveryReport())

    var report: DeliveryReport { state.withLock { $0 } }

    /// `report.delivered`, without copying the report.
    var delivered: Int { state.withLock { $0.delivered } }

    func record(_ message: rd_kafka_message_t) {
        state.withLock { report in
            if message.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                report.delivered += 1
                report.lastOffsets[message.partition] = max(report.lastOffsets[message.partition] ?? -1, message.offset)
            } else {
                report.failed += 1
                if report.firstFailure == nil { report.firstFailure = KafkaError.describe(message.err) }
            }
        }
    }
}
