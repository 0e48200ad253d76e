#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Turns SIGINT and SIGTERM into an orderly shutdown, and SIGHUP into "reload" (for
/// the keys file; without a `onHangup` action it is ignored, never fatal).
///
/// `install()` blocks the three signals in the calling thread (call it first in `main`,
/// so every thread started later inherits the mask) and starts one thread that waits for
/// them with `sigwait`: no code runs in signal-handler context.
package final class TerminationSignal: Sendable {
    private let received = Atomic<Int32>(0)
    private let waiters = Mutex<[@Sendable (Int32) -> Void]>([])
    private let hangupActions = Mutex<[@Sendable () -> Void]>([])

    private init() {}

    /// Blocks SIGINT/SIGTERM and starts the waiting thread.
    package static func install() -> TerminationSignal {
        let signal = TerminationSignal()
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitSet = set
        let thread = LedgerThread {
            var set = waitSet
            var number: Int32 = 0
            while true {
                guard sigwait(&set, &number) == 0 else { continue }
                if number == SIGHUP {
                    for action in signal.hangupActions.withLock({ $0 }) { action() }
                    continue
                }
                signal.deliver(number)
                return
            }
        }
        thread.start()
        return signal
    }

    /// The signal received, or nil while none has arrived.
    package var receivedSignal: Int32? {
        let value = received.load(ordering: .acquiring)
        return value == 0 ? nil : value
    }

    /// Calls `action` once when a signal arrives (at once if one already has).
    package func onSignal(_ action: @escaping @Sendable (Int32) -> Void) {
        let already: Int32? = waiters.withLock { list in
            if let signal = receivedSignal { return signal }
            list.append(action)
            return nil
        }
        if let already { action(already) }
    }

    /// Calls `action` on every SIGHUP (on the signal thread: keep it short).
    package func onHangup(_ action: @escaping @Sendable () -> Void) {
        hangupActions.withLock { $0.append(action) }
    }

    /// Blocks the calling thread until a signal arrives; returns it.
    package func wait() -> Int32 {
        let semaphore = Semaphore()
        onSignal { _ in semaphore.signal() }
        semaphore.wait()
        return receivedSignal ?? SIGTERM
    }

    private func deliver(_ number: Int32) {
        let actions = waiters.withLock { list in
            received.store(number, ordering: .releasing)
            defer { list.removeAll() }
            return list
        }
        for action in actions { action(number) }
    }
}
