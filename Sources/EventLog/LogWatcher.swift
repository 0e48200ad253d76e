#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

/// One inotify instance over several log directories: `waitForChanges` returns as soon
/// as any of them changes (a record appended, a segment created). Changes that happen
/// after a directory is watched and before the wait are not lost: inotify queues them.
///
/// Used from one thread.
package final class LogWatcher {
    private let notifications: Int32
    private var watched: Set<String> = []

    /// A watcher with nothing watched yet.
    package init() {
        notifications = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
    }

    deinit {
        if notifications >= 0 { close(notifications) }
    }

    /// Watches `directory` (once); false if it cannot be watched (it does not exist yet,
    /// or inotify is unavailable): then `waitForChanges` is a short poll for it.
    @discardableResult
    package func watch(_ directory: String) -> Bool {
        if watched.contains(directory) { return true }
        guard notifications >= 0,
            inotify_add_watch(notifications, directory, UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE)) >= 0
        else { return false }
        watched.insert(directory)
        return true
    }

    /// Forgets `directory` (it was deleted: the kernel dropped its watch), so a directory
    /// made again under that path is watched anew by the next `watch`.
    package func forget(_ directory: String) {
        watched.remove(directory)
    }

    /// Blocks until a watched directory changes or `timeoutMilliseconds` pass; with
    /// nothing watched, sleeps at most 50 ms (a short poll).
    package func waitForChanges(timeoutMilliseconds: Int32) {
        guard !watched.isEmpty else {
            var request = timespec(tv_sec: 0, tv_nsec: Int(min(timeoutMilliseconds, 50)) * 1_000_000)
            var remaining = timespec()
            nanosleep(&request, &remaining)
            return
        }
        var descriptor = pollfd(fd: notifications, events: Int16(POLLIN), revents: 0)
        _ = try? SystemCall.run("poll") { Glibc.poll(&descriptor, 1, timeoutMilliseconds) }
        var drain = [UInt8](repeating: 0, count: 4096)
        while read(notifications, &drain, drain.count) > 0 {}
    }
}
