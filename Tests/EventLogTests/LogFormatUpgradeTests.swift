import EventLog
import Foundation
import LedgerSupport
import Testing

@Suite("Format upgrade: a log of versions 1 and 2 continued in version 3 (the chain over digests)")
struct LogFormatUpgradeTests {
    let topic = "t"

    func event(_ offset: Int64) -> LogRecord {
        LogRecord(offset: offset, timestamp: 1_700_000_000_000 + offset, key: Array("dev-\(offset % 3)".utf8), value: expectedValue(offset: offset))
    }

    /// Today's log (versions 1 and 2, several segments and a gap), then the upgraded
    /// build appending to it with the default options.
    func upgradedLog(_ data: TemporaryDirectory) throws -> EventLog {
        let log = EventLog(dataDirectory: data.path)
        let old = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never, maxSegmentBytes: 4_000, chain: .overBodies))
        try old.append((0..<30).map(event))
        try old.stageGap(
            LogGap(topic: topic, partition: 0, firstLostOffset: 30, lastLostOffset: 39, brokerLogStartOffset: 40, detectedAt: 1, reason: "lost"))
        try old.append((40..<50).map(event))
        try old.sync()
        let new = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never, maxSegmentBytes: 4_000))
        try new.append((50..<90).map(event))
        try new.sync()
        return log
    }

    @Test("old segments keep their versions and verify as before; records after the upgrade go to new version 3 segments; the chain holds across the boundary")
    func upgradeKeepsOldSegments() throws {
        let data = TemporaryDirectory("upgrade")
        defer { data.remove() }
        let log = try upgradedLog(data)
        let segments = TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0))
        let versions = try segments.map(LogDamage.headerVersion)
        let firstNew = try #require(versions.firstIndex(of: 3))
        #expect(versions[..<firstNew].allSatisfy { $0 == 1 || $0 == 2 } && versions.contains(2), "\(versions)")
        #expect(versions[firstNew...].allSatisfy { $0 == 3 }, "\(versions)")
        #expect(URL(fileURLWithPath: segments[firstNew]).lastPathComponent == "00000000000000000050.seg", "the old last segment is not continued")

        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        let summary = try #require(verification.partitions.first)
        #expect(summary.records == 81 && summary.segmentsByVersion[3, default: 0] == versions.count - firstNew)
        let records = try log.reader(topic: topic, partition: 0).records()
        #expect(records.filter { $0.kind == .event }.map(\.value) == (Array(0..<30) + Array(40..<90)).map { expectedValue(offset: $0) })
    }

    @Test("a version 3 record whose value is changed (CRC fixed) breaks the chain; so does one across the boundary's header link")
    func digestChainDetectsTampering() throws {
        let data = TemporaryDirectory("upgrade")
        defer { data.remove() }
        let log = try upgradedLog(data)
        let segments = TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0))
        let newSegment = try #require(try segments.first { try LogDamage.headerVersion($0) == 3 })
        let frame = try LogDamage.frames(newSegment)[2]
        try LogDamage.edit(newSegment) { bytes in
            // The value's last byte, then the CRC recomputed as a forger would.
            let valueEnd = frame.position + frame.length - 32 - 2
            bytes[valueEnd - 1] ^= 0x01
            let crc = CRC32C.checksum(Array(bytes[(frame.position + 8)..<(frame.position + frame.length)]))
            for index in 0..<4 { bytes[frame.position + 4 + index] = UInt8(truncatingIfNeeded: crc >> (8 * index)) }
        }
        let verification = try LogVerifier.verify(log)
        #expect(verification.problems.contains { $0.message.contains("chain hash does not follow") && $0.path == newSegment }, "\(verification.problems)")
    }
}
