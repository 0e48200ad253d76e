#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport
import Synchronization

/// Runs `--archive-command` for segments retention wants to remove, one at a time, on a
/// thread of its own, so a slow or hanging command never holds up the thread that
/// enforces retention (ingest's: a command waited for there stopped consumption while
/// every health signal still said "caught up").
///
/// Retention asks for a segment (`request`) and removes it only once its run has ended
/// well (`status` is `.archived`); a failed run is reported once and forgotten, so the
/// next pass asks again. `stop()` ends the thread and terminates a command still running
/// (its segment stays and is archived again after the next start).
package final class SegmentArchiver: Sendable {
    /// Where a segment's archiving stands.
    package enum Status: Sendable, Equatable {
        case waiting
        case archived
        case failed(String)
    }

    private struct State {
        var statuses: [String: Status] = [:]
        var queue: [String] = []
        var running: pid_t?
        var stopping = false
    }

    /// What the caller and the archiving thread share (the thread holds this, not the
    /// archiver, so dropping the archiver stops the thread).
    private final class Shared: Sendable {
        let command: String
        let state = Mutex(State())
        let work = Semaphore()

        init(command: String) { self.command = command }
    }

    private let shared: Shared
    private let thread: LedgerThread

    /// - Parameter command: run as `/bin/sh -c 'COMMAND "$1"' sh SEGMENT`.
    package init(command: String) {
        let shared = Shared(command: command)
        self.shared = shared
        thread = LedgerThread(name: "chatledger-arch") { Self.runQueue(shared) }
        thread.start()
    }

    deinit { stop() }

    /// Queues `path` unless it is queued, running or done already.
    package func request(_ path: String) {
        let queued = shared.state.withLock { state -> Bool in
            guard state.statuses[path] == nil, !state.stopping else { return false }
            state.statuses[path] = .waiting
            state.queue.append(path)
            return true
        }
        if queued { shared.work.signal() }
    }

    /// Where `path` stands (nil: never requested, or its failure was taken); a failure is
    /// handed out once, so the next pass requests the segment again.
    package func status(of path: String) -> Status? {
        shared.state.withLock { state in
            let status = state.statuses[path]
            if case .failed = status { state.statuses[path] = nil }
            return status
        }
    }

    /// Forgets a segment retention has removed.
    package func forget(_ path: String) {
        _ = shared.state.withLock { $0.statuses.removeValue(forKey: path) }
    }

    /// Ends the thread (once); a command still running is terminated (SIGTERM to its process group).
    package func stop() {
        let (running, first) = shared.state.withLock { state -> (pid_t?, Bool) in
            defer { state.stopping = true }
            return (state.running, !state.stopping)
        }
        guard first else { return }
        if let running { kill(-running, SIGTERM) }
        shared.work.signal()
        thread.join()
    }

    private static func runQueue(_ shared: Shared) {
        while true {
            shared.work.wait()
            while let path = shared.state.withLock({ $0.stopping || $0.queue.isEmpty ? nil : $0.queue.removeFirst() }) {
                let outcome = run(shared, path)
                shared.state.withLock { state in
                    state.running = nil
                    state.statuses[path] = outcome.map { .failed($0) } ?? .archived
                }
            }
            if shared.state.withLock({ $0.stopping }) { return }
        }
    }

    /// Runs the command for `path` in a process group of its own (so `stop` reaches
    /// whatever the shell started: an orphan left running would keep the files it holds
    /// open); nil on success, else why not.
    private static func run(_ shared: Shared, _ path: String) -> String? {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let script: String = shared.command + " \"$1\""
        var argv: [UnsafeMutablePointer<CChar>?] = [String]([
            "/bin/sh", "-c", script, "sh", path,
        ]).map { (argument: String) in strdup(argument) }
        argv.append(nil)
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/bin/sh", nil, &attributes, &argv, environ)
        guard spawned == 0 else { return "archive command could not start: \(String(cString: strerror(spawned)))" }
        let stopping = shared.state.withLock { state -> Bool in
            state.running = pid
            return state.stopping
        }
        if stopping { kill(-pid, SIGTERM) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return "archive command could not be waited for: errno \(errno)" }
        }
        // WIFEXITED and WEXITSTATUS, which Swift does not import (they are macros).
        let exited = status & 0x7F == 0
        let code = (status >> 8) & 0xFF
        if exited, code == 0 { return nil }
        return exited ? "archive command exited with \(code) for \(path)" : "archive command ended by signal \(status & 0x7F) for \(path)"
    }
}
