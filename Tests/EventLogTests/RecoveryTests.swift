import EventLog
import Foundation
import Testing

@Suite("Recovery on open")
struct RecoveryTests {
    func writeLog(_ directory: String, records: Int = 50, maxSegmentBytes: Int = 128 << 20) throws {
        let writer = try PartitionWriter(
            directory: directory, topic: "t", partition: 0, options: .init(maxSegmentBytes: maxSegmentBytes))
        try writer.append((0..<records).map {
            LogRecord(offset: Int64($0), key: [1], value: expectedValue(offset: Int64($0)))
        })
    }

    func reopenAndCheck(_ directory: String, expectedLast: Int64) throws {
        let writer = try PartitionWriter(directory: directory, topic: "t", partition: 0)
        #expect(writer.lastOffset == expectedLast)
        try writer.append([LogRecord(offset: expectedLast + 1, key: [1], value: expectedValue(offset: expectedLast + 1))])
        let records = try PartitionReader(directory: directory, topic: "t", partition: 0).records()
        #expect(records.map(\.offset) == Array(0...(expectedLast + 1)))
        for record in records { #expect(record.value == expectedValue(offset: record.offset)) }
    }

    @Test("a torn tail is truncated to the last whole record and appending continues", arguments: [
        "half a record", "only a length", "garbage bytes", "zero bytes", "a whole record with a bad CRC",
    ])
    func tornTailIsTruncated(kind: String) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeLog(directory.path)
        let segment = try #require(TemporaryDirectory.segments(in: directory.path).last)
        let last = try #require(try LogDamage.frames(segment).last)
        try LogDamage.edit(segment) { bytes in
            switch kind {
            case "half a record":
                bytes.removeLast(last.length / 2)  // the last record loses its second half
            case "only a length":
                bytes.append(contentsOf: [0x20, 0x01, 0, 0])
            case "garbage bytes":
                bytes.append(contentsOf: (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
            case "zero bytes":
                bytes.append(contentsOf: [UInt8](repeating: 0, count: 4096))
            default:
                bytes[last.position + 40] ^= 0xFF  // the last record: complete but damaged
            }
        }
        let expectedLast: Int64 = kind == "half a record" || kind == "a whole record with a bad CRC" ? 48 : 49
        try reopenAndCheck(directory.path, expectedLast: expectedLast)
    }

    @Test("damage before the tail is never dropped: open fails naming the file, byte and offset")
    func corruptionBeforeTailFailsOpen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeLog(directory.path)
        let segment = try #require(TemporaryDirectory.segments(in: directory.path).last)
        let victim = try LogDamage.frames(segment)[20]
        try LogDamage.edit(segment) { $0[victim.position + 60] ^= 0x01 }
        let error = #expect(throws: EventLogError.self) {
            _ = try PartitionWriter(directory: directory.path, topic: "t", partition: 0)
        }
        #expect(error?.isCorruption == true)
        #expect(error?.path == segment)
        #expect(error?.byteOffset == victim.position)
        #expect(error?.kafkaOffset == 20, "the damaged record's own offset, as it records it")
        #expect(error?.description.contains("as recorded in the damaged record") == true, "\(String(describing: error))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: segment)).count > victim.position + victim.length, "nothing was truncated")
    }

    @Test("a segment whose creation was interrupted is removed and the previous one continues")
    func interruptedSegmentCreation() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeLog(directory.path, records: 200, maxSegmentBytes: 10_000)
        let segments = TemporaryDirectory.segments(in: directory.path)
        #expect(segments.count > 2)
        // A crash between creating the next segment and writing its header.
        let next = directory.path + "/00000000000000000200.seg"
        try Data([0x43, 0x4C, 0x45]).write(to: URL(fileURLWithPath: next))
        try reopenAndCheck(directory.path, expectedLast: 199)
        #expect(!FileManager.default.fileExists(atPath: next))
    }

    @Test("a partition whose only content is a torn first record opens empty")
    func tornFirstRecord() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try writeLog(directory.path, records: 1)
        let segment = try #require(TemporaryDirectory.segments(in: directory.path).first)
        try LogDamage.edit(segment) { $0.removeLast(10) }
        let writer = try PartitionWriter(directory: directory.path, topic: "t", partition: 0)
        #expect(writer.lastOffset == nil)
        try writer.append([LogRecord(offset: 0, key: nil, value: [1])])
        #expect(try PartitionReader(directory: directory.path, topic: "t", partition: 0).records().count == 1)
    }
}
