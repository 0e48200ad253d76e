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
}
