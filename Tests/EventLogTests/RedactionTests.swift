#if canImport(Glibc)
import Glibc
#endif
import EventLog
import Foundation
import LedgerSupport
import Testing

@Suite("Redaction: an erasure replaces records' fields by markers that keep their digests; the chain and verify hold; tampering is found")
struct RedactionTests {
    let topic = "t"
    let erased = Array("dev-erased".utf8)
    let kept = Array("dev-kept".utf8)

    func value(_ offset: Int64, _ device: [UInt8]) -> [UInt8] {
        Array("{\"device\":\"\(String(decoding: device, as: UTF8.self))\",\"preview\":\"secret \(offset)\"}".utf8)
    }

    /// Records 0..<200 alternating between the two devices over several segments, a dead
    /// letter of the erased device, then the erasure record at offset 300, redacted.
    func erasedLog(_ data: TemporaryDirectory) throws -> (EventLog, PartitionWriter, redacted: Int) {
        let log = EventLog(dataDirectory: data.path)
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never, maxSegmentBytes: 8_000))
        for offset in Int64(0)..<200 {
            let device = offset % 2 == 0 ? erased : kept
            try writer.append([LogRecord(offset: offset, timestamp: offset, key: device, value: value(offset, device))])
        }
        try writer.append([LogRecord(kind: .deadLetter, offset: 250, key: erased, value: Array("dev-erased garbage".utf8), reason: "invalid_json : dev-erased")])
        try writer.append([LogRecord(offset: 300, key: erased, value: Array("{\"erasure\":1}".utf8), reason: LogErasure.reason(.device))])
        let outcome = try writer.redact(erasureOffset: 300, select)
        try writer.append([LogRecord(offset: 301, key: kept, value: value(301, kept))])
        try writer.sync()
        return (log, writer, outcome.redacted)
    }

    func select(_ record: RecordView) -> RedactedFields {
        if record.offset == 300 { return .key }
        return record.key.map { $0.elementsEqual(erased) } == true ? .all : []
    }

    func allBytes(_ directory: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for name in try FileManager.default.subpathsOfDirectory(atPath: directory) {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + name
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                bytes += try Array(Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
        return bytes
    }

    @Test("after redaction no byte of the erased device's keys, values or reasons is on disk; verify is clean and counts them by erasure; the rest reads as before")
    func redactionKeepsTheChain() throws {
        let data = TemporaryDirectory("redact")
        defer { data.remove() }
        let (log, writer, redacted) = try erasedLog(data)
        #expect(redacted == 102, "100 events, the dead letter, and the erasure record's own key")
        let bytes = try allBytes(data.path)
        #expect(bytes.firstRange(of: erased) == nil)
        #expect(bytes.firstRange(of: Array("secret 0\"".utf8)) == nil && bytes.firstRange(of: Array("secret 1\"".utf8)) != nil)

        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.erasures.map(\.redactedRecords) == [101])
        #expect(verification.erasures.first?.erasure.deviceDigest == SHA256.hash(erased))
        #expect(verification.partitions.first?.redactedRecords == 101)

        let records = try log.reader(topic: topic, partition: 0).records()
        #expect(records.filter { $0.key == kept }.map(\.value) == (Array(stride(from: Int64(1), to: 200, by: 2)) + [301]).map { value($0, kept) })
        #expect(records.filter { $0.offset < 300 && $0.key == nil }.allSatisfy { $0.value == nil && $0.reason.isEmpty })
        var erasureOffsets: Set<Int64> = []
        try log.reader(topic: topic, partition: 0).forEach { record in
            if record.isRedacted, record.offset != 300 { erasureOffsets.insert(record.erasureOffset ?? -1) }
            return true
        }
        #expect(erasureOffsets == [300])

        // Redacting again changes nothing; the writer appends on.
        #expect(try writer.redact(erasureOffset: 300, select).redacted == 0)
    }

    /// The first redacted frame of the first segment: its position and length.
    func firstRedactedFrame(_ path: String) throws -> (position: Int, length: Int) {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        return try #require(try LogDamage.frames(path).first { bytes[$0.position + 9] != 0 })
    }

    func fixCRC(_ bytes: inout [UInt8], _ frame: (position: Int, length: Int)) {
        let crc = CRC32C.checksum(Array(bytes[(frame.position + 8)..<(frame.position + frame.length)]))
        for index in 0..<4 { bytes[frame.position + 4 + index] = UInt8(truncatingIfNeeded: crc >> (8 * index)) }
    }

    @Test("a redacted segment keeps its modification time: retention ages segments by it")
    func redactionKeepsSegmentAge() throws {
        let data = TemporaryDirectory("redaction-age")
        let log = EventLog(dataDirectory: data.path)
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never, maxSegmentBytes: 8_000))
        for offset in Int64(0)..<200 {
            let device = offset % 2 == 0 ? erased : kept
            try writer.append([LogRecord(offset: offset, timestamp: offset, key: device, value: value(offset, device))])
        }
        try writer.sync()
        let directory = log.directory(topic: topic, partition: 0)
        let first = directory + "/00000000000000000000.seg"
        // Sealed ten days ago.
        var old = [timespec(tv_sec: time(nil) - 10 * 86_400, tv_nsec: 0), timespec(tv_sec: time(nil) - 10 * 86_400, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, first, &old, 0) == 0)
        try writer.append([LogRecord(offset: 300, key: erased, value: Array("{\"erasure\":1}".utf8), reason: LogErasure.reason(.device))])
        let outcome = try writer.redact(erasureOffset: 300, select)
        #expect(outcome.redacted > 0)
        var after = stat()
        #expect(stat(first, &after) == 0)
        #expect(after.st_mtim.tv_sec == old[1].tv_sec, "the first segment was rewritten and keeps its age")
    }

    @Test("a marker whose digest is altered breaks the chain; one naming another offset names no erasure")
    func alteredMarkerIsFound() throws {
        let data = TemporaryDirectory("redact")
        defer { data.remove() }
        let (log, _, _) = try erasedLog(data)
        let segment = try #require(TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0)).first)
        let frame = try firstRedactedFrame(segment)
        // Body: 24 + topic, key length (4) + marker (40), value length (4) + marker (40), ...
        let valueMarker = frame.position + 8 + 24 + topic.utf8.count + 4 + 40 + 4
        try LogDamage.edit(segment) { bytes in
            bytes[valueMarker + 20] ^= 0x01
            fixCRC(&bytes, frame)
        }
        let digestAltered = try LogVerifier.verify(log)
        #expect(digestAltered.problems.contains { $0.message.contains("chain hash does not follow") }, "\(digestAltered.problems)")

        try LogDamage.edit(segment) { bytes in
            bytes[valueMarker + 20] ^= 0x01  // back
            bytes[valueMarker] = 2  // erasure offset 300 -> 258 (no erasure there)
            bytes[valueMarker + 1] = 1
            fixCRC(&bytes, frame)
        }
        let offsetAltered = try LogVerifier.verify(log)
        #expect(offsetAltered.problems.contains { $0.message.contains("names no erasure record") && $0.kafkaOffset == 0 }, "\(offsetAltered.problems)")
        #expect(!offsetAltered.problems.contains { $0.message.contains("chain hash") }, "the digest is intact: the chain holds")
    }

    @Test("a marker moved to another device's erasure (after it, so no rule of offsets breaks) is found: a redaction names an erasure of its own record's device")
    func markerMovedToAnotherDevicesErasure() throws {
        let data = TemporaryDirectory("redact")
        defer { data.remove() }
        let (log, writer, _) = try erasedLog(data)
        try writer.append([LogRecord(offset: 302, key: kept, value: Array("{\"erasure\":2}".utf8), reason: LogErasure.reason(.device))])
        _ = try writer.redact(erasureOffset: 302) { record in
            record.offset == 302 ? .key : (record.key.map { $0.elementsEqual(kept) } == true ? .all : [])
        }
        try writer.sync()
        #expect(try LogVerifier.verify(log).isClean)
        let segment = try #require(TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0)).first)
        let frame = try firstRedactedFrame(segment)  // offset 0, of the device erased at 300
        let valueMarker = frame.position + 8 + 24 + topic.utf8.count + 4 + 40 + 4
        try LogDamage.edit(segment) { bytes in
            bytes[valueMarker] = 0x2E  // erasure offset 300 -> 302, the other device's erasure
            bytes[valueMarker + 1] = 0x01
            fixCRC(&bytes, frame)
        }
        let moved = try LogVerifier.verify(log)
        #expect(moved.problems.contains { $0.message.contains("erased another device") && $0.kafkaOffset == 0 }, "\(moved.problems)")
        #expect(!moved.problems.contains { $0.message.contains("chain hash") }, "the digest is intact: the chain holds")
    }

    @Test("a value put back (the original frame restored: its chain hash is the same) is found: a record of the erased device is not redacted")
    func valuePutBackIsFound() throws {
        let data = TemporaryDirectory("redact")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let directory = log.directory(topic: topic, partition: 0)
        let (_, _, _) = try erasedLog(data)
        let segment = try #require(TemporaryDirectory.segments(in: directory).first)
        let frame = try firstRedactedFrame(segment)
        // The original frame of offset 0, as a copy made before the erasure would hold it.
        let original = TemporaryDirectory("original")
        defer { original.remove() }
        let copy = try EventLog(dataDirectory: original.path).openWriter(topic: topic, partition: 0, options: .init(fsync: .never))
        try copy.append([LogRecord(offset: 0, timestamp: 0, key: erased, value: value(0, erased))])
        try copy.sync()
        let copySegment = try #require(TemporaryDirectory.segments(in: EventLog(dataDirectory: original.path).directory(topic: topic, partition: 0)).first)
        let originalFrame = try #require(try LogDamage.frames(copySegment).first)
        let originalBytes = try Array(Data(contentsOf: URL(fileURLWithPath: copySegment)))[originalFrame.position..<(originalFrame.position + originalFrame.length)]
        try LogDamage.edit(segment) { bytes in
            bytes.replaceSubrange(frame.position..<(frame.position + frame.length), with: originalBytes)
        }
        let verification = try LogVerifier.verify(log)
        #expect(verification.problems.contains { $0.message.contains("is not redacted") && $0.kafkaOffset == 0 }, "\(verification.problems)")
        #expect(!verification.problems.contains { $0.message.contains("chain hash") })
    }

    @Test("records in a version 1 segment cannot be redacted: they are counted and left whole, and the chain holds")
    func oldSegmentsAreNotRedacted() throws {
        let data = TemporaryDirectory("redact")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let old = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never, chain: .overBodies))
        try old.append((0..<10).map { LogRecord(offset: $0, key: erased, value: value($0, erased)) })
        try old.sync()
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never))
        try writer.append((10..<20).map { LogRecord(offset: $0, key: erased, value: value($0, erased)) })
        try writer.append([LogRecord(offset: 20, key: erased, value: Array("{}".utf8), reason: LogErasure.reason(.device))])
        let outcome = try writer.redact(erasureOffset: 20) { $0.offset == 20 ? .key : .all }
        #expect(outcome.redacted == 11 && outcome.unredactable == 10)
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.erasures.map(\.redactedRecords) == [10])
    }
}

