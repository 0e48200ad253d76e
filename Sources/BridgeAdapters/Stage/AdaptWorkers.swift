import ChatEvents
import KafkaClient
import LedgerSupport
import Synchronization

/// Turns a poll's records into the merger's entries (parse, map, encode, check) on several
/// threads, in the records' order.
///
/// What a record becomes is a pure function of the record (`BridgeAdapter.adapt`, the
/// encoder), so which thread does the work changes nothing: the entries, their event ids
/// and bytes are the same. Everything that depends on order (merging across partitions,
/// holding events for their message, producing, committing) stays on the stage's thread.
///
/// `threads - 1` helper threads claim chunks of `chunkSize` records. The stage's thread
/// starts a poll's batch on them (`start`) and hands on the batch before meanwhile; it
/// then takes whatever chunks are still unclaimed when it comes for the entries
/// (`finish`), so no thread waits while work is left. A batch of a few chunks (live
/// traffic) is done on the calling thread alone, without waking anyone.
final class AdaptWorkers {
    /// Records claimed at a time.
    static let chunkSize = 32

    private let own: Preparer
    private let shared: Shared
    private let helpers: [(thread: LedgerThread, wake: Semaphore)]
    /// The batch `start` left to the helpers, and how many of them it woke.
    private var inFlight: (job: Job, woken: Int)?

    /// - Parameter threads: threads adapting a batch, the caller's included (at least 1).
    init(adapter: any BridgeAdapter, threads: Int) {
        own = Preparer(adapter: adapter)
        let shared = Shared()
        self.shared = shared
        helpers = (1..<max(1, threads)).map { number in
            let wake = Semaphore()
            let thread = LedgerThread(name: "adapt-\(number)") {
                let preparer = Preparer(adapter: adapter)
                while true {
                    wake.wait()
                    guard let job = shared.job.withLock({ $0 }) else { return }
                    job.work(preparer)
                    job.finished.signal()
                }
            }
            thread.start()
            return (thread, wake)
        }
    }

    deinit {
        finish { _ in }
        shared.job.withLock { $0 = nil }
        for helper in helpers { helper.wake.signal() }
        for helper in helpers { helper.thread.join() }
    }

    /// A record to adapt: copied already, or still in librdkafka's buffers (then the
    /// thread that adapts it copies and releases it, so the polling thread never does).
    enum Input: Sendable {
        case record(BridgeRecord)
        case message(RetainedMessage)

        /// The record, copied out of a message, which is released.
        consuming func take() -> BridgeRecord {
            switch self {
            case .record(let record):
                return record
            case .message(let message):
                defer { message.release() }
                return BridgeRecord(
                    topic: message.topic, partition: message.partition, offset: message.offset, timestamp: message.timestamp,
                    key: message.key.map { Array($0) }, value: message.value.map { Array($0) })
            }
        }

        /// Gives a message back to librdkafka unread.
        consuming func discard() {
            if case .message(let message) = self { message.release() }
        }
    }

    /// The entries for `records`, in their order.
    func prepare(_ records: [BridgeRecord]) -> [RecordMerger.Entry] {
        var entries: [RecordMerger.Entry] = []
        entries.reserveCapacity(records.count)
        prepare(records.map { .record($0) }) { entries.append($0) }
        return entries
    }

    /// Hands `body` the entries for `inputs`, in their order, each moved (not copied) to it,
    /// after those of a batch `start` left in flight. Every message among `inputs` is released.
    func prepare(_ inputs: [Input], _ body: (consuming RecordMerger.Entry) -> Void) {
        start(inputs, finishing: body)
        finish(body)
    }

    /// Starts adapting `inputs` on the helper threads and returns at once, so the caller can
    /// hand on the batch before while they work; `finish` hands over the entries. A batch
    /// in flight is finished first (its entries to `body`). A batch of a few chunks (live
    /// traffic), or any batch without helpers, is adapted at once on the calling thread and
    /// its entries go to `body` too: nothing is left in flight.
    func start(_ inputs: [Input], finishing body: (consuming RecordMerger.Entry) -> Void) {
        finish(body)
        guard !helpers.isEmpty, inputs.count > 2 * Self.chunkSize else {
            for input in inputs { body(own.prepare(input.take())) }
            return
        }
        let job = Job(records: inputs)
        shared.job.withLock { $0 = job }
        let woken = min(helpers.count, inputs.count / Self.chunkSize)
        for helper in helpers.prefix(woken) { helper.wake.signal() }
        inFlight = (job, woken)
    }

    /// Whether a batch is in flight (`start` without `finish`).
    var isBusy: Bool { inFlight != nil }

    /// Hands `body` the entries of the batch in flight, in their order; the calling thread
    /// takes the chunks no helper has claimed yet, then waits for the helpers.
    func finish(_ body: (consuming RecordMerger.Entry) -> Void) {
        guard let (job, woken) = inFlight else { return }
        inFlight = nil
        job.work(own)
        for _ in 0..<woken { job.finished.wait() }
        shared.job.withLock { $0 = nil }
        job.takeResults(body)
    }

