#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A dedicated OS thread for blocking work (polling Kafka, `sigwait`, `epoll_wait`,
/// `fsync`), kept off Swift's cooperative pool. Prefixed so that it never shadows
/// `Foundation.Thread` (swift-nio's `NIOThread` does the same).
///
/// A body given to `owning(name:_:)` is `sending`: it may own what nothing else touches (a
/// non-`Sendable` pipeline handed to the ingest thread). Every body runs once, on the new
/// thread.
package final class LedgerThread: Sendable {
    private let body: Mutex<(() -> Void)?>
    /// Shown by `top -H`, `ps -L` and debuggers; Linux keeps at most 15 bytes.
    private let name: String?
    // SAFETY: written once by `start()` before any `join()`; both are called by the owner only.
    private nonisolated(unsafe) var handle = pthread_t()

    /// Creates a thread that runs `body` once started.
    package init(_ body: @escaping @Sendable () -> Void) {
        self.body = Mutex(body)
        self.name = nil
    }

    /// Creates a thread named `name` (at most 15 bytes kept) that runs `body` once started.
    package init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.body = Mutex(body)
        self.name = name
    }

    /// A thread named `name` that runs `body`, which owns what it captures: the caller
    /// hands it over and touches none of it again (the compiler checks).
    package static func owning(name: String, _ body: sending @escaping () -> Void) -> LedgerThread {
        LedgerThread(name: name, handedOver: body)
    }

    private init(name: String, handedOver body: sending @escaping () -> Void) {
        self.body = Mutex(body)
        self.name = name
    }

    /// Starts the thread.
    package func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&handle, nil, { raw in
            let thread = Unmanaged<LedgerThread>.fromOpaque(raw!).takeRetainedValue()
            if let name = thread.name { LedgerThread.nameCurrentThread(name) }
            let body = thread.body.withLock { $0.take() }
            body?()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")  // only on resource exhaustion at start-up
    }

    /// Names the calling thread (`comm`, what `top -H` shows): Glibc's `pthread_setname_np`
    /// is not visible to Swift, so through `/proc/thread-self/comm`. Best effort.
    private static func nameCurrentThread(_ name: String) {
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// Waits for the thread to finish.
    package func join() {
        pthread_join(handle, nil)
    }
}
