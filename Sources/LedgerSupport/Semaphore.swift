#if canImport(Glibc)
import Glibc
#endif

/// A counting semaphore over `sem_t`, for handing a wake-up from one thread to another.
package final class Semaphore: @unchecked Sendable {
    // SAFETY: sem_t is designed for concurrent use from many threads; the pointer is
    // allocated once and freed in deinit, after every user is gone.
    private let semaphore: UnsafeMutablePointer<sem_t>

    package init(value: UInt32 = 0) {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, value)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    package func signal() { sem_post(semaphore) }

    package func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }
}
