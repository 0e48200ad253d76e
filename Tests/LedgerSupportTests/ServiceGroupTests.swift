import LedgerSupport
import Synchronization
import Testing

/// A service that records its start and stop in a shared journal; it can refuse to start.
private final class JournalService: Service {
    let serviceName: String
    private let journal: Journal
    private let refuses: Bool
    private let failure = Mutex<(@Sendable (any Error) -> Void)?>(nil)

    init(_ name: String, journal: Journal, refuses: Bool = false) {
        self.serviceName = name
        self.journal = journal
        self.refuses = refuses
    }

    struct Refused: Error {}

    func start(onFailure: @escaping @Sendable (any Error) -> Void) throws {
        if refuses { throw Refused() }
        failure.withLock { $0 = onFailure }
        journal.entries.withLock { $0.append("start \(serviceName)") }
    }

    func stop() { journal.entries.withLock { $0.append("stop \(serviceName)") } }

    /// Reports a failure as the service's thread would.
    func fail() { failure.withLock { $0 }?(Refused()) }
}

/// Journals are shared by reference between the test and its services.
private final class Journal: Sendable {
    let entries = Mutex<[String]>([])
}

/// A worker's flags, shared by reference.
private final class WorkerFlags: Sendable {
    let halted = Atomic<Bool>(false)
    let counted = Mutex<Int>(0)
    let running = Semaphore()
}

@Suite("Service lifecycle")
struct ServiceGroupTests {
    @Test("services start in order and stop in reverse order, once")
    func order() throws {
        let journal = Journal()
        let services = ["keys", "http", "ingest"].map { JournalService($0, journal: journal) }
        let group = ServiceGroup(services)
        try group.start()
        group.shutdown()
        guard case .requested = group.waitForShutdown() else {
            Issue.record("the wait ended for another reason")
            return
        }
        group.stop()
        group.stop()
        #expect(journal.entries.withLock { $0 } == ["start keys", "start http", "start ingest", "stop ingest", "stop http", "stop keys"])
    }

    @Test("a service that cannot start stops those started before it, in reverse, and the error is thrown")
    func refusedStart() throws {
        let journal = Journal()
        let group = ServiceGroup([
            JournalService("a", journal: journal), JournalService("b", journal: journal),
            JournalService("c", journal: journal, refuses: true), JournalService("d", journal: journal),
        ])
        #expect(throws: JournalService.Refused.self) { try group.start() }
        #expect(journal.entries.withLock { $0 } == ["start a", "start b", "stop b", "stop a"])
    }

    @Test("a service failing later ends the wait with its name: the one shutdown path")
    func failureEndsTheWait() throws {
        let journal = Journal()
        let failing = JournalService("follower", journal: journal)
        let group = ServiceGroup([JournalService("http", journal: journal), failing])
        try group.start()
        failing.fail()
        group.shutdown(ServiceGroup.Shutdown.signal(15))  // later causes do not replace the first
        #expect(throws: ServiceGroup.ServiceFailure.self) { try group.runUntilShutdown(signals: nil) }
        guard case .failure(let failure) = group.waitForShutdown() else {
            Issue.record("the wait ended for another reason")
            return
        }
        #expect(failure.service == "follower" && failure.error is JournalService.Refused)
        #expect(journal.entries.withLock { $0 }.suffix(2) == ["stop follower", "stop http"])
    }

    @Test("a thread service runs its body on its own thread until halted, owns what it was handed, and starts once")
    func threadService() throws {
        final class Unshared { var count = 0 }  // not Sendable: handed to the thread
        let unshared = Unshared()
        let flags = WorkerFlags()
        let service = ThreadService(name: "worker", threadName: "test-worker", halt: { flags.halted.store(true, ordering: .releasing) }) {
            flags.running.signal()
            while !flags.halted.load(ordering: .acquiring) { unshared.count += 1 }
            flags.counted.withLock { $0 = max(1, unshared.count) }
        }
        try service.start { _ in }
        flags.running.wait()
        service.stop()
        let halted = flags.halted.load(ordering: .acquiring)
        #expect(halted)
        #expect(flags.counted.withLock { $0 } > 0, "the body ran to its end, and was joined before stop returned")
        #expect(throws: ServiceLifecycle.IllegalTransition.self) { try service.start { _ in } }
    }

    @Test("a thread service whose body throws reports it as the service's failure")
    func threadServiceFailure() throws {
        struct Broken: Error {}
        let group = ServiceGroup([ThreadService(name: "ingest", threadName: "test-ingest", halt: {}) { throw Broken() }])
        try group.start()
        guard case .failure(let failure) = group.waitForShutdown() else {
            Issue.record("the wait ended for another reason")
            return
        }
        #expect(failure.service == "ingest" && failure.error is Broken)
        group.stop()
    }

    @Test("lifecycle moves: idle starts once; stop does the work only from running")
    func lifecycle() throws {
        var state = ServiceLifecycle.idle
        try state.start()
        #expect(throws: ServiceLifecycle.IllegalTransition.self) { try state.start() }
        #expect(state.stop() == true)
        #expect(state.stop() == false)
        var never = ServiceLifecycle.idle
        #expect(never.stop() == false)
        #expect(throws: ServiceLifecycle.IllegalTransition.self) { try never.start() }
    }
}
