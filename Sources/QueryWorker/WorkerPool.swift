import LedgerSupport
import Synchronization

/// A few named threads that run submitted jobs, oldest first, off the caller's thread:
/// the HTTP server's deferred work (`Reply.deferred`) and the cluster's forwards each run
/// on one. `stop()` refuses new jobs, lets the threads finish what is queued, and joins them.
package final class WorkerPool: Sendable {
    private struct Queue {
        /// Jobs not started yet, `jobs[next...]` (taken by index: nothing is moved per job;
        /// emptied, keeping its capacity, once all are taken).
        var jobs: [@Sendable () -> Void] = []
        var next = 0
        var stopping = false

        mutating func take() -> (@Sendable () -> Void)? {
            guard next < jobs.count else { return nil }
            let job = jobs[next]
            next += 1
            if next == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                next = 0
            }
            return job
        }
    }

    private let queue = Mutex(Queue())
    private let available = Semaphore()
    private let threads = Mutex<[LedgerThread]>([])

    /// Starts `count` threads (at least one) named `name` (Linux keeps 15 bytes).
    package init(name: String, threads count: Int) {
        let started = (0..<max(1, count)).map { _ in LedgerThread(name: name) { [self] in work() } }
        threads.withLock { $0 = started }
        for thread in started { thread.start() }
    }

    private func work() {
        while true {
            available.wait()
            // One signal per job, and one per thread at stop: a signal finds a job, or the
            // pool is stopping and nothing is left to run.
            guard let job = queue.withLock({ $0.take() }) else {
                if queue.withLock({ $0.stopping }) { return }
                continue
            }
            job()
        }
    }

    /// Queues `job` for the next free thread; false (and `job` is not run) once `stop()` was called.
    @discardableResult
    package func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let accepted = queue.withLock { queue in
            guard !queue.stopping else { return false }
            queue.jobs.append(job)
            return true
        }
        if accepted { available.signal() }
        return accepted
    }

    /// Refuses new jobs, waits for the queued and running ones to finish, and joins the
    /// threads. Later calls do nothing.
    package func stop() {
        let started = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        queue.withLock { $0.stopping = true }
        for _ in started { available.signal() }
        for thread in started { thread.join() }
    }
}
