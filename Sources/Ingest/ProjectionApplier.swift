import ChatEvents
import ChatProjection
import EventLog
import LedgerSupport
import Synchronization

/// Applies written batches to the projection on a dedicated thread, so the consumer
/// thread parses and writes the next batch meanwhile.
///
/// A small batch (at most `inlineRecords`) submitted while no batch is queued or being
/// applied is applied at once on the submitting thread instead: folding a few records
/// costs microseconds, while handing them over costs a thread wake-up, which on a busy
/// machine means waiting for a time slice (measured by `bench freshness` as the `queue`
/// stage: p99 1.6 ms, max 161 ms at a load of 5 on 2 cores). Large batches (catching up)
/// still overlap with the next batch's parse and write.
///
/// Batches are applied in the order they were submitted, each record in offset order.
/// At most `depth` batches wait: `submit` blocks beyond that (backpressure when the
/// projection falls behind the log). Only records already written (and synced, per the
/// fsync policy) are submitted, so the projection never shows what the log could lose.
final class ProjectionApplier: Sendable {
    /// One logged record: what it holds, where, and its chain hash.
    typealias Record = (stored: StoredRecord, position: LogPosition, chainHash: SHA256Digest)

    private enum Job: Sendable {
        case batch([Record], traced: [Int], onApplied: (@Sendable () -> Void)?)
        case marker(Semaphore)
        case stop
    }

    private let store: ProjectionStore
    private let trace: FreshnessTrace?
    private let jobs = Mutex<[Job]>([])
    private let available = Semaphore()
    private let space: Semaphore
    private let thread = Mutex<LedgerThread?>(nil)
    /// Batches queued and not yet applied. Only the submitting thread adds to it, so when
    /// it reads zero the applier thread holds no batch until that thread queues one.
    private let outstanding = Atomic<Int>(0)
    /// The largest batch applied on the submitting thread when nothing is outstanding.
    let inlineRecords: Int

    /// - Parameter inlineRecords: the largest batch applied on the submitting thread when
    ///   nothing is queued (0: always on the applier thread).
    init(store: ProjectionStore, depth: Int = 2, inlineRecords: Int = 256, trace: FreshnessTrace? = nil) {
        self.store = store
        self.trace = trace
        self.inlineRecords = inlineRecords
        self.space = Semaphore(value: UInt32(max(1, depth)))
        let thread = LedgerThread(name: "chatledger-apply") { [self] in run() }
        self.thread.withLock { $0 = thread }
        thread.start()
    }

    /// Applies a small batch now on the calling thread if no batch is outstanding; queues
    /// it otherwise, blocking while `depth` batches are already waiting. Called from one
    /// thread only (the consumer's).
    /// - Parameter traced: indexes of the records `trace` follows, ascending.
    func submit(_ records: [Record], traced: [Int] = [], onApplied: (@Sendable () -> Void)?) {
        guard !records.isEmpty else { return }
        if records.count <= inlineRecords, outstanding.load(ordering: .acquiring) == 0 {
            apply(records, traced: traced)
            onApplied?()
            return
        }
        space.wait()
        outstanding.add(1, ordering: .relaxed)
        enqueue(.batch(records, traced: traced, onApplied: onApplied))
    }

    /// Returns once every batch submitted before it is applied.
    func waitUntilApplied() {
        let done = Semaphore()
        enqueue(.marker(done))
        done.wait()
    }

    /// Applies what is queued, then ends the thread and waits for it.
    func stop() {
        let running = thread.withLock { thread in
            defer { thread = nil }
            return thread
        }
        guard let running else { return }
        enqueue(.stop)
        running.join()
    }

    private func enqueue(_ job: Job) {
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    private func run() {
        while true {
            available.wait()
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            switch job {
            case .batch(let records, let traced, let onApplied):
                apply(records, traced: traced)
                outstanding.subtract(1, ordering: .releasing)
                space.signal()
                onApplied?()
            case .marker(let done):
                done.signal()
            case .stop:
                return
            }
        }
    }

    /// Folds a batch, one lock per record so queries are never held up for a whole batch.
    private func apply(_ records: [Record], traced: [Int]) {
        guard let trace, !traced.isEmpty else {
            for record in records {
                store.fold(record.stored, at: record.position, chainHash: record.chainHash)
            }
            return
        }
        apply(records, traced: traced, trace)
    }

    /// `apply(_:traced:)` of a batch holding traced records, stamping when it was taken up
    /// and when each traced record was folded.
    private func apply(_ records: [Record], traced: [Int], _ trace: FreshnessTrace) {
        for index in traced { trace.record(.dequeued, records[index].position) }
        var next = traced.makeIterator()
        var tracedIndex = next.next()
        for (index, record) in records.enumerated() {
            store.fold(record.stored, at: record.position, chainHash: record.chainHash)
            if index == tracedIndex {
                trace.record(.applied, record.position)
                tracedIndex = next.next()
            }
        }
    }
}