    /// The job helpers look for when woken; nil tells them to end.
    private final class Shared: Sendable {
        let job = Mutex<Job?>(nil)
    }

    /// One batch: its records, and a slot per record that exactly one thread fills.
    private final class Job: @unchecked Sendable {
        // SAFETY: `results` slot `i` is initialized by the one thread that claimed `i`
        // through `next` (which also releases input `i`'s message); the owner reads them
        // only after every worker signalled `finished` (the semaphore orders the writes
        // before the read).
        let records: [Input]
        let results: UnsafeMutablePointer<RecordMerger.Entry>
        let next = Atomic<Int>(0)
        let finished = Semaphore()
        private var taken = false

        init(records: [Input]) {
            self.records = records
            results = .allocate(capacity: records.count)
        }

        deinit {
            if !taken { results.deinitialize(count: records.count) }
            results.deallocate()
        }

        func work(_ preparer: Preparer) {
            while true {
                let start = next.wrappingAdd(AdaptWorkers.chunkSize, ordering: .relaxed).oldValue
                guard start < records.count else { return }
                for index in start..<min(start + AdaptWorkers.chunkSize, records.count) {
                    (results + index).initialize(to: preparer.prepare(records[index].take()))
                }
            }
        }

        /// Moves the results out in order (once, after every worker finished).
        func takeResults(_ body: (consuming RecordMerger.Entry) -> Void) {
            taken = true
            for index in 0..<records.count { body((results + index).move()) }
        }
    }

    /// One thread's scratch: a JSON tape and the event parser (for scrubbed events, and
    /// every event in debug builds).
    final class Preparer {
        let adapter: any BridgeAdapter
        let tape = JSONTape()
        let parser = EventParser()

        init(adapter: any BridgeAdapter) {
            self.adapter = adapter
        }

        /// Adapts `record` and encodes its events. The stage never produces what ingest
        /// would reject: the adapter builds events within the schema's limits field by
        /// field; what only the whole event can break is its size. Debug builds (the tests)
        /// also run every event through the parser.
        func prepare(_ record: BridgeRecord) -> RecordMerger.Entry {
            var adapted = adapter.adapt(record, tape: tape)
            var prepared: [RecordMerger.PreparedEvent] = []
            prepared.reserveCapacity(adapted.events.count)
            for event in adapted.events {
                let bytes = EventEncoder.encode(event.event)
                var problem: String?
                if bytes.count > EventLimits.default.maxEventBytes {
                    problem = "\(event.event.type): \(bytes.count) bytes exceed the event limit of \(EventLimits.default.maxEventBytes)"
                }
                #if DEBUG
                do {
                    _ = try parser.parse(bytes, kafkaKey: Array(event.event.deviceId.utf8))
                } catch {
                    problem = "\(event.event.type): \(error)"
                }
                #endif
                if let problem {
                    adapted.deadLetter("invalid_event", problem)
                    prepared.removeAll()
                    break
                }
                prepared.append(Self.prepared(event, bytes: Self.withoutSecret(bytes, secret: adapted.secret, parser: parser)))
            }
            // A dead letter keeps the record's bytes; a mapped record needs only its coordinates.
            let kept = adapted.isDeadLetter ? record : BridgeRecord(
                topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp, value: nil)
            return RecordMerger.Entry(
                record: kept, outcome: adapted.outcome, skipReasons: adapted.skipReasons, secret: adapted.secret,
                time: adapted.time ?? max(0, record.timestamp), events: prepared)
        }

        /// `event` with its bytes, as the stage's thread routes it.
        static func prepared(_ event: AdaptedEvent, bytes: [UInt8]?) -> RecordMerger.PreparedEvent {
            let role: RecordMerger.PreparedEvent.Role
            switch event.event.payload {
            case .messageCreated: role = .creates(chatId: event.event.chatId ?? "")
            case .contactAliased: role = .aliases
            default: role = event.waitsFor == nil ? .plain : .actsOn(event)
            }
            return .init(bytes: bytes, deviceId: event.event.deviceId, type: event.event.type, directoryKey: MessageDirectory.key(for: event), role: role)
        }

        /// `bytes` with the record's secret scrubbed out, when a message's text holds it: it
        /// never reaches the canonical topic. Nil when the scrubbed event no longer parses.
        static func withoutSecret(_ bytes: [UInt8], secret: [UInt8]?, parser: EventParser) -> [UInt8]? {
            guard let secret, SecretScrubber.contains(secret, in: bytes) else { return bytes }
            let scrubbed = SecretScrubber.scrub(bytes, secret: secret)
            return (try? parser.parse(scrubbed)) != nil ? scrubbed : nil
        }
    }
}
