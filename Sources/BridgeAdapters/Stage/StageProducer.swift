import KafkaClient
import LedgerSupport
import Synchronization

/// The adapter stage's producer, on a thread of its own: the stage's thread hands it what
/// to send in order and goes on merging and routing, while this thread passes it to
/// librdkafka, serves delivery reports and frees the events' bytes.
///
/// Sending is about a third of the stage thread's serial work (librdkafka's enqueueing,
/// its locks, the report callbacks, freeing what the adapter threads allocated), and that
/// thread is what limits the stage. One thread sends everything, in the order handed, so
/// each canonical partition gets its events in the stage's order, as before.
///
/// Progress stays safe: `flush()` returns only after everything handed before it has been
/// sent and delivered, and any failure (a send librdkafka refused, a delivery that failed
/// for good) fails that flush and every later one, so no offset past it is committed.
final class StageProducer {
    /// One message to send.
    struct Outgoing: Sendable {
        var destination: Destination
        var value: [UInt8]
    }

    /// Where a message goes, with its Kafka key.
    enum Destination: Sendable {
        /// The canonical topic, keyed by the event's device.
        case event(deviceId: String)
        /// The dead-letter topic.
        case deadLetter(key: [UInt8])
    }

    /// What the two threads share.
    private final class Shared: Sendable {
        struct Inbox {
            var batches: [[Outgoing]] = []
            /// Messages in `batches`.
            var queued = 0
            var flushRequests: [FlushRequest] = []
            var stopping = false
            /// The first failure; every flush after it throws it.
            var failure: String?
            var delivered = 0
        }

        let inbox = Mutex(Inbox())
        /// Signalled when something is handed over (or at stop).
        let work = Semaphore()
        /// Signalled after each batch sent: room in the inbox again.
        let room = Semaphore()
    }

    private final class FlushRequest: Sendable {
        let done = Semaphore()
        let result = Mutex<String?>(nil)
    }

    /// Messages the inbox holds at most before `handOver` waits: librdkafka's own queue
    /// (`queue.buffering.max.messages`) is the real buffer; this only stops the stage from
    /// running far ahead of it.
    static let maxQueued = 100_000

    private let shared = Shared()
    private let thread: LedgerThread
    /// Messages given to `send` and not yet handed over.
    private var pending: [Outgoing] = []
    private var stopped = false
    /// `send` hands over its messages in batches of this many.
    static let batchSize = 512

    /// Starts the producing thread with `producer`, which only that thread touches from now on.
    /// - Parameters:
    ///   - topic: the canonical topic; `deadLetterTopic`: where dead letters go.
    init(_ producer: sending KafkaProducer, topic: String, deadLetterTopic: String) {
        thread = Self.start(producer, topic: topic, deadLetterTopic: deadLetterTopic, shared: shared)
    }

    deinit { close() }

    /// Messages given to `send` so far.
    private var sent = 0

    /// Queues `message`; handed to the producing thread in batches (see `handOver`).
    func send(_ message: Outgoing) {
        sent += 1
        pending.append(message)
        if pending.count >= Self.batchSize { handOver() }
    }

    /// Hands what `send` queued to the producing thread; waits while its inbox is full.
    func handOver() {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        pending.reserveCapacity(Self.batchSize)
        let count = batch.count
        var full = shared.inbox.withLock { inbox in
            inbox.batches.append(batch)
            inbox.queued += count
            return inbox.queued > Self.maxQueued && inbox.failure == nil
        }
        shared.work.signal()
        while full {
            shared.room.wait()
            full = shared.inbox.withLock { $0.queued > Self.maxQueued && $0.failure == nil }
        }
    }

    /// Deliveries the broker acknowledged so far.
    var delivered: Int { shared.inbox.withLock { $0.delivered } }

    /// Whether messages sent have not been acknowledged yet (or failed).
    var awaitsDeliveries: Bool { delivered < sent }

    /// Waits until everything sent so far is delivered.
    /// - Throws: `AdapterStageError` when anything was not (this time or before).
    func flush() throws {
        // No thread would serve the request any more.
        guard !stopped else { throw AdapterStageError(description: "the stage's producer is closed") }
        handOver()
        let request = FlushRequest()
        shared.inbox.withLock { $0.flushRequests.append(request) }
        shared.work.signal()
        request.done.wait()
        if let failure = request.result.withLock({ $0 }) { throw AdapterStageError(description: failure) }
    }

    /// Sends what is queued, waits for the producing thread to finish (it flushes what
    /// librdkafka holds for up to two seconds) and ends it.
    func close() {
        guard !stopped else { return }
        stopped = true
        handOver()
        shared.inbox.withLock { $0.stopping = true }
        shared.work.signal()
        thread.join()
    }

    // MARK: - The producing thread

    private static func start(_ producer: sending KafkaProducer, topic: String, deadLetterTopic: String, shared: Shared) -> LedgerThread {
        let thread = LedgerThread.owning(name: "chatledger-prod") {
            run(producer, topic: topic, deadLetterTopic: deadLetterTopic, shared: shared)
        }
        thread.start()
        return thread
    }

    private static func run(
        _ producer: KafkaProducer, topic: String, deadLetterTopic: String, shared: Shared
    ) {
        while true {
            // Woken by work, or to serve delivery reports: every 5 ms while messages are in
            // flight (what `delivered` says is what the stage publishes), else every 50 ms.
            _ = shared.work.wait(milliseconds: producer.inFlight > 0 ? 5 : 50)
            let (batches, flushes, stopping, alreadyFailed) = shared.inbox.withLock { inbox in
                defer {
                    inbox.batches.removeAll()
                    inbox.flushRequests.removeAll()
                }
                return (inbox.batches, inbox.flushRequests, inbox.stopping, inbox.failure != nil)
            }
            var failed = alreadyFailed
            for batch in batches {
                var failure: String?
                if !failed {
                    do {
                        for message in batch {
                            switch message.destination {
                            case .event(let deviceId): try producer.send(topic: topic, key: deviceId, value: message.value)
                            case .deadLetter(let key): try producer.send(topic: deadLetterTopic, key: key, value: message.value)
                            }
                        }
                    } catch {
                        failure = "events not delivered: \(error)"
                        failed = true
                    }
                }
                shared.inbox.withLock { inbox in
                    inbox.queued -= batch.count
                    if inbox.failure == nil { inbox.failure = failure }
                }
                shared.room.signal()
            }
            producer.poll()
            for request in flushes {
                var failure: String?
                do {
                    try producer.flush(timeoutMilliseconds: 120_000)
                } catch {
                    failure = "events not delivered: \(error)"
                }
                let report = producer.report
                if failure == nil, report.failed > 0 {
                    failure = "\(report.failed) deliveries failed: \(report.firstFailure ?? "unknown")"
                }
                // `delivered` counts everything the flush waited for before the flush returns.
                let result = shared.inbox.withLock { inbox in
                    inbox.delivered = report.delivered
                    if inbox.failure == nil { inbox.failure = failure }
                    return inbox.failure
                }
                request.result.withLock { $0 = result }
                request.done.signal()
            }
            let report = producer.report
            shared.inbox.withLock { $0.delivered = report.delivered }
            if stopping, shared.inbox.withLock({ $0.batches.isEmpty }) { break }
        }
        try? producer.flush(timeoutMilliseconds: 2_000)
        let report = producer.report
        shared.inbox.withLock { $0.delivered = report.delivered }
    }
}
