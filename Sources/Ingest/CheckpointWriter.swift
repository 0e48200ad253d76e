#if canImport(Glibc)
import Glibc
#endif
import ChatProjection
import LedgerSupport
import Synchronization

/// Writes checkpoints on one dedicated thread (`chatledger-ckpt`), so that encoding,
/// digesting, writing and fsyncing a large projection never holds up the consumer thread,
/// the applier or queries: the consumer hands over a snapshot (a copy-on-write copy,
/// taken in one short critical section) and goes on.
///
/// At most one checkpoint is in flight: `start` refuses a second one rather than queue it.
/// A finished write's outcome (its `CheckpointInfo` or its error) is kept until the owner
/// collects it with `collect()` or `waitForInFlight()`. The thread runs at a lower CPU
/// priority (nice +10): on a machine with few cores, folding and answering queries come
/// first, and the checkpoint takes the time left over.
final class CheckpointWriter: Sendable {
    /// The lifecycle of the one checkpoint slot.
    private enum Slot {
        case idle
        /// Handed over, not yet picked up by the thread.
        case queued(ProjectionState, topic: String)
        case writing
        case finished(Result<CheckpointInfo, any Error>)
        case stopping

        /// Whether a write is queued or running.
        var isInFlight: Bool {
            switch self {
            case .queued, .writing: true
            case .idle, .finished, .stopping: false
            }
        }

        /// Hands a snapshot to the thread; false (no change) unless the slot is idle.
        mutating func queue(_ state: ProjectionState, topic: String) -> Bool {
            guard case .idle = self else { return false }
            self = .queued(state, topic: topic)
            return true
        }

        /// The thread takes the queued snapshot; nil if there is none.
        mutating func take() -> (ProjectionState, String)? {
            guard case .queued(let state, let topic) = self else { return nil }
            self = .writing
            return (state, topic)
        }

        /// The thread reports the outcome of the write it took.
        mutating func finish(_ outcome: Result<CheckpointInfo, any Error>) {
            guard case .writing = self else { return }
            self = .finished(outcome)
        }

        /// The owner takes a finished outcome, leaving the slot idle; nil if none.
        mutating func collect() -> Result<CheckpointInfo, any Error>? {
            guard case .finished(let outcome) = self else { return nil }
            self = .idle
            return outcome
        }
    }

    private let checkpoints: CheckpointStore
    private let slot = Mutex<Slot>(.idle)
    /// Signalled when a snapshot is queued or the thread is asked to stop.
    private let available = Semaphore()
    /// Signalled when a write finishes (waited on by `waitForInFlight`).
    private let finished = Semaphore()
    private let thread = Mutex<LedgerThread?>(nil)

    init(checkpoints: CheckpointStore) {
        self.checkpoints = checkpoints
        let thread = LedgerThread(name: "chatledger-ckpt") { [self] in run() }
        self.thread.withLock { $0 = thread }
        thread.start()
    }

    /// Whether a checkpoint is being written (or about to be).
    var isInFlight: Bool { slot.withLock { $0.isInFlight } }

    /// Hands `state` to the thread; false, doing nothing, while a checkpoint is in flight or
    /// its outcome has not been collected.
    func start(_ state: ProjectionState, topic: String) -> Bool {
        guard slot.withLock({ $0.queue(state, topic: topic) }) else { return false }
        available.signal()
        return true
    }

    /// The outcome of the last write if it has finished and was not collected yet.
    func collect() -> Result<CheckpointInfo, any Error>? {
        slot.withLock { $0.collect() }
    }

    /// Waits for the write in flight, if any, and returns its outcome (or one finished and
    /// not yet collected); nil when there was none.
    func waitForInFlight() -> Result<CheckpointInfo, any Error>? {
        while slot.withLock({ $0.isInFlight }) { finished.wait() }
        return collect()
    }

    /// Lets a write in flight finish, then ends the thread and waits for it.
    func stop() {
        let running = thread.withLock { thread in
            defer { thread = nil }
            return thread
        }
        guard let running else { return }
        _ = waitForInFlight()
        slot.withLock { $0 = .stopping }
        available.signal()
        running.join()
    }

    private func run() {
        // Linux nices threads one by one, and `who` 0 is the calling thread: this one only.
        setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        while true {
            available.wait()
            let job: (ProjectionState, String)?? = slot.withLock { slot in
                if case .stopping = slot { return .none }
                return .some(slot.take())
            }
            guard let job else { return }
            guard let (state, topic) = job else { continue }
            let outcome = Result { try checkpoints.write(state, topic: topic) }
            slot.withLock { $0.finish(outcome) }
            finished.signal()
        }
    }
}
