import Synchronization

/// A service whose work is one blocking call on its own named thread (ingest's consumer
/// loop, an adapter stage, the demo producer): `start` runs the body, `stop` asks it to
/// return (`halt`) and joins the thread. A body that throws is a failure of the service.
package final class ThreadService: Service {
    package let serviceName: String
    private let thread: LedgerThread
    private let halt: @Sendable () -> Void
    private let lifecycle = Mutex(ServiceLifecycle.idle)
    private let failureHandler: FailureHandler

    /// A service named `name` running `body` on a thread named `threadName` (15 bytes
    /// kept); `halt` makes `body` return soon (it must be safe before `body` started).
    /// `body` may own what nothing else touches: it is handed to the thread.
    package init(
        name: String, threadName: String, halt: @escaping @Sendable () -> Void, body: sending @escaping () throws -> Void
    ) {
        let failureHandler = FailureHandler()
        self.serviceName = name
        self.halt = halt
        self.failureHandler = failureHandler
        self.thread = LedgerThread.owning(name: threadName) {
            do {
                try body()
            } catch {
                failureHandler.report(error)
            }
        }
    }

    /// Starts the thread; a throwing body is reported to `onFailure`.
    /// - Throws: `ServiceLifecycle.IllegalTransition` if it was started before.
    package func start(onFailure: @escaping @Sendable (any Error) -> Void) throws {
        try lifecycle.withLock { state throws(ServiceLifecycle.IllegalTransition) in try state.start() }
        failureHandler.set(onFailure)
        thread.start()
    }

    /// Halts the body and joins the thread.
    package func stop() {
        guard lifecycle.withLock({ $0.stop() }) else { return }
        halt()
        thread.join()
    }
}

/// Where a service's thread reports the error that ended it (set at `start`).
final class FailureHandler: Sendable {
    private let handler = Mutex<(@Sendable (any Error) -> Void)?>(nil)

    func set(_ onFailure: @escaping @Sendable (any Error) -> Void) { handler.withLock { $0 = onFailure } }

    func report(_ error: any Error) { handler.withLock { $0 }?(error) }
}
