import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport
import Testing

/// Every path that folds the log reads a record through `StoredRecord`, with one policy
/// for a stored event this build no longer parses: it is counted as unreadable (not as a
/// dead letter, not silently skipped), the position moves past it, and `verify`'s scan
/// names it.
@Suite("Stored records: one fold, and unreadable events are counted")
struct StoredRecordTests {
    static let topic = DeviceEventsTopic.defaultName

    /// Partition 0: events at 0...5, an event record whose value no longer parses at 3
    /// (shifting the rest: 0,1,2 events, 3 unreadable, 4,5,6 events), a dead letter at 7.
    /// Partition 1: two events of another device.
    static func makeLog(_ directory: String) throws -> (log: EventLog, events: [Event]) {
        var script = Script()
        for index in 0..<6 { script.incoming("c\(index % 2)@c.us", "M\(index)", at: Int64(1_000 + index)) }
        var other = Script()
        other.deviceId = "dev-2"
        for index in 0..<2 { other.incoming("x@c.us", "N\(index)", at: Int64(2_000 + index)) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never))
        var offset: Int64 = 0
        for (index, event) in script.events.enumerated() {
            if index == 3 {
                // Valid once (say, for an older build): a type this parser does not know in a way it rejects.
                let stored = Array(#"{"schemaVersion":99,"eventId":"old","deviceId":"dev-1"}"#.utf8)
                try writer.stage(LogRecord(offset: offset, key: Array("dev-1".utf8), value: stored))
                offset += 1
            }
            try writer.stage(LogRecord(offset: offset, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
            offset += 1
        }
        try writer.stage(LogRecord(kind: .deadLetter, offset: offset, key: nil, value: [0x7B], reason: "invalid_json : x"))
        try writer.sync()
        let second = try log.openWriter(topic: topic, partition: 1, options: .init(fsync: .never))
        for (index, event) in other.events.enumerated() {
            try second.stage(LogRecord(offset: Int64(index), key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
        }
        try second.sync()
        return (log, script.events + other.events)
    }

    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("stored-record-\(UUID().uuidString)").path
    }

    @Test("reading a record: an event parses, a value that no longer parses is unreadable with the parser's error")
    func reading() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try Self.makeLog(directory)
        var kinds: [String] = []
        try log.reader(topic: Self.topic, partition: 0).forEach { record in
            switch StoredRecord(record, parser: EventParser()) {
            case .event: kinds.append("event")
            case .deadLetter: kinds.append("dead letter")
            case .gap: kinds.append("gap")
            case .redacted: kinds.append("redacted")
            case .unreadable(let error): kinds.append("unreadable \(error.code)")
            }
            return true
        }
        #expect(kinds == ["event", "event", "event", "unreadable unsupported_schema_version", "event", "event", "event", "dead letter"])
    }

    @Test("a replay counts the unreadable event apart from dead letters, moves past it, and folds the rest as if it were absent")
    func replayCountsUnreadable() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, events) = try Self.makeLog(directory)
        for threads in [1, 2] {
            let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: threads)
            #expect(replayed.records == 10)
            #expect(replayed.state.counts.unreadable == 1, "threads: \(threads)")
            #expect(replayed.state.counts.deadLetters == 1, "the dead letter only")
            #expect(replayed.state.counts.applied == 8)
            #expect(replayed.state.positions == [0: 7, 1: 1])
            var reference = ProjectionState()
            for event in events { reference.apply(event, at: LogPosition(partition: event.deviceId == "dev-1" ? 0 : 1, offset: 0)) }
            #expect(replayed.state.digest == reference.digest)
        }
    }

    @Test("the live store folds the same way, and its metric counts the unreadable event")
    func storeFoldAndMetric() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try Self.makeLog(directory)
        let store = ProjectionStore()
        let parser = EventParser()
        for partition: Int32 in [0, 1] {
            try log.reader(topic: Self.topic, partition: partition).forEach { record in
                store.fold(StoredRecord(record, parser: parser), at: LogPosition(partition: partition, offset: record.offset), chainHash: record.chainHash)
                return true
            }
        }
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        #expect(store.snapshot() == replayed, "one fold: the store and a replay agree, counts and chain hashes included")
        let metrics = MetricsRegistry()
        store.registerMetrics(in: metrics)
        #expect(metrics.render().contains("chatledger_projection_unreadable_events_total 1\n"))
    }

    @Test("verify's scan names each unreadable event's position and error; the audit views pass it")
    func scanAndAudit() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, events) = try Self.makeLog(directory)
        let findings = try UnreadableEventScan.scan(log: log, topic: Self.topic)
        #expect(findings.map(\.position) == [LogPosition(partition: 0, offset: 3)])
        #expect(findings.first?.error.code == .unsupportedSchemaVersion)

        let audit = AuditLog(dataDirectory: directory, topic: Self.topic)
        var exported = 0
        try audit.events(.init()) { _ in
            exported += 1
            return true
        }
        #expect(exported == events.count, "every readable event is exported; the unreadable one is reported, not exported")
        let device = try #require(try audit.device("dev-1", at: LogPosition(partition: 0, offset: 7)))
        #expect(device.version == 6)
    }
}
