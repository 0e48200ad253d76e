import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Testing

/// A gap record (offsets the broker had lost) is passed by every path that reads the log:
/// the position moves past it, nothing is folded, and it is no dead letter.
@Suite("Replays pass gap records")
struct GapReplayTests {
    static let topic = "wa.device-events"

    /// Partition 0: events 0..4, a gap 5..49, events 50..54 and a dead letter at 55.
    static func makeLog(_ directory: String) throws -> (log: EventLog, events: [Event]) {
        var script = Script()
        for index in 0..<10 { script.incoming("c\(index % 3)@c.us", "M\(index)", at: Int64(1_000 + index)) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never))
        let offsets: [Int64] = [0, 1, 2, 3, 4, 50, 51, 52, 53, 54]
        for (offset, event) in zip(offsets, script.events) {
            if offset == 50 {
                try writer.stageGap(
                    LogGap(topic: topic, partition: 0, firstLostOffset: 5, lastLostOffset: 49, brokerLogStartOffset: 50, detectedAt: 1, reason: "test"))
            }
            try writer.stage(LogRecord(offset: offset, timestamp: 1_000 + offset, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
        }
        try writer.stage(LogRecord(kind: .deadLetter, offset: 55, key: nil, value: [0x7B], reason: "invalid_json : x"))
        try writer.sync()
        return (log, script.events)
    }

    @Test("a replay from zero folds the events on both sides of a gap, ends past it, and counts no dead letter for it")
    func replayFromZero() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gap-replay-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, events) = try Self.makeLog(directory)
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1)
        #expect(replayed.records == 12, "10 events, the gap, the dead letter")
        #expect(replayed.state.positions[0] == 55)
        #expect(replayed.state.counts.applied == 10 && replayed.state.counts.deadLetters == 1)
        var reference = ProjectionState()
        for event in events { reference.apply(event, at: LogPosition(partition: 0, offset: 0)) }
        #expect(replayed.state.digest == reference.digest)

        // To a position inside the lost range: what the log held then, the five events before the gap.
        var inside = ProjectionState()
        try ProjectionRecovery.replay(into: &inside, log: log, topic: Self.topic, upTo: LogPosition(partition: 0, offset: 20))
        #expect(inside.positions[0] == 4 && inside.counts.applied == 5)
        // To the gap itself: the position is the gap's, nothing more is folded.
        var atGap = ProjectionState()
        try ProjectionRecovery.replay(into: &atGap, log: log, topic: Self.topic, upTo: LogPosition(partition: 0, offset: 49))
        #expect(atGap.positions[0] == 49 && atGap.counts.applied == 5 && atGap.counts.deadLetters == 0)
    }

    @Test("a checkpoint at the gap is resumed from; the audit views skip the gap")
    func checkpointAtGapAndAudit() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gap-replay-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, events) = try Self.makeLog(directory)
        let checkpoints = CheckpointStore(dataDirectory: directory)
        var atGap = ProjectionState()
        try ProjectionRecovery.replay(into: &atGap, log: log, topic: Self.topic, upTo: LogPosition(partition: 0, offset: 49))
        try checkpoints.write(atGap, topic: Self.topic)
        let loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(loaded.checkpoint != nil, "the record after the gap chains from the checkpoint's hash")
        #expect(loaded.replayedRecords == 6 && loaded.state.positions[0] == 55)
        #expect(loaded.state.digest == (try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1)).state.digest)

        let audit = AuditLog(dataDirectory: directory, topic: Self.topic)
        var exported: [String] = []
        try audit.events(.init()) { line in
            exported.append(String(decoding: line, as: UTF8.self))
            return true
        }
        #expect(exported.count == events.count, "events only: no line for the gap or the dead letter")
        #expect(!exported.contains { $0.contains("\"offset\":49,") })
        let device = try #require(try audit.device("dev-1", at: LogPosition(partition: 0, offset: 51)))
        #expect(device.version == 7, "five events before the gap, two after it")
        // A replay to a point the broker lost is a clear error, not the state before the gap.
        #expect(throws: AuditLog.PositionNotInLog.self, "offset 20 was lost") { try audit.device("dev-1", at: LogPosition(partition: 0, offset: 20)) }
        #expect(throws: AuditLog.PositionNotInLog.self, "offset 5 was lost") { try audit.device("dev-1", at: LogPosition(partition: 0, offset: 5)) }
        #expect(try audit.device("dev-1", at: LogPosition(partition: 0, offset: 4))?.version == 5, "just before the gap")
        #expect(try audit.device("dev-1", at: LogPosition(partition: 0, offset: 49))?.version == 5, "the gap record itself (ingest's applied offset after it)")
    }
}
