import CRdKafka
import LedgerSupport
import Synchronization

/// A producer for single records whose senders wait for each one's outcome: every `send`
/// gets exactly one call of its completion, with the record's partition and offset or why
/// it failed, within the delivery timeout. Safe to use from any thread; `send` never
/// blocks, and completions run on the producer's own polling thread.
///
/// What the write API needs from Kafka: an answer per request in bounded time, never a
/// half-written record (idempotent producer: librdkafka's retries never duplicate), and
/// recovery by itself once the broker is back.
package final class KafkaRecordProducer: @unchecked Sendable {
    // SAFETY: librdkafka's produce, poll, flush and purge calls are thread-safe; `handle`
    // and `topicHandle` are created in init and destroyed with the producer, after `close()`
    // has joined the polling thread. The remaining state is in `Mutex`/`Atomic`.

    /// Where a record landed.
    package struct Delivery: Sendable, Hashable {
        package var partition: Int32
        package var offset: Int64

        package init(partition: Int32, offset: Int64) {
            self.partition = partition
            self.offset = offset
        }
    }

    /// Why a record was not delivered.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        /// librdkafka's words (`Local: Message timed out`, …).
        package var reason: String
        /// The broker may have written it even so (a request was in flight when the time
        /// ran out); false means it certainly was not.
        package var possiblyWritten: Bool

        package var description: String { reason + (possiblyWritten ? " (possibly written)" : "") }
    }

    package typealias Completion = @Sendable (Result<Delivery, Failure>) -> Void

    private let handle: KafkaClientHandle
    private let topicHandle: OpaquePointer
    /// The topic every record goes to.
    package let topic: String
    /// The most a record waits for the broker before it fails (`message.timeout.ms`).
    package let deliveryTimeoutMilliseconds: Int
    private let poller: Poller
    /// Set by `close()`; `send` enqueues under it, so nothing is enqueued after the purge.
    private let closed = Mutex(false)

    /// Creates a producer for `topic` on `bootstrapServers` and starts its polling thread.
    ///
    /// Defaults: `enable.idempotence=true`, `partitioner=murmur2_random` (as `KafkaProducer`,
    /// so a device lands on the partition every other client puts it on), `linger.ms=1`
    /// (one record at a time: latency matters, not batching), `reconnect.backoff.max.ms=1000`
    /// (back soon after the broker is), `message.timeout.ms` = `deliveryTimeoutMilliseconds`.
    /// `configuration` overrides any of them but the timeout. librdkafka checks timeouts about
    /// once a second, so a failure is reported up to a second after the timeout.
    /// - Throws: `KafkaError` if librdkafka refuses the configuration or the topic.
    package init(
        bootstrapServers: String, topic: String, deliveryTimeoutMilliseconds: Int,
        configuration: KafkaConfiguration = KafkaConfiguration()
    ) throws(KafkaError) {
        var settings = KafkaConfiguration.client(
            bootstrapServers: bootstrapServers,
            defaults: [
                "enable.idempotence": "true", "partitioner": "murmur2_random", "linger.ms": "1", "reconnect.backoff.max.ms": "1000",
            ],
            overrides: configuration)
        settings["message.timeout.ms"] = String(deliveryTimeoutMilliseconds)
        // Each record's completion travels with it (its opaque pointer), not with the client.
        let handle = try KafkaClientHandle(.producer, settings, onDelivery: { message in
            guard let opaque = message.pointee._private else { return }
            let completion = Unmanaged<CompletionBox>.fromOpaque(opaque).takeRetainedValue().completion
            let record = message.pointee
            if record.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                completion(.success(Delivery(partition: record.partition, offset: record.offset)))
            } else {
                let possiblyWritten = rd_kafka_message_status(message) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED
                completion(.failure(Failure(reason: KafkaError.describe(record.err), possiblyWritten: possiblyWritten)))
            }
        })
        guard let topicHandle = rd_kafka_topic_new(handle.client, topic, nil) else {
            throw .produce(rd_kafka_last_error(), topic: topic)
        }
        self.handle = handle
        self.topicHandle = topicHandle
        self.topic = topic
        self.deliveryTimeoutMilliseconds = deliveryTimeoutMilliseconds
        poller = Poller(handle.client)
        poller.start()
    }

    deinit {
        close(timeoutMilliseconds: 0)
        rd_kafka_topic_destroy(topicHandle)
    }

    /// Enqueues one record keyed by `key`; `completion` is called exactly once: on the
    /// polling thread when the broker answered or the delivery timeout passed, or before
    /// `send` returns when librdkafka refused the record at once (a full queue, a record too
    /// large, a closed producer).
    package func send(key: [UInt8], value: [UInt8], completion: @escaping Completion) {
        let box = Unmanaged.passRetained(CompletionBox(completion)).toOpaque()
        // rd_kafka_produce never blocks here (no RD_KAFKA_MSG_F_BLOCK: a full queue fails at once).
        let refusal: String? = closed.withLock { closed in
            guard !closed else { return "the producer is closed" }
            let result = value.withUnsafeBytes { valueBytes in
                key.withUnsafeBytes { keyBytes in
                    rd_kafka_produce(
                        topicHandle, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, UnsafeMutableRawPointer(mutating: valueBytes.baseAddress),
                        valueBytes.count, keyBytes.baseAddress, keyBytes.count, box)
                }
            }
            return result == 0 ? nil : KafkaError.describe(rd_kafka_last_error())
        }
        guard let refusal else { return }
        Unmanaged<CompletionBox>.fromOpaque(box).release()
        completion(.failure(Failure(reason: refusal, possiblyWritten: false)))
    }

    /// Stops accepting records, waits up to `timeoutMilliseconds` for those in flight, fails
    /// the rest (their completions run), and stops the polling thread. Idempotent.
    package func close(timeoutMilliseconds: Int32) {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        poller.stop()
        rd_kafka_flush(handle.client, timeoutMilliseconds)
        // Whatever is left fails now, so every completion runs (and every box is released).
        rd_kafka_purge(handle.client, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        rd_kafka_poll(handle.client, 0)
    }
}

/// A completion handed to librdkafka as a record's opaque pointer.
private final class CompletionBox: Sendable {
    let completion: KafkaRecordProducer.Completion

    init(_ completion: @escaping KafkaRecordProducer.Completion) { self.completion = completion }
}

/// The thread that serves a producer's delivery reports (and so runs its completions).
private final class Poller: @unchecked Sendable {
    // SAFETY: `handle` is only polled, which librdkafka allows from any thread; it outlives
    // the thread (the producer joins it before destroying the handle).
    private let handle: OpaquePointer
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<LedgerThread?>(nil)

    init(_ handle: OpaquePointer) { self.handle = handle }

    func start() {
        let started = LedgerThread { [self] in
            while !stopping.load(ordering: .acquiring) { rd_kafka_poll(handle, 100) }
        }
        thread.withLock { $0 = started }
        started.start()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        let running = thread.withLock { thread in
            defer { thread = nil }
            return thread
        }
        running?.join()
    }
}
