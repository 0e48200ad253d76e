import ChatEvents
@testable import ChatProjection
import EventLog
import Foundation
import LedgerSupport
import Testing

/// The count of stored events this build cannot parse survives a restart: checkpoints
/// (format version 3) store it; a version 2 checkpoint, without it, is still read.
@Suite("Unreadable count in checkpoints")
struct UnreadableCountCheckpointTests {
    static let topic = StoredRecordTests.topic

    @Test("a restart from a checkpoint written after an unreadable event keeps counting it: the state, /metrics and the events after it")
    func restartKeepsTheCount() throws {
        let directory = StoredRecordTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try StoredRecordTests.makeLog(directory)
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        #expect(replayed.counts.unreadable == 1)
        let checkpoints = CheckpointStore(dataDirectory: directory)
        try checkpoints.write(replayed, topic: Self.topic)

        let loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(loaded.checkpoint != nil && loaded.replayedRecords == 0, "started from the checkpoint, nothing replayed")
        #expect(loaded.state.counts.unreadable == 1)
        #expect(loaded.state == replayed, "every count comes back as it was written")
        let metrics = MetricsRegistry()
        ProjectionStore(loaded.state).registerMetrics(in: metrics)
        #expect(metrics.render().contains("chatledger_projection_unreadable_events_total 1\n"))

        // One more unreadable event after the checkpoint: the count goes on from the stored one.
        let writer = try log.openWriter(topic: Self.topic, partition: 1, options: .init(fsync: .never))
        try writer.stage(LogRecord(offset: 2, key: Array("dev-2".utf8), value: Array(#"{"schemaVersion":99,"eventId":"old2","deviceId":"dev-2"}"#.utf8)))
        try writer.sync()
        let restarted = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(restarted.replayedRecords == 1 && restarted.state.counts.unreadable == 2)
    }

    @Test("a version 2 checkpoint (no unreadable count) is read as before: the same state, the count 0")
    func version2StillRead() throws {
        let directory = StoredRecordTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try StoredRecordTests.makeLog(directory)
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        let checkpoints = CheckpointStore(dataDirectory: directory)
        let info = try checkpoints.write(replayed, topic: Self.topic)

        // The same file as version 2 wrote it: version 2, no fifth count, no erased devices, its own CRC.
        let bytes = try OlderCheckpoint.bytes(of: info.path, state: replayed, topic: Self.topic, version: 2)
        try Data(bytes).write(to: URL(fileURLWithPath: info.path))

        let (read, readInfo) = try checkpoints.read(info.sequence)
        #expect(read.counts.unreadable == 0)
        #expect(read.counts.applied == replayed.counts.applied && read.counts.deadLetters == replayed.counts.deadLetters)
        #expect(read.devices == replayed.devices && readInfo.stateDigest == info.stateDigest)
    }
}
