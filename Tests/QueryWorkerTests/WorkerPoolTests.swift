#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport
import QueryWorker
import Synchronization
import Testing

/// `WorkerPool`, under the HTTP server's deferred work and the cluster's forwards: jobs run
/// oldest first, `stop()` lets what was queued before it run, and a job submitted after it
/// is refused and never runs.
@Suite("WorkerPool: jobs in order, stop drains, then refuses")
struct WorkerPoolTests {
    @Test("jobs queued behind a running one when stop() is called still run, in order; a job submitted after stop() is refused and never runs")
    func stopRunsQueuedJobsThenRefuses() {
        let pool = WorkerPool(name: "test-pool", threads: 1)
        let gate = Semaphore()
        let ran = Mutex<[String]>([])
        pool.submit {
            gate.wait()
            ran.withLock { $0.append("first") }
        }
        for name in ["a", "b", "c"] { pool.submit { ran.withLock { $0.append(name) } } }
        let stopper = LedgerThread(name: "test-stopper") { pool.stop() }
        stopper.start()
        // Once stop() has begun, submissions are refused; the probes accepted before that run.
        let probesRun = Atomic<Int>(0)
        var probesAccepted = 0
        while pool.submit({ probesRun.add(1, ordering: .relaxed) }) {
            probesAccepted += 1
            sched_yield()
        }
        gate.signal()  // the first job could not finish before stop() began
        stopper.join()
        #expect(ran.withLock { $0 } == ["first", "a", "b", "c"])
        #expect(probesRun.load(ordering: .relaxed) == probesAccepted, "the refused probe never ran")
        #expect(pool.submit { ran.withLock { $0.append("late") } } == false)
        #expect(ran.withLock { $0 }.count == 4)
    }

    @Test("several threads run every job once")
    func severalThreadsRunEveryJobOnce() {
        let pool = WorkerPool(name: "test-pool", threads: 4)
        let counts = Mutex<[Int]>(Array(repeating: 0, count: 200))
        for index in 0..<200 { pool.submit { counts.withLock { $0[index] += 1 } } }
        pool.stop()
        #expect(counts.withLock { $0 } == Array(repeating: 1, count: 200))
    }
}
