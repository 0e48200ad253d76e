#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import LedgerSupport
import Synchronization
import Testing

/// `serve`'s follower as a library type: it folds what another writer appends to the log
/// into a store, in this process, with no child process.
@Suite("The projection follower")
struct ProjectionFollowerTests {
    static let topic = DeviceEventsTopic.defaultName

    /// Waits for `condition`, checking every few milliseconds; false after 30 s (a hung follower).
    static func eventually(_ condition: () -> Bool) -> Bool {
        Polling.until(seconds: 30, every: .milliseconds(2), condition)
    }

    @Test("folds records appended after it started (events, a gap, an unreadable event), wakes after each round, and stops once")
    func followsAppends() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("follower-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var script = Script()
        for index in 0..<8 { script.incoming("c\(index % 3)@c.us", "M\(index)", at: Int64(1_000 + index)) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        for (offset, event) in script.events.prefix(3).enumerated() {
            try writer.stage(LogRecord(offset: Int64(offset), key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
        }
        try writer.sync()

        let store = ProjectionStore()
        let gaps = GapRegister(topic: Self.topic, dataDirectory: directory)
        let follower = ProjectionFollower(log: log, topic: Self.topic, store: store, gaps: gaps)
        let wakes = Atomic<Int>(0)
        follower.onApplied { wakes.add(1, ordering: .relaxed) }
        let failures = Mutex<[String]>([])
        try follower.start { error in failures.withLock { $0.append("\(error)") } }
        defer { follower.stop() }
        #expect(Self.eventually { follower.isCaughtUp && store.appliedOffset(partition: 0) == 2 })
        #expect(wakes.load(ordering: .relaxed) >= 1)

        // Appended while it follows: a gap (offsets 3...9 lost), an unreadable event, the rest of the events.
        try writer.stageGap(
            LogGap(topic: Self.topic, partition: 0, firstLostOffset: 3, lastLostOffset: 9, brokerLogStartOffset: 10, detectedAt: 1, reason: "test"))
        try writer.stage(LogRecord(offset: 10, key: Array("dev-1".utf8), value: Array(#"{"not":"an event"}"#.utf8)))
        for (index, event) in script.events.dropFirst(3).enumerated() {
            try writer.stage(LogRecord(offset: Int64(11 + index), key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
        }
        try writer.sync()
        #expect(Self.eventually { store.appliedOffset(partition: 0) == 15 })
        #expect(follower.endOffsets == [0: 16])
        #expect(gaps.gaps.map(\.range) == [LogGap(topic: Self.topic, partition: 0, firstLostOffset: 3, lastLostOffset: 9, brokerLogStartOffset: 10, detectedAt: 1, reason: "test").range])
        let state = store.snapshot()
        #expect(state.counts.applied == 8 && state.counts.unreadable == 1 && state.counts.deadLetters == 0)
        #expect(state.digest == script.fold().1.digest, "the same chat lists as folding the events alone")
        #expect(state == (try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1)).state, "one fold: following equals a replay")

        follower.stop()
        follower.stop()  // a second stop is a no-op
        #expect(throws: ServiceLifecycle.IllegalTransition.self) { try follower.start { _ in } }
        #expect(failures.withLock { $0 }.isEmpty)
    }

    @Test("a partition that appears while it follows is picked up from its first record")
    func newPartition() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("follower-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let store = ProjectionStore()
        let follower = ProjectionFollower(log: log, topic: Self.topic, store: store, gaps: GapRegister(topic: Self.topic, dataDirectory: directory))
        try follower.start { _ in }
        defer { follower.stop() }
        #expect(Self.eventually { follower.isCaughtUp })
        var script = Script()
        script.incoming("a@c.us", "M1", at: 1)
        let writer = try log.openWriter(topic: Self.topic, partition: 3, options: .init(fsync: .never))
        try writer.stage(LogRecord(offset: 0, key: Array("dev-1".utf8), value: EventEncoder.encode(script.events[0])))
        try writer.sync()
        #expect(Self.eventually { store.appliedOffset(partition: 3) == 0 })
        #expect(store.version(of: "dev-1") == 1)
    }

    @Test("a partition log ingest drops (another instance owns it) leaves the store with its devices; made again, it is followed from its first record")
    func droppedPartition() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("follower-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        func event(_ device: String, _ index: Int) -> LogRecord {
            let event = Event(
                eventId: "\(device)-\(index)", deviceId: device, occurredAt: Int64(1_000 + index), chatId: "a@c.us",
                payload: .messageCreated(MessageCreated(messageId: "\(device)-m\(index)", fromMe: false, kind: .text, preview: "hi")))
            return LogRecord(offset: Int64(index), key: Array(device.utf8), value: EventEncoder.encode(event))
        }
        for (partition, device) in [(Int32(0), "dev-kept"), (1, "dev-dropped")] {
            let writer = try log.openWriter(topic: Self.topic, partition: partition, options: .init(fsync: .never))
            for index in 0..<5 { try writer.stage(event(device, index)) }
            try writer.sync()
        }
        let store = ProjectionStore()
        // A loaded checkpoint may hold a partition ingest dropped before this process followed it.
        let gone = event("dev-gone", 0)
        store.fold(.event(try EventParser().parse(try #require(gone.value))), at: LogPosition(partition: 7, offset: 0))
        #expect(store.snapshot().devices["dev-gone"] != nil)
        let follower = ProjectionFollower(log: log, topic: Self.topic, store: store, gaps: GapRegister(topic: Self.topic, dataDirectory: directory))
        let failures = Mutex<[String]>([])
        try follower.start { error in failures.withLock { $0.append("\(error)") } }
        defer { follower.stop() }
        #expect(Self.eventually { store.appliedOffset(partition: 1) == 4 && store.appliedOffset(partition: 0) == 4 })
        #expect(Self.eventually { store.snapshot().devices["dev-gone"] == nil && store.appliedOffset(partition: 7) == nil }, "a partition without a log goes")

        try log.removePartition(topic: Self.topic, partition: 1)
        #expect(Self.eventually { store.snapshot().devices["dev-dropped"] == nil }, "the dropped partition's device is gone")
        #expect(store.appliedOffset(partition: 1) == nil)
        #expect(store.snapshot().devices["dev-kept"]?.version == 5, "the other partition's device stays")

        // The partition comes back to this instance: ingest rebuilds its log from offset 0.
        let writer = try log.openWriter(topic: Self.topic, partition: 1, options: .init(fsync: .never))
        for index in 0..<2 { try writer.stage(event("dev-back", index)) }
        try writer.sync()
        #expect(Self.eventually { store.appliedOffset(partition: 1) == 1 }, "the new log is followed from its first record")
        #expect(store.snapshot().devices["dev-back"]?.version == 2)
        #expect(store.snapshot().devices["dev-dropped"] == nil)
        #expect(failures.withLock { $0 }.isEmpty, "the follower kept running")
    }
}
