import Foundation

/// Threads a test starts and joins.
final class LedgerTestThreads: @unchecked Sendable {
    // SAFETY: `threads` is touched only by the test's own thread (start, join).
    private var threads: [Thread] = []
    private let finished = DispatchGroup()

    func start(_ body: @escaping @Sendable () -> Void) {
        finished.enter()
        let thread = Thread { [finished] in
            body()
            finished.leave()
        }
        threads.append(thread)
        thread.start()
    }

    func join() { finished.wait() }
}
