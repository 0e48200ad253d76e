import EventLog
import Foundation
import Testing

/// Each kind of tampering is detected by `LogVerifier` and located.
@Suite("Tampering is detected and located")
struct TamperTests {
    /// A data directory with one partition of 300 records over several segments.
    func makeLog() throws -> (TemporaryDirectory, EventLog, [String]) {
        let data = TemporaryDirectory("tamper")
        let log = EventLog(dataDirectory: data.path)
        let writer = try PartitionWriter(
            directory: log.directory(topic: "t", partition: 0), topic: "t", partition: 0,
            options: .init(fsync: .never, maxSegmentBytes: 30_000))
        try writer.append((0..<300).map { LogRecord(offset: Int64($0), key: [2], value: expectedValue(offset: Int64($0))) })
        try writer.sync()
        let segments = TemporaryDirectory.segments(in: log.directory(topic: "t", partition: 0))
        #expect(try LogVerifier.verify(log).isClean)
        return (data, log, segments)
    }

    func firstProblem(_ log: EventLog) throws -> LogVerification.Problem? {
        try LogVerifier.verify(log).problems.first
    }

    @Test("flipping one byte of a record is found at that record")
    func flipOneByte() throws {
        let (data, log, segments) = try makeLog()
        defer { data.remove() }
        let victim = try LogDamage.frames(segments[1])[10]
        try LogDamage.edit(segments[1]) { $0[victim.position + 100] ^= 0x04 }
        let problem = try #require(try firstProblem(log))
        #expect(problem.path == segments[1])
        #expect(problem.byteOffset == victim.position)
        #expect(problem.message.contains("CRC"))
    }

    @Test("deleting a record breaks the chain at the record after it")
    func deleteRecord() throws {
        let (data, log, segments) = try makeLog()
        defer { data.remove() }
        let frames = try LogDamage.frames(segments[0])
        let victim = frames[5]
        try LogDamage.edit(segments[0]) { $0.removeSubrange(victim.position..<(victim.position + victim.length)) }
        let problem = try #require(try firstProblem(log))
        #expect(problem.path == segments[0])
        #expect(problem.byteOffset == victim.position, "the record that moved into its place")
        #expect(problem.kafkaOffset == 6)
        #expect(problem.message.contains("chain"))
    }

    @Test("swapping two records is found at the first of them")
    func swapRecords() throws {
        let (data, log, segments) = try makeLog()
        defer { data.remove() }
        let frames = try LogDamage.frames(segments[0])
        let (first, second) = (frames[3], frames[4])
        try LogDamage.edit(segments[0]) { bytes in
            let a = Array(bytes[first.position..<(first.position + first.length)])
            let b = Array(bytes[second.position..<(second.position + second.length)])
            bytes.replaceSubrange(first.position..<(second.position + second.length), with: b + a)
        }
        let problem = try #require(try firstProblem(log))
        #expect(problem.byteOffset == first.position)
        #expect(problem.kafkaOffset == 4)
    }

    @Test("truncating a sealed segment mid-record is found there and at the next segment's link")
    func truncateSealedSegment() throws {
        let (data, log, segments) = try makeLog()
        defer { data.remove() }
        let victim = try LogDamage.frames(segments[1])[7]
        try LogDamage.edit(segments[1]) { $0.removeSubrange((victim.position + 30)...) }
        let problems = try LogVerifier.verify(log).problems
        #expect(problems.count >= 2)
        #expect(problems[0].path == segments[1])
        #expect(problems[0].byteOffset == victim.position)
        #expect(problems[0].message.contains("truncated"))
        #expect(problems.contains { $0.path == segments[2] && $0.message.contains("previous chain hash") })
    }

    @Test("truncating a sealed segment at a record boundary is found at the next segment's link")
    func truncateAtBoundary() throws {
        let (data, log, segments) = try makeLog()
        defer { data.remove() }
        let victim = try LogDamage.frames(segments[0])[9]
        try LogDamage.edit(segments[0]) { $0.removeSubrange(victim.position...) }
        let problems = try LogVerifier.verify(log).problems
        #expect(problems.contains { $0.path == segments[1] && $0.byteOffset == 0 && $0.message.contains("previous chain hash") })
        #expect(problems.contains { $0.path.hasSuffix(".idx") }, "the index points past the new end")
    }

    @Test("truncating the last segment mid-record is reported as a torn tail, located")
    func truncateLastSegment() throws {
        let (data, log, segments) = try makeLog()
        defer { data.remove() }
        let last = try #require(segments.last)
        let victim = try LogDamage.frames(last)[2]
        try LogDamage.edit(last) { $0.removeSubrange((victim.position + 11)...) }
        let problem = try #require(try firstProblem(log))
        #expect(problem.path == last)
        #expect(problem.byteOffset == victim.position)
        #expect(problem.message.contains("torn tail"))
    }

    @Test("rewriting a record and recomputing its CRC is still caught by the chain")
    func forgedRecordWithValidCRC() throws {
        let (data, log, segments) = try makeLog()
        defer { data.remove() }
        // Replace record 20's value with another record's value, fixing the CRC: only
        // the chain can tell.
        let writer = try PartitionWriter(directory: data.path + "/forge", topic: "t", partition: 0)
        defer { try? FileManager.default.removeItem(atPath: data.path + "/forge") }
        let firstFrames = try LogDamage.frames(segments[0])
        try writer.append((0..<firstFrames.count).map {
            LogRecord(offset: Int64($0), key: [2], value: $0 == 5 ? expectedValue(offset: 999) : expectedValue(offset: Int64($0)))
        })
        let forged = try LogDamage.frames(TemporaryDirectory.segments(in: data.path + "/forge")[0])[5]
        let forgedBytes = try Array(Data(contentsOf: URL(fileURLWithPath: TemporaryDirectory.segments(in: data.path + "/forge")[0])))[forged.position..<(forged.position + forged.length)]
        let original = firstFrames[5]
        try LogDamage.edit(segments[0]) { $0.replaceSubrange(original.position..<(original.position + original.length), with: forgedBytes) }
        // The forged record itself is self-consistent (it was made by a real writer
        // whose chain differs only from record 5 on); record 6 no longer follows.
        let problem = try #require(try firstProblem(log))
        #expect(problem.path == segments[0])
        #expect(problem.message.contains("chain"))
        #expect(problem.byteOffset == original.position || problem.byteOffset == firstFrames[6].position)
    }
}
