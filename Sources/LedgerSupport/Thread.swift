#if canImport(Glibc)
import Glibc
#endif

/// A dedicated OS thread for blocking work (polling Kafka, `sigwait`, `epoll_wait`,
/// `fsync`), kept off Swift's cooperative pool.
public final class Thread: Sendable {
    private let body: @Sendable () -> Void
    // SAFETY: written once by `start()` before any `join()`; both are called by the owner only.
    private nonisolated(unsafe) var handle = pthread_t()

    /// Creates a thread that runs `body` once started.
    public init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    /// Starts the thread.
    public func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&handle, nil, { raw in
            let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            thread.body()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")  // only on resource exhaustion at start-up
    }

    /// Waits for the thread to finish.
    public func join() {
        pthread_join(handle, nil)
    }
}

/// A counting semaphore over `sem_t`, for handing a wake-up from one thread to another.
public final class Semaphore: @unchecked Sendable {
    // SAFETY: sem_t is designed for concurrent use from many threads; the pointer is
    // allocated once and freed in deinit, after every user is gone.
    private let semaphore: UnsafeMutablePointer<sem_t>

    public init(value: UInt32 = 0) {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, value)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    public func signal() { sem_post(semaphore) }

    public func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }
}