@Suite("Redaction while a follower reads")
struct RedactionFollowerTests {
    @Test("a follower (serve's view of the log) reads on past a segment an erasure rewrote under it: every later record once, none twice")
    func followerSurvivesRewrite() throws {
        let data = TemporaryDirectory("redact-follow")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let writer = try log.openWriter(topic: "t", partition: 0, options: .init(fsync: .never))
        try writer.append((0..<50).map { LogRecord(offset: $0, key: Array("dev-\($0 % 2)".utf8), value: expectedValue(offset: $0)) })
        let follower = LogFollower(directory: log.directory(topic: "t", partition: 0), topic: "t", partition: 0)
        var seen: [Int64] = []
        try follower.poll { seen.append($0.offset) }
        try writer.append([LogRecord(offset: 50, key: Array("dev-0".utf8), value: Array("{}".utf8), reason: LogErasure.reason(.device))])
        _ = try writer.redact(erasureOffset: 50) { record in
            record.offset == 50 ? .key : (record.key.map { $0.elementsEqual(Array("dev-0".utf8)) } == true ? .all : [])
        }
        try writer.append((51..<60).map { LogRecord(offset: $0, key: Array("dev-1".utf8), value: expectedValue(offset: $0)) })
        try follower.poll { seen.append($0.offset) }
        #expect(seen == Array(0..<60))
    }
}
