import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Ingest
import LedgerSupport
import Testing

/// Cluster mode's drop of a partition another instance owns (`IngestPipeline.drop`), on a
/// real log and checkpoints: what stays must be what a replay of the other partitions gives.
@Suite("Dropping a partition owned elsewhere")
struct PartitionDropTests {
    let topic = "wa.device-events"

    func message(_ device: String, _ index: Int, preview: String) -> [UInt8] {
        EventEncoder.encode(Event(
            eventId: "\(device)-m\(index)", deviceId: device, occurredAt: Int64(10_000 + index), chatId: "49155500\(index % 4)@c.us",
            payload: .messageCreated(MessageCreated(messageId: "\(device)-msg-\(index)", fromMe: false, kind: .text, preview: preview))))
    }

    @Test("its devices leave the projection, no checkpoint or log file keeps its content, verify holds, and a restart loads the same state")
    func dropLeavesNothing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("drop-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = IngestPipeline.Options(topic: topic, fsync: .never, checkpointEveryRecords: 1_000_000)
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: options)
        var offsets: [Int32: Int64] = [:]
        func accept(_ partition: Int32, _ device: String, _ value: [UInt8]) throws {
            let offset = offsets[partition, default: 0]
            offsets[partition] = offset + 1
            try Array(device.utf8).withUnsafeBytes { key in
                try value.withUnsafeBytes { try pipeline.accept(partition: partition, offset: offset, timestamp: offset, key: key, value: $0) }
            }
        }
        // Partition 1 holds a device with events, a duplicate and a dead letter, and a
        // device erased there (its version is kept by digest).
        for index in 0..<300 {
            try accept(0, "dev-p0", message("dev-p0", index, preview: "kept \(index)"))
            try accept(1, "dev-p1", message("dev-p1", index, preview: "only-on-partition-one \(index)"))
            try accept(2, "dev-p2", message("dev-p2", index, preview: "kept \(index)"))
            if index == 100 { try pipeline.checkpointIfDue(force: true) }
            if index % 50 == 0 { _ = try pipeline.commitBatch() }
        }
        try accept(1, "dev-p1", message("dev-p1", 7, preview: "only-on-partition-one 7"))  // a duplicate
        try accept(1, "dev-p1", Array(#"{"deviceId":"dev-p1","broken"#.utf8))
        try accept(1, "dev-p1-erased", message("dev-p1-erased", 1, preview: "only-on-partition-one erased"))
        let erasure = try ErasureRequest(deviceId: "dev-p1-erased", chatId: nil, contactId: nil, reason: "test")
        try accept(1, "dev-p1-erased", erasure.record(eventId: "erasure-p1", occurredAt: 20_000).value)
        _ = try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        try pipeline.checkpointIfDue(force: true)
        let before = pipeline.store.snapshot()
        #expect(before.counts.duplicate == 1 && before.counts.deadLetters == 1 && !before.erasedDeviceVersions.isEmpty)

        try pipeline.drop([1])

        let state = pipeline.store.snapshot()
        #expect(Set(state.devices.keys) == ["dev-p0", "dev-p2"])
        #expect(state.positions[1] == nil && state.chainHashes[1] == nil)
        #expect(state.erasedDeviceVersions.isEmpty, "the erased device's version came from partition 1")
        #expect(pipeline.partitionsWithLogs == [0, 2])
        #expect(pipeline.counters.droppedPartitions == 1)
        let log = EventLog(dataDirectory: directory)
        #expect(try log.partitions().map(\.partition) == [0, 2])
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: topic, threads: 1).state
        #expect(state.devices == replayed.devices && state.positions == replayed.positions && state.chainHashes == replayed.chainHashes)
        #expect(state.counts == before.counts, "the counts are totals of events seen")
        #expect(state.eventIds == replayed.eventIds && state.erasedDeviceVersions == replayed.erasedDeviceVersions)
        #expect(state.digest == replayed.digest, "the state is what a replay of the other partitions gives")
        #expect(pipeline.checkpoints.sequences().count == 1, "every older checkpoint is removed")
        let checks = CheckpointVerifier.verify(log: log, topic: topic, checkpoints: pipeline.checkpoints)
        #expect(checks.count == 1 && checks.allSatisfy(\.holds), "\(checks.flatMap(\.problems))")
        for (path, bytes) in try ErasureTests.files(directory) {
            #expect(bytes.firstRange(of: Array("only-on-partition-one".utf8)) == nil, "\(path) still holds partition 1's content")
            #expect(bytes.firstRange(of: Array("dev-p1".utf8)) == nil, "\(path) still names partition 1's device")
        }

        // A restart loads the same state; a directory an interrupted drop left is deleted.
        try pipeline.close()
        let leftover = log.logDirectory + "/" + topic + "/.dropped-5-1-abc"
        try FileManager.default.createDirectory(atPath: leftover + "/inner", withIntermediateDirectories: true)
        try Data("only-on-partition-one".utf8).write(to: URL(fileURLWithPath: leftover + "/inner/00000000000000000000.seg"))
        let reopened = try IngestPipeline(log: log, options: options)
        #expect(reopened.store.snapshot() == state)
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(reopened.partitionsWithLogs == [0, 2])
    }
}
