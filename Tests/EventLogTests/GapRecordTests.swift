import EventLog
import Foundation
import LedgerSupport
import Testing

@Suite("Gap records: offsets the broker had lost, written, read, verified and acknowledged")
struct GapRecordTests {
    let topic = "t"

    func event(_ offset: Int64) -> LogRecord {
        LogRecord(offset: offset, timestamp: 1_700_000_000_000 + offset, key: [2], value: expectedValue(offset: offset))
    }

    func gap(_ first: Int64, _ last: Int64, partition: Int32 = 0) -> LogGap {
        LogGap(
            topic: topic, partition: partition, firstLostOffset: first, lastLostOffset: last, brokerLogStartOffset: last + 1,
            detectedAt: 1_800_000_000_123, reason: "offset_out_of_range: the broker's log starts at \(last + 1)")
    }

    /// A log of partition 0: events 0..9, a gap 10..99, events 100..104, in the format of
    /// `chain` (versions 1 and 2 by default: what these tests pin stays readable).
    func logWithGap(_ data: TemporaryDirectory, chain: LogChain = .overBodies) throws -> (EventLog, PartitionWriter) {
        let log = EventLog(dataDirectory: data.path)
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never, chain: chain))
        try writer.append((0..<10).map(event))
        try writer.stageGap(gap(10, 99))
        try writer.append((100..<105).map(event))
        try writer.sync()
        return (log, writer)
    }

    /// Rewrites a segment header's version and fixes its CRC, as a forger would.
    func setHeaderVersion(_ path: String, _ version: UInt16) throws {
        try LogDamage.edit(path) { bytes in
            bytes[8] = UInt8(version & 0xFF)
            bytes[9] = UInt8(version >> 8)
            let length = Int(bytes[10]) | Int(bytes[11]) << 8
            let crc = CRC32C.checksum(Array(bytes[0..<(length - 4)]))
            for index in 0..<4 { bytes[length - 4 + index] = UInt8(truncatingIfNeeded: crc >> (8 * index)) }
        }
    }

    @Test("a gap record starts a version 2 segment at its last lost offset and reads back as the gap; the next segments are version 1 again")
    func writtenAndReadBack() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let (log, _) = try logWithGap(data)
        let segments = TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0))
        #expect(segments.map { URL(fileURLWithPath: $0).lastPathComponent } == ["00000000000000000000.seg", "00000000000000000099.seg"])
        #expect(try segments.map(LogDamage.headerVersion) == [1, 2])

        let records = try log.reader(topic: topic, partition: 0).records()
        #expect(records.map(\.offset) == Array(0..<10) + [99] + Array(100..<105))
        let gapRecord = try #require(records.first { $0.kind == .gap })
        #expect(gapRecord.key == nil && gapRecord.timestamp == -1 && gapRecord.reason == gap(10, 99).reason)
        var found: LogGap?
        try log.reader(topic: topic, partition: 0).forEach(from: 99) { record in
            found = LogGap(record)
            return false
        }
        #expect(found == gap(10, 99))
        #expect(try log.gaps(topic: topic) == [gap(10, 99)], "found from segment headers alone")
        #expect(try log.gaps(topic: "other").isEmpty)

        // A segment rolled for size after the gap segment is version 1 again.
        let small = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never, maxSegmentBytes: 2_000, chain: .overBodies))
        try small.append((105..<120).map(event))
        let later = TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0)).dropFirst(2)
        #expect(!later.isEmpty)
        #expect(try later.map(LogDamage.headerVersion).allSatisfy { $0 == 1 })
    }

    @Test("verify holds for a log with a gap and lists it; the writer reopens after it and appends on")
    func verifiesAndReopens() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let (log, writer) = try logWithGap(data)
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.gaps == [gap(10, 99)])
        let partition = try #require(verification.partitions.first)
        #expect(partition.records == 16 && partition.events == 15 && partition.deadLetters == 0)
        #expect(partition.gaps == 1 && partition.lostRecords == 90)

        let chain = writer.chainHash
        let reopened = try log.openWriter(topic: topic, partition: 0)
        #expect(reopened.lastOffset == 104 && reopened.chainHash == chain)
        try reopened.append([event(105)])
        #expect(try LogVerifier.verify(log).isClean)
    }

    @Test("a gap as a partition's first record (a partition rebuilt after the broker lost its start)")
    func gapFirst() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let writer = try log.openWriter(topic: topic, partition: 2, options: .init(fsync: .never))
        try writer.stageGap(gap(0, 499, partition: 2))
        try writer.append((500..<503).map(event))
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.gaps == [gap(0, 499, partition: 2)])
        #expect(try log.reader(topic: topic, partition: 2).records().map(\.offset) == [499, 500, 501, 502])
    }

    @Test("the writer refuses a gap that does not start right after the last record, or is empty, and writes nothing")
    func refusesBadGaps() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never))
        try writer.append((0..<10).map(event))
        #expect(throws: EventLogError.self) { try writer.stageGap(gap(11, 20)) }  // leaves offset 10 unaccounted for
        #expect(throws: EventLogError.self) { try writer.stageGap(gap(5, 20)) }  // overlaps the log
        var inverted = gap(10, 20)
        inverted.lastLostOffset = 9
        inverted.brokerLogStartOffset = 10
        #expect(throws: EventLogError.self) { try writer.stageGap(inverted) }
        var misplaced = gap(10, 20)
        misplaced.brokerLogStartOffset = 30
        #expect(throws: EventLogError.self) { try writer.stageGap(misplaced) }
        // A gap passed as a plain record must follow the same rules.
        #expect(throws: EventLogError.self) { try writer.append([LogRecord(kind: .gap, offset: 20, key: nil, value: [1, 2, 3])]) }
        try writer.append([event(10)])
        #expect(try LogVerifier.verify(log).isClean)
        #expect(TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0)).count == 1)
    }

    @Test("a gap record outside a version 2 segment, and a version 2 segment without one, are problems verify names")
    func misplacedGapIsAProblem() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let (log, _) = try logWithGap(data)
        let segments = TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0))
        try setHeaderVersion(segments[1], 1)
        let asVersion1 = try LogVerifier.verify(log)
        #expect(asVersion1.problems.contains { $0.message.contains("not the first record of a version 2 segment") && $0.kafkaOffset == 99 },
                "\(asVersion1.problems)")

        try setHeaderVersion(segments[1], 2)
        try setHeaderVersion(segments[0], 2)
        let eventsAsVersion2 = try LogVerifier.verify(log)
        #expect(eventsAsVersion2.problems.contains { $0.message.contains("does not start with a gap record") && $0.kafkaOffset == 0 },
                "\(eventsAsVersion2.problems)")

        try setHeaderVersion(segments[0], 5)
        #expect(try LogVerifier.verify(log).problems.contains { $0.message.contains("unknown format version 5") })
    }

    @Test("in the digest-chained format a gap starts a version 4 segment and the rules are those of version 2")
    func digestChainedGap() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let (log, _) = try logWithGap(data, chain: .overDigests)
        let segments = TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0))
        #expect(try segments.map(LogDamage.headerVersion) == [3, 4])
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.gaps == [gap(10, 99)])
        #expect(try log.gaps(topic: topic) == [gap(10, 99)])
        try setHeaderVersion(segments[1], 3)
        #expect(try LogVerifier.verify(log).problems.contains { $0.message.contains("not the first record of a version 4 segment") })
    }

    @Test("a crash after the gap segment's header, before its record, loses nothing: reopening removes the empty segment and the gap can be written again")
    func crashBeforeGapRecord() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let (log, _) = try logWithGap(data)
        let segments = TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0))
        try LogDamage.edit(segments[1]) { bytes in bytes.removeSubrange((Int(bytes[10]) | Int(bytes[11]) << 8)...) }
        let reopened = try log.openWriter(topic: topic, partition: 0)
        #expect(reopened.lastOffset == 9)
        #expect(TemporaryDirectory.segments(in: log.directory(topic: topic, partition: 0)).count == 1)
        try reopened.stageGap(gap(10, 99))
        try reopened.append((100..<105).map(event))
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean && verification.gaps == [gap(10, 99)], "\(verification.problems)")
    }

    @Test("a follower (serve's view of the log) delivers the gap in order while the writer rolls into the gap's segment and on")
    func followerDeliversGap() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let directory = log.directory(topic: topic, partition: 0)
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never))
        try writer.append((0..<10).map(event))
        let follower = LogFollower(directory: directory, topic: topic, partition: 0)
        var seen: [(offset: Int64, gap: LogGap?)] = []
        try follower.poll { seen.append(($0.offset, LogGap($0))) }
        #expect(seen.map(\.offset) == Array(0..<10))

        try writer.stageGap(gap(10, 99))
        try writer.append((100..<103).map(event))
        try follower.poll { seen.append(($0.offset, LogGap($0))) }
        #expect(seen.map(\.offset) == Array(0..<10) + [99, 100, 101, 102])
        #expect(seen.compactMap(\.gap) == [gap(10, 99)])
        #expect(follower.nextOffset == 103)
    }

    @Test("acknowledging: a gap is unacknowledged until acknowledge-loss lists it in the file, which running readers see at once")
    func acknowledgements() throws {
        let data = TemporaryDirectory("gap")
        defer { data.remove() }
        let (log, writer) = try logWithGap(data)
        let register = try GapRegister(log: log, topic: topic)
        #expect(register.gaps == [gap(10, 99)])
        #expect(register.unacknowledged == [gap(10, 99)])

        let reader = try GapRegister(log: log, topic: topic)  // another process on the same directory
        #expect(try register.acknowledgeAll(note: "ops: seen\nby alice") == [gap(10, 99)])
        #expect(register.unacknowledged.isEmpty && reader.unacknowledged.isEmpty)
        let file = try String(contentsOfFile: register.acknowledgementsPath, encoding: .utf8)
        #expect(file.contains("\nt 0 10 99 ops: seen by alice\n"), "one line per gap: \(file)")

        // A new gap is unacknowledged again; acknowledging keeps the earlier lines.
        try writer.stageGap(gap(105, 199))
        try writer.sync()
        register.add(gap(105, 199))
        register.add(gap(105, 199))
        #expect(register.gaps.count == 2, "a gap already known is not added twice")
        #expect(register.unacknowledged == [gap(105, 199)])
        #expect(try register.acknowledgeAll(note: "") == [gap(105, 199)])
        #expect(try GapRegister(log: log, topic: topic).unacknowledged.isEmpty)
        #expect(try register.acknowledgeAll(note: "again").isEmpty)

        // Lines an operator writes by hand count; malformed ones are ignored, not fatal.
        try "garbage\n# t 0 10 99\nt 0 105 199 by hand\n".write(toFile: register.acknowledgementsPath, atomically: true, encoding: .utf8)
        #expect(register.unacknowledged == [gap(10, 99)])
        try FileManager.default.removeItem(atPath: register.acknowledgementsPath)
        #expect(register.unacknowledged.count == 2)
    }
}
