import LedgerSupport
import Testing

@Suite("Semaphore")
struct SemaphoreTests {
    @Test("a timed wait without a signal gives up and says so; one with a signal already posted, or posted by another thread, takes it; signals are counted")
    func timedWait() {
        let semaphore = Semaphore()
        #expect(!semaphore.wait(milliseconds: 20), "nothing signalled: false once the time is up")
        semaphore.signal()
        semaphore.signal()
        #expect(semaphore.wait(milliseconds: 0), "a posted signal is taken even with no time to wait")
        #expect(semaphore.wait(milliseconds: 1_500), "so is the second: signals are counted")
        #expect(!semaphore.wait(milliseconds: 0), "and then none is left")

        let ready = Semaphore()
        LedgerThread(name: "semaphore-test") {
            ready.wait()
            semaphore.signal()
        }.start()
        ready.signal()
        #expect(semaphore.wait(milliseconds: 60_000), "a signal from another thread ends the wait")
    }
}
