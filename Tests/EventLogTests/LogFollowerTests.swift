#if canImport(Glibc)
import Glibc
#endif
import EventLog
import Foundation
import KafkaTestSupport
import Testing

@Suite("LogFollower")
struct LogFollowerTests {
    @Test(
        "follows a log another process is writing across many segments: every record once, in order, whole, byte-identical",
        arguments: [
            (batch: 7, segmentBytes: 16_384, records: 20_000),
            // A roll every few records: a segment that grows and is sealed between the
            // follower reading its size and listing the directory must still be read to its end.
            (batch: 1, segmentBytes: 1_024, records: 5_000),
        ])
    func followsAnotherProcess(batch: Int, segmentBytes: Int, records: Int) throws {
        let directory = TemporaryDirectory("follow")
        defer { directory.remove() }
        let partitionDirectory = directory.path + "/log/crash/0"
        let writer = Process()
        writer.executableURL = ChatLedgerProcess.builtProduct("LogCrashWriter")
        writer.arguments = [partitionDirectory, "batch", String(batch), String(segmentBytes), String(records)]  // small segments: many rolls
        writer.standardOutput = FileHandle.nullDevice
        try writer.run()
        defer {
            kill(writer.processIdentifier, SIGKILL)
            writer.waitUntilExit()
        }

        let follower = LogFollower(directory: partitionDirectory, topic: "crash", partition: 0)
        var expected: Int64 = 0
        var deliveredRecords = 0
        var waits = 0
        // Until the follower has passed the last record (not until `records` were seen:
        // a skipped record would leave this waiting forever).
        while follower.nextOffset < records {
            let delivered = try follower.poll { record in
                #expect(record.offset == expected, "in order, each once")
                #expect(record.value.map(Array.init) == expectedValue(offset: record.offset), "byte-identical")
                expected = record.offset + 1  // one issue per gap, not one per record after it
                deliveredRecords += 1
            }
            if delivered == 0 {
                waits += 1
                #expect(waits < 100_000, "the follower makes progress")
                follower.waitForChanges(timeoutMilliseconds: 1_000)
            }
        }
        #expect(deliveredRecords == records, "every record delivered")
        let segments = TemporaryDirectory.segments(in: partitionDirectory)
        #expect(segments.count > 50)
    }

    @Test("starts at a given offset and picks up records appended after it caught up")
    func startsAtOffsetAndContinues() throws {
        let directory = TemporaryDirectory("follow")
        defer { directory.remove() }
        let writer = try PartitionWriter(directory: directory.path, topic: "t", partition: 0, options: .init(maxSegmentBytes: 4_000))
        try writer.append((0..<100).map { LogRecord(offset: $0, key: nil, value: expectedValue(offset: $0)) })
        let follower = LogFollower(directory: directory.path, topic: "t", partition: 0, from: 42)
        var seen: [Int64] = []
        try follower.poll { seen.append($0.offset) }
        #expect(seen == Array(42..<100))
        #expect(try follower.poll { _ in Issue.record("nothing new yet") } == 0)
        try writer.append((100..<130).map { LogRecord(offset: $0, key: nil, value: expectedValue(offset: $0)) })
        try follower.poll { seen.append($0.offset) }
        #expect(seen == Array(42..<130))
    }

    @Test("a partial record at the live end is not delivered until it is whole")
    func partialRecordWaits() throws {
        let directory = TemporaryDirectory("follow")
        defer { directory.remove() }
        do {
            let writer = try PartitionWriter(directory: directory.path, topic: "t", partition: 0)
            try writer.append((0..<10).map { LogRecord(offset: $0, key: nil, value: expectedValue(offset: $0)) })
        }
        let segment = try #require(TemporaryDirectory.segments(in: directory.path).first)
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: segment)))
        let last = try #require(try LogDamage.frames(segment).last)
        // The last record is half written.
        try Data(bytes[..<(last.position + last.length / 2)]).write(to: URL(fileURLWithPath: segment))
        let follower = LogFollower(directory: directory.path, topic: "t", partition: 0)
        var seen: [Int64] = []
        try follower.poll { seen.append($0.offset) }
        #expect(seen == Array(0..<9))
        // The rest of it arrives.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segment))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes[(last.position + last.length / 2)...]))
        try handle.close()
        try follower.poll { seen.append($0.offset) }
        #expect(seen == Array(0..<10))
    }
}
