#if canImport(Glibc)
import Glibc
#endif
import Foundation
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

    /// Ends the thread (once); a command still running is terminated (SIGTERM to its group,
    /// or to its shell when the group was not made yet).
    package func stop() {
        let (running, first) = shared.state.withLock { state -> (pid_t?, Bool) in
            defer { state.stopping = true }
            return (state.running, !state.stopping)
        }
        guard first else { return }
        if let running, kill(-running, SIGTERM) != 0 { kill(running, SIGTERM) }
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

    /// Runs the command for `path`; nil on success, else why not.
    private static func run(_ shared: Shared, _ path: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", shared.command + " \"$1\"", "sh", path]
        do {
            try process.run()
        } catch {
            return "archive command could not start: \(error)"
        }
        let pid = process.processIdentifier
        // Its own process group, so `stop` reaches whatever the shell started.
        setpgid(pid, pid)
        let stopping = shared.state.withLock { state -> Bool in
            state.running = pid
            return state.stopping
        }
        if stopping, kill(-pid, SIGTERM) != 0 { kill(pid, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus == 0 ? nil : "archive command exited with \(process.terminationStatus) for \(path)"
    }
}
