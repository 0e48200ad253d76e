import EventLog
import Foundation
import LedgerSupport
import Testing

@Suite("PartitionWriter and PartitionReader")
struct PartitionWriterTests {
    func record(_ offset: Int64, kind: RecordKind = .event, reason: String = "") -> LogRecord {
        LogRecord(kind: kind, offset: offset, timestamp: 1_700_000_000_000 + offset, key: Array("dev-\(offset % 5)".utf8),
                  value: expectedValue(offset: offset), reason: reason)
    }

    @Test("appended records read back byte for byte, with their coordinates, kind and reason")
    func appendAndReadBack() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let writer = try PartitionWriter(directory: directory.path, topic: "events", partition: 3)
        #expect(writer.lastOffset == nil)
        var written = (0..<100).map { record(Int64($0) * 2) }  // offsets with gaps, as compaction leaves them
        written[7] = record(14, kind: .deadLetter, reason: "invalid_json : expected a value")
        written[8].key = nil
        written[9].value = nil
        #expect(try writer.append(written))
        #expect(writer.lastOffset == 198)

        let read = try PartitionReader(directory: directory.path, topic: "events", partition: 3).records()
        #expect(read.count == 100)
        for (original, copy) in zip(written, read) {
            #expect(copy.offset == original.offset)
            #expect(copy.key == original.key)
            #expect(copy.value == original.value)
            #expect(copy.kind == original.kind)
            #expect(copy.reason == original.reason)
            #expect(copy.timestamp == original.timestamp)
            #expect(copy.topic == "events")
            #expect(copy.partition == 3)
        }
    }

    @Test("reopening finds the last offset and the chain continues across the restart")
    func reopenContinuesChain() throws {
        let data = TemporaryDirectory()
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        var chain = SHA256Digest.zero
        do {
            let writer = try log.openWriter(topic: "t", partition: 0)
            try writer.append((0..<10).map { record($0) })
            chain = writer.chainHash
        }
        let reopened = try log.openWriter(topic: "t", partition: 0)
        #expect(reopened.lastOffset == 9)
        #expect(reopened.chainHash == chain)
        try reopened.append((10..<20).map { record($0) })
        #expect(try log.reader(topic: "t", partition: 0).records().map(\.offset) == Array(0..<20))
        // Every chain link holds, including the one from record 9 to record 10 across the restart.
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.partitions.first?.records == 20)
        #expect(verification.partitions.first?.lastChainHash == reopened.chainHash)
    }

    @Test("offsets must strictly increase; a rejected append leaves the log as it was")
    func offsetsMustIncrease() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let writer = try PartitionWriter(directory: directory.path, topic: "t", partition: 0)
        try writer.append([record(5)])
        #expect(throws: EventLogError.self) { try writer.append([record(5)]) }
        #expect(throws: EventLogError.self) { try writer.append([record(4)]) }
        let fresh = try PartitionWriter(directory: directory.path + "-2", topic: "t", partition: 0)
        defer { try? FileManager.default.removeItem(atPath: directory.path + "-2") }
        #expect(throws: EventLogError.self) { try fresh.append([record(3), record(3)]) }
        #expect(try PartitionReader(directory: directory.path, topic: "t", partition: 0).records().map(\.offset) == [5])
    }

    @Test("segments roll by size, sealed ones get an index, and reading from any offset finds it")
    func rollingAndSeeking() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let writer = try PartitionWriter(
            directory: directory.path, topic: "t", partition: 1, options: .init(fsync: .never, maxSegmentBytes: 20_000))
        for batch in 0..<20 { try writer.append((0..<25).map { record(Int64(batch * 25 + $0)) }) }
        try writer.sync()
        let segments = TemporaryDirectory.segments(in: directory.path)
        #expect(segments.count >= 5)
        let indexes = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".idx") }
        #expect(indexes.count == segments.count - 1, "every sealed segment has an index")
        for size in segments.map({ (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }) {
            #expect(size <= 20_000)
        }
        let reader = PartitionReader(directory: directory.path, topic: "t", partition: 1)
        for start: Int64 in [0, 1, 77, 250, 251, 499] {
            #expect(try reader.records(from: start, limit: 3).map(\.offset) == Array(start..<min(start + 3, 500)))
        }
        #expect(try reader.records(from: 500).isEmpty)
        #expect(try LogVerifier.verify(EventLog(dataDirectory: directory.path)).isClean)
    }

    @Test("the verifier passes a clean log and counts records, events and dead letters by reason")
    func verifierSummary() throws {
        let data = TemporaryDirectory()
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let writer = try log.openWriter(topic: "wa.device-events", partition: 0)
        try writer.append([
            record(0), record(1, kind: .deadLetter, reason: "invalid_json : bad"), record(2),
            record(3, kind: .deadLetter, reason: "missing_field data.messageId: required"),
            record(4, kind: .deadLetter, reason: "invalid_json : worse"),
        ])
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean)
        let partition = try #require(verification.partitions.first)
        #expect(partition.records == 5)
        #expect(partition.events == 2)
        #expect(partition.deadLetters == 3)
        #expect(partition.firstOffset == 0)
        #expect(partition.lastOffset == 4)
        #expect(partition.lastChainHash == writer.chainHash)
        #expect(verification.deadLettersByReason == ["invalid_json": 2, "missing_field": 1])
    }

    @Test("the fsync policy decides what commit reports as durable")
    func fsyncPolicies() throws {
        for (policy, durable) in [(FsyncPolicy.always, true), (.batch, true), (.never, false), (.interval(milliseconds: 3_600_000), false)] {
            let directory = TemporaryDirectory()
            defer { directory.remove() }
            let writer = try PartitionWriter(directory: directory.path, topic: "t", partition: 0, options: .init(fsync: policy))
            #expect(try writer.append([record(0), record(1)]) == durable, "\(policy)")
            try writer.sync()
            #expect(writer.isSynced)
        }
        #expect(FsyncPolicy("every:250") == .interval(milliseconds: 250))
        #expect(FsyncPolicy("every:0") == nil)
        #expect(FsyncPolicy("sometimes") == nil)
    }
}
