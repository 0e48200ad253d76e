import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Testing

/// Checkpoint verification as a library type: each checkpoint against a replay of the log.
@Suite("Checkpoint verification")
struct CheckpointVerifierTests {
    static let topic = DeviceEventsTopic.defaultName

    @Test("a checkpoint of the log holds; one whose state differs, or whose position is beyond the log, fails with the reason")
    func holdsAndFails() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-verify-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, events) = try StoredRecordTests.makeLog(directory)
        let checkpoints = CheckpointStore(dataDirectory: directory)

        var good = ProjectionState()
        try ProjectionRecovery.replay(into: &good, log: log, topic: Self.topic, upTo: LogPosition(partition: 0, offset: 5))
        try checkpoints.write(good, topic: Self.topic)
        // A state that no replay gives, at the same position and chain hash: one more event.
        var wrong = good
        var extra = events[0]
        extra.eventId = "not-in-the-log"
        extra.occurredAt += 1
        wrong.apply(extra, at: LogPosition(partition: 0, offset: 5), chainHash: try #require(good.chainHashes[0]))
        try checkpoints.write(wrong, topic: Self.topic)
        var beyond = ProjectionState()
        try ProjectionRecovery.replay(into: &beyond, log: log, topic: Self.topic)
        beyond.fold(.deadLetter, at: LogPosition(partition: 1, offset: 40))
        try checkpoints.write(beyond, topic: Self.topic)

        let checks = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(checks.count == 3)
        #expect(checks[0].holds, "\(checks[0].problems)")
        #expect(checks[0].unreadableEvents == 1, "the replay to offset 5 passed the unreadable event at 3")
        #expect(checks[0].positions == [0: 5])
        #expect(checks[1].problems.count == 1 && checks[1].problems[0].hasPrefix("state digest"), "\(checks[1].problems)")
        #expect(checks[2].problems.contains { $0.hasPrefix("position 1:40 is beyond the log (it ends at 1)") }, "\(checks[2].problems)")
        #expect(checks[2].attestationValid == nil, "no key: attestation not checked")
    }

    /// Three partitions of 40 records, each with unreadable events before, between and after
    /// the checkpoints' positions; every third record of partition 1 a dead letter.
    static func makeLongLog(_ directory: String, maxSegmentBytes: Int = 128 << 20) throws -> EventLog {
        let log = EventLog(dataDirectory: directory)
        for partition: Int32 in 0..<3 {
            var script = Script()
            script.deviceId = "dev-p\(partition)"
            for index in 0..<40 { script.incoming("c\(index % 5)@c.us", "P\(partition)-M\(index)", at: Int64(1_000 + index)) }
            let writer = try log.openWriter(topic: topic, partition: partition, options: .init(fsync: .never, maxSegmentBytes: maxSegmentBytes))
            for (index, event) in script.events.enumerated() {
                let offset = Int64(index)
                if [2, 14, 33].contains(index + Int(partition)) {
                    let stored = Array(#"{"schemaVersion":99,"eventId":"old-\#(partition)-\#(index)","deviceId":"dev"}"#.utf8)
                    try writer.stage(LogRecord(offset: offset, key: Array(script.deviceId.utf8), value: stored))
                } else if partition == 1, index % 3 == 2 {
                    try writer.stage(LogRecord(kind: .deadLetter, offset: offset, key: nil, value: [0x7B], reason: "invalid_json : x"))
                } else {
                    try writer.stage(LogRecord(offset: offset, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
                }
            }
            try writer.sync()
        }
        return log
    }

    /// What verify found before the one pass: for each checkpoint a replay from nothing to
    /// its positions, then a scan of the whole log for unreadable events.
    static func replayEachFromTheStart(log: EventLog, checkpoints: CheckpointStore) throws -> (checks: [String], unreadable: [UnreadableEventScan.Finding]) {
        let checks = checkpoints.sequences().map { sequence -> String in
            var replayed = ProjectionState()
            var problems: [String] = []
            do {
                let (_, info) = try checkpoints.read(sequence)
                for (partition, offset) in info.positions.sorted(by: { $0.key < $1.key }) {
                    try ProjectionRecovery.replay(into: &replayed, log: log, topic: topic, upTo: LogPosition(partition: partition, offset: offset))
                    if replayed.positions[partition] != offset {
                        problems.append("position \(partition):\(offset) is beyond the log (it ends at \(replayed.positions[partition].map(String.init) ?? "nothing"))")
                    } else if replayed.chainHashes[partition] != info.chainHashes[partition] {
                        problems.append("chain hash at \(partition):\(offset) differs from the log's")
                    }
                }
                if replayed.digest != info.stateDigest {
                    problems.append("state digest \(info.stateDigest.hex.prefix(16)) differs from a replay of the log (\(replayed.digest.hex.prefix(16)))")
                }
                return "\(sequence) \(problems) unreadable \(replayed.counts.unreadable)"
            } catch {
                return "\(sequence) \(problems + ["\(error)"]) unreadable 0"
            }
        }
        return (checks, try UnreadableEventScan.scan(log: log, topic: topic))
    }

    /// Writes checkpoints of replays to `cuts` (each a partition's last offset; a partition
    /// left out is not folded) and one more whose state no replay gives.
    static func writeCheckpoints(_ cuts: [[Int32: Int64]], log: EventLog, to checkpoints: CheckpointStore) throws {
        for cut in cuts {
            var state = ProjectionState()
            for (partition, offset) in cut.sorted(by: { $0.key < $1.key }) {
                try ProjectionRecovery.replay(into: &state, log: log, topic: topic, upTo: LogPosition(partition: partition, offset: offset))
            }
            try checkpoints.write(state, topic: topic)
        }
        var wrong = ProjectionState()
        try ProjectionRecovery.replay(into: &wrong, log: log, topic: topic)
        var script = Script()
        script.incoming("c0@c.us", "not-in-the-log", at: 5_000)
        script.events[0].eventId = "not-in-the-log"
        wrong.apply(script.events[0], at: LogPosition(partition: 0, offset: 39), chainHash: try #require(wrong.chainHashes[0]))
        try checkpoints.write(wrong, topic: topic)
    }

    @Test("one pass carried from checkpoint to checkpoint finds what a replay per checkpoint and a scan find: positions forward and back, a partition added and left out, a wrong state, unreadable events everywhere")
    func onePassAgreesWithAReplayPerCheckpoint() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-pass-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try Self.makeLongLog(directory)
        let checkpoints = CheckpointStore(dataDirectory: directory, retain: 10)
        try Self.writeCheckpoints(
            [[0: 9, 1: 5], [0: 19, 1: 15, 2: 10], [0: 12, 1: 15, 2: 10], [0: 25, 2: 30], [0: 39, 1: 39, 2: 39]],
            log: log, to: checkpoints)

        let (checks, unreadable) = try CheckpointVerifier.verifyWithUnreadableEvents(log: log, topic: Self.topic, checkpoints: checkpoints)
        let expected = try Self.replayEachFromTheStart(log: log, checkpoints: checkpoints)
        #expect(checks.map(Self.summary) == expected.checks)
        #expect(unreadable == expected.unreadable)
        #expect(unreadable.count == 9, "three unreadable events in each partition, found once each")
        #expect(checks.map(\.holds) == [true, true, true, true, true, false], "\(checks.map(\.problems))")
        #expect(checks[4].unreadableEvents == 9 && checks[0].unreadableEvents == 2)
        #expect(CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: checkpoints).map(Self.summary) == expected.checks)
    }

    @Test("damage in a partition between two checkpoints' positions: the checks and the unreadable events found are a replay per checkpoint's")
    func onePassAgreesOnDamage() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-pass-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try Self.makeLongLog(directory)
        let checkpoints = CheckpointStore(dataDirectory: directory, retain: 10)
        try Self.writeCheckpoints([[0: 9, 1: 9, 2: 9], [0: 29, 1: 29, 2: 29], [0: 39, 1: 39, 2: 39]], log: log, to: checkpoints)
        // One byte of partition 1's record 19 changed: its CRC no longer holds.
        let segment = try #require(
            try FileManager.default.contentsOfDirectory(atPath: log.directory(topic: Self.topic, partition: 1)).first { $0.hasSuffix(".seg") })
        let path = log.directory(topic: Self.topic, partition: 1) + "/" + segment
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let marker = Array("P1-M19".utf8)
        let at = try #require(bytes.indices.first { bytes[$0..<min($0 + marker.count, bytes.count)].elementsEqual(marker) })
        bytes[at] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let (checks, unreadable) = try CheckpointVerifier.verifyWithUnreadableEvents(log: log, topic: Self.topic, checkpoints: checkpoints)
        let expected = try Self.replayEachFromTheStart(log: log, checkpoints: checkpoints)
        #expect(checks.map(Self.summary) == expected.checks)
        #expect(unreadable == expected.unreadable)
        #expect(checks.map(\.holds) == [true, false, false, false], "\(checks.map(\.problems))")
        #expect(!unreadable.contains { $0.position.partition == 1 && $0.position.offset > 19 }, "partition 1 is scanned up to the damage")
    }

    @Test("after retention, the oldest checkpoint is the base: checks carried from it hold; a base the log does not chain from fails every check, naming the partition")
    func retainedLogVerifiesFromItsBase() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-retained-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: directory + "-other")
        }
        let log = try Self.makeLongLog(directory, maxSegmentBytes: 2_000)
        let checkpoints = CheckpointStore(dataDirectory: directory, retain: 10)
        try Self.writeCheckpoints([[0: 25, 1: 25, 2: 25], [0: 30, 1: 35, 2: 33]], log: log, to: checkpoints)
        // Beside them, a base whose chain hash at 0:25 is not the log's: nothing can be replayed from it.
        let other = CheckpointStore(dataDirectory: directory + "-other", retain: 10)
        var state = ProjectionState()
        for partition: Int32 in 0..<3 {
            try ProjectionRecovery.replay(into: &state, log: log, topic: Self.topic, upTo: LogPosition(partition: partition, offset: partition == 0 ? 24 : 25))
        }
        state.pass(at: LogPosition(partition: 0, offset: 25), chainHash: .zero)
        try other.write(state, topic: Self.topic)
        try Self.writeCheckpoints([[0: 30, 1: 35, 2: 33]], log: log, to: other)
        let removed = try LogRetention(policy: RetentionPolicy(maxBytes: 1)).enforce(log: log, topic: Self.topic, partition: 0, keepAfter: 25, now: 0)
        let base = try #require(removed.base, "segments before offset 25 were removed")
        #expect(base.baseOffset > 0 && base.baseOffset <= 26)

        let (checks, unreadable) = try CheckpointVerifier.verifyWithUnreadableEvents(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(checks.map(\.holds) == [true, true, false], "\(checks.map(\.problems))")
        #expect(unreadable == (try UnreadableEventScan.scan(log: log, topic: Self.topic)))
        #expect(unreadable.map(\.position.partition) == [0, 1, 1, 1, 2, 2, 2], "partition 0 holds only its unreadable event at 33 after retention")

        let first = try #require(other.sequences().first)
        let unchained = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: other)
        #expect(unchained.count == 3)
        for check in unchained {
            #expect(check.problems == ["\(other.path(first)): partition 0: the log after offset 25 does not chain from the checkpoint"], "\(check.problems)")
        }
    }

    /// A check as `replayEachFromTheStart` writes one.
    static func summary(_ check: CheckpointVerifier.Check) -> String {
        "\(check.sequence) \(check.problems) unreadable \(check.unreadableEvents)"
    }
}
