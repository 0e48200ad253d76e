import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Ingest
import KafkaTestSupport
import Testing

/// Retention through the pipeline: applied after every checkpoint.
@Suite("Retention: the log's disk stays bounded, verifies from its base, and replays before it are refused")
struct RetentionTests {
    let topic = "wa.device-events"
    let device = "dev-1"

    func event(_ index: Int) -> [UInt8] {
        EventEncoder.encode(Event(
            eventId: "e\(index)", deviceId: device, occurredAt: Int64(index), chatId: "49155500\(index % 40)@c.us",
            payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "text \(index)"))))
    }

    /// 8,000 events in batches of 200, a checkpoint after each; the Kafka timestamp of
    /// offset O is 1,000 + O. Segments of `maxSegmentBytes` (nil: as `retention` derives
    /// them). Returns the largest partition size seen after a batch.
    func ingest(_ directory: String, retention: RetentionPolicy, maxSegmentBytes: Int? = 32 << 10) throws -> Int64 {
        let log = EventLog(dataDirectory: directory)
        let pipeline = try IngestPipeline(
            log: log, options: .init(topic: topic, fsync: .never, maxSegmentBytes: maxSegmentBytes, checkpointEveryRecords: .max, retention: retention))
        var largest: Int64 = 0
        for index in 0..<8_000 {
            let value = event(index)
            try Array(device.utf8).withUnsafeBytes { key in
                try value.withUnsafeBytes { try pipeline.accept(partition: 0, offset: Int64(index), timestamp: 1_000 + Int64(index), key: key, value: $0) }
            }
            if index % 200 == 199 {
                try pipeline.commitBatch()
                pipeline.waitUntilApplied()
                try pipeline.checkpointIfDue(force: true)
                largest = max(largest, log.bytesOnDisk(topic: topic, partition: 0))
            }
        }
        try pipeline.close()
        return largest
    }

    @Test("--retain-bytes: the partition stays under the limit (plus one segment and a batch) while ingesting; verify holds from the base; segments go to the archive command first")
    func bytesLimit() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("retain-\(UUID().uuidString)").path
        let archive = directory + "-archive"
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: archive)
        }
        let limit: Int64 = 200 << 10
        let largest = try ingest(directory, retention: RetentionPolicy(maxBytes: limit, archiveCommand: "cp -t '\(archive)' --"))
        #expect(largest <= limit + (32 << 10) + 200 * 400, "largest \(largest)")
        let log = EventLog(dataDirectory: directory)
        let base = try #require(try log.retentionBase(topic: topic, partition: 0))
        #expect(base.baseOffset > 4_000)
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.partitions.first?.retainedFrom == base.baseOffset)
        let verify = try ChatLedgerProcess.run(["verify", "--data", directory])
        #expect(verify.status == 0, "chatledger verify checks the checkpoints from the base: \(verify.standardOutput)")
        let archived = try FileManager.default.contentsOfDirectory(atPath: archive).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(archived.first == "00000000000000000000.seg" && archived.count >= 10)
        // Every checkpoint left has its log: positions at or after the base's last removed record.
        let checkpoints = CheckpointStore(dataDirectory: directory)
        #expect(!checkpoints.sequences().isEmpty, "a checkpoint is left: the base")
        for sequence in checkpoints.sequences() {
            #expect((try checkpoints.read(sequence).1.positions[0] ?? -1) >= base.baseOffset - 1)
        }
    }

    @Test("a slow --archive-command does not hold up ingest: segments wait (kept) while it runs, go once it has archived them, and close() ends a command that never returns")
    func archiveCommandRunsOffTheIngestThread() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("retain-\(UUID().uuidString)").path
        let archive = directory + "-archive"
        let release = directory + "-release"
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        defer {
            for path in [directory, archive, release] { try? FileManager.default.removeItem(atPath: path) }
        }
        // Blocks until the test creates `release`, then copies the segment.
        let command = "while [ ! -e '\(release)' ]; do sleep 0.05; done; cp -t '\(archive)' --"
        let log = EventLog(dataDirectory: directory)
        let pipeline = try IngestPipeline(
            log: log,
            options: .init(
                topic: topic, fsync: .never, maxSegmentBytes: 32 << 10, checkpointEveryRecords: .max,
                retention: RetentionPolicy(maxBytes: 100 << 10, archiveCommand: command)))
        var offset: Int64 = 0
        func batch() throws {
            for _ in 0..<200 {
                let value = event(Int(offset))
                try Array(device.utf8).withUnsafeBytes { key in
                    try value.withUnsafeBytes { try pipeline.accept(partition: 0, offset: offset, timestamp: 1_000 + offset, key: key, value: $0) }
                }
                offset += 1
            }
            try pipeline.commitBatch()
            pipeline.waitUntilApplied()
            try pipeline.checkpointIfDue(force: true)
        }
        // With the command blocked, every batch and checkpoint still completes (on this thread).
        for _ in 0..<20 { try batch() }
        #expect(pipeline.counters.retentionRemovedSegments == 0, "nothing goes before it is archived")
        #expect(try log.retentionBase(topic: topic, partition: 0) == nil)
        #expect(log.bytesOnDisk(topic: topic, partition: 0) > 100 << 10, "kept over the limit meanwhile")
        _ = FileManager.default.createFile(atPath: release, contents: nil)
        // The archiver copies them one by one; each checkpoint removes what is archived so far.
        let deadline = ContinuousClock.now + .seconds(60)
        while pipeline.counters.retentionRemovedSegments < 4, ContinuousClock.now < deadline { try batch() }
        #expect(pipeline.counters.retentionRemovedSegments >= 4)
        let archived = try FileManager.default.contentsOfDirectory(atPath: archive).filter { $0.hasSuffix(".seg") }
        #expect(archived.contains("00000000000000000000.seg") && archived.count >= pipeline.counters.retentionRemovedSegments)
        #expect(try LogVerifier.verify(log).isClean)

        // A command that never returns: close() does not wait for it.
        let stuck = directory + "-stuck"
        defer { try? FileManager.default.removeItem(atPath: stuck) }
        let hanging = try IngestPipeline(
            log: EventLog(dataDirectory: stuck),
            options: .init(
                topic: topic, fsync: .never, maxSegmentBytes: 32 << 10, checkpointEveryRecords: .max,
                retention: RetentionPolicy(maxBytes: 64 << 10, archiveCommand: "sleep 600; true")))
        for index in 0..<2_000 {
            let value = event(index)
            try Array(device.utf8).withUnsafeBytes { key in
                try value.withUnsafeBytes { try hanging.accept(partition: 0, offset: Int64(index), timestamp: 1_000, key: key, value: $0) }
            }
        }
        try hanging.commitBatch()
        try hanging.checkpointIfDue(force: true)
        try hanging.close()
        #expect(hanging.counters.retentionRemovedSegments == 0)
    }

    @Test("replay --as-of before the base is a clear error; after it, the same state as a log that kept everything; a restart loads")
    func asOfAroundTheBase() throws {
        let retained = FileManager.default.temporaryDirectory.appendingPathComponent("retain-\(UUID().uuidString)").path
        let whole = FileManager.default.temporaryDirectory.appendingPathComponent("whole-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: retained)
            try? FileManager.default.removeItem(atPath: whole)
        }
        _ = try ingest(retained, retention: RetentionPolicy(maxBytes: 200 << 10))
        _ = try ingest(whole, retention: RetentionPolicy())
        let base = try #require(try EventLog(dataDirectory: retained).retentionBase(topic: topic, partition: 0))
        let audit = AuditLog(dataDirectory: retained, topic: topic)
        #expect(throws: AuditLog.BeforeRetainedLog.self) { try audit.device(device, asOf: 1_000 + 10) }
        let before = #expect(throws: AuditLog.BeforeRetainedLog.self) { try audit.device(device, at: LogPosition(partition: 0, offset: base.baseOffset - 100)) }
        #expect(before.map { "\($0)" }?.contains("its oldest checkpoint, the base; the log itself starts at \(base.baseOffset)") == true, "names the base a replay starts from: \(before.map { "\($0)" } ?? "")")
        do {
            _ = try audit.device(device, asOf: 1_000 + 10)
        } catch {
            #expect("\(error)".contains("before it and cannot be answered"))
        }
        let asOf: Int64 = 1_000 + 7_990
        let expected = try AuditLog(dataDirectory: whole, topic: topic).device(device, asOf: asOf)
        #expect(try audit.device(device, asOf: asOf) == expected)
        #expect(try audit.device(device) == AuditLog(dataDirectory: whole, topic: topic).device(device))
        let atOffset = LogPosition(partition: 0, offset: 7_950)
        #expect(try audit.device(device, at: atOffset) == AuditLog(dataDirectory: whole, topic: topic).device(device, at: atOffset))

        #expect(throws: ProjectionError.self) { try ProjectionRecovery.replayFromZero(log: EventLog(dataDirectory: retained), topic: topic) }
        let restarted = try IngestPipeline(log: EventLog(dataDirectory: retained), options: .init(topic: topic, fsync: .never))
        #expect(try restarted.store.device(device) == AuditLog(dataDirectory: whole, topic: topic).device(device))
        try restarted.close()
    }

    @Test("with only --retain-bytes given, segments are a quarter of the limit (64 KiB to 128 MiB), so the limit holds at the default size too; --retain-days seals segments by age")
    func segmentSizeFollowsTheLimit() throws {
        #expect(IngestPipeline.Options().maxSegmentBytes == 128 << 20, "no retention: 128 MiB")
        #expect(IngestPipeline.Options(retention: RetentionPolicy(maxBytes: 1 << 20)).maxSegmentBytes == 256 << 10)
        #expect(IngestPipeline.Options(retention: RetentionPolicy(maxBytes: 1_000)).maxSegmentBytes == 64 << 10, "at least 64 KiB")
        #expect(IngestPipeline.Options(retention: RetentionPolicy(maxBytes: 1 << 40)).maxSegmentBytes == 128 << 20, "at most 128 MiB")
        #expect(IngestPipeline.Options(maxSegmentBytes: 32 << 10, retention: RetentionPolicy(maxBytes: 1 << 20)).maxSegmentBytes == 32 << 10, "a size given stands")
        #expect(IngestPipeline.Options(retention: RetentionPolicy(maxAgeMilliseconds: 86_400_000)).maxSegmentAgeMilliseconds == 21_600_000)
        #expect(IngestPipeline.Options(retention: RetentionPolicy(maxBytes: 1)).maxSegmentAgeMilliseconds == nil)

        // The limit holds with the derived size: 8,000 events (about 1.3 MB) under 256 KiB.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("retain-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let limit: Int64 = 256 << 10
        let largest = try ingest(directory, retention: RetentionPolicy(maxBytes: limit), maxSegmentBytes: nil)
        #expect(largest <= limit + (64 << 10) + 200 * 400, "largest \(largest)")
        #expect(try EventLog(dataDirectory: directory).retentionBase(topic: topic, partition: 0) != nil, "segments were removed")

        // By age: a segment written to for longer than the age is sealed at the next record.
        let aged = FileManager.default.temporaryDirectory.appendingPathComponent("aged-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: aged) }
        let writer = try EventLog(dataDirectory: aged).openWriter(topic: topic, partition: 0, options: .init(fsync: .never, maxSegmentAgeMilliseconds: 1))
        var offset: Int64 = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while try PartitionWriter.segmentCount(in: EventLog(dataDirectory: aged).directory(topic: topic, partition: 0)) < 2, ContinuousClock.now < deadline {
            try writer.stage(LogRecord(offset: offset, key: Array(device.utf8), value: event(Int(offset))))
            try writer.sync()
            offset += 1
        }
        #expect(try PartitionWriter.segmentCount(in: EventLog(dataDirectory: aged).directory(topic: topic, partition: 0)) >= 2, "sealed by age after \(offset) records")
        #expect(offset < 1_000_000)
    }

    @Test("retention keeps a gap no operator has acknowledged, and everything after it; once acknowledged, the next checkpoint's retention removes it")
    func unacknowledgedGapIsKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("retain-gap-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let pipeline = try IngestPipeline(
            log: log, options: .init(topic: topic, fsync: .never, maxSegmentBytes: 32 << 10, checkpointEveryRecords: .max, retention: RetentionPolicy(maxBytes: 64 << 10)))
        func accept(_ offset: Int64) throws {
            let value = event(Int(offset))
            try Array(device.utf8).withUnsafeBytes { key in
                try value.withUnsafeBytes { try pipeline.accept(partition: 0, offset: offset, timestamp: 1_000 + offset, key: key, value: $0) }
            }
        }
        for offset in Int64(0)..<100 { try accept(offset) }
        try pipeline.commitBatch()
        try pipeline.recordGap(partition: 0, brokerLogStart: 200, reason: "test", detectedAt: 1)  // offsets 100...199 lost
        for offset in Int64(200)..<4_000 {
            try accept(offset)
            if offset % 200 == 199 {
                try pipeline.commitBatch()
                pipeline.waitUntilApplied()
                try pipeline.checkpointIfDue(force: true)
            }
        }
        #expect(try log.gaps(topic: topic).map(\.lastLostOffset) == [199], "the unacknowledged gap is still in the log")
        #expect(log.bytesOnDisk(topic: topic, partition: 0) > 64 << 10, "so is everything after it")
        _ = try pipeline.gaps.acknowledgeAll(note: "test")
        for offset in Int64(4_000)..<4_200 { try accept(offset) }
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        try pipeline.checkpointIfDue(force: true)
        #expect(try log.gaps(topic: topic).isEmpty, "acknowledged, retention removes it")
        #expect(log.bytesOnDisk(topic: topic, partition: 0) <= (64 << 10) + (32 << 10) + 200 * 400)
        try pipeline.close()
    }
}
