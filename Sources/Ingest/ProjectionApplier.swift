import ChatEvents
import ChatProjection
import EventLog
import LedgerSupport
import Synchronization

/// Applies written batches to the projection on a dedicated thread, so the consumer
/// thread parses and writes the next batch meanwhile.
///
/// Batches are applied in the order they were submitted, each record in offset order.
/// At most `depth` batches wait: `submit` blocks beyond that (backpressure when the
/// projection falls behind the log). Only records already written (and synced, per the
/// fsync policy) are submitted, so the projection never shows what the log could lose.
final class ProjectionApplier: Sendable {
    /// One logged record: what it holds, where, and its chain hash.
    typealias Record = (stored: StoredRecord, position: LogPosition, chainHash: SHA256Digest)

    private enum Job: Sendable {
        case batch([Record], onApplied: (@Sendable () -> Void)?)
        case marker(Semaphore)
        case stop
    }

    private let store: ProjectionStore
    private let jobs = Mutex<[Job]>([])
    private let available = Semaphore()
    private let space: Semaphore
    private let thread = Mutex<LedgerThread?>(nil)

    init(store: ProjectionStore, depth: Int = 2) {
        self.store = store
        self.space = Semaphore(value: UInt32(max(1, depth)))
        let thread = LedgerThread { [self] in run() }
        self.thread.withLock { $0 = thread }
        thread.start()
    }

    /// Queues a batch; blocks while `depth` batches are already waiting.
    func submit(_ records: [Record], onApplied: (@Sendable () -> Void)?) {
        guard !records.isEmpty else { return }
        space.wait()
        enqueue(.batch(records, onApplied: onApplied))
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
            case .batch(let records, let onApplied):
                // One lock per record, so queries are never held up for a whole batch.
                for record in records {
                    store.fold(record.stored, at: record.position, chainHash: record.chainHash)
                }
                space.signal()
                onApplied?()
            case .marker(let done):
                done.signal()
            case .stop:
                return
            }
        }
    }
}
