#if canImport(Glibc)
import Glibc
#endif

/// A dedicated OS thread for blocking work (polling Kafka, `sigwait`, `epoll_wait`,
/// `fsync`), kept off Swift's cooperative pool.
public final class Thread: Sendable {
    private let body: @Sendable () -> Void
    /// Shown by `top -H`, `ps -L` and debuggers; Linux keeps at most 15 bytes.
    private let name: String?
    // SAFETY: written once by `start()` before any `join()`; both are called by the owner only.
    private nonisolated(unsafe) var handle = pthread_t()

    /// Creates a thread that runs `body` once started.
    public init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        self.name = nil
    }

    /// Creates a thread named `name` (at most 15 bytes kept) that runs `body` once started.
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.body = body
        self.name = name
    }

    /// Starts the thread.
    public func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&handle, nil, { raw in
            let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            if let name = thread.name { Thread.nameCurrentThread(name) }
            thread.body()
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
