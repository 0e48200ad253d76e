import EventLog
import Foundation
import KafkaTestSupport
import Testing

@Suite("chatledger verify, as a real process")
struct VerifyCommandTests {
    func makeData() throws -> String {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(UUID().uuidString)").path
        let log = EventLog(dataDirectory: data)
        for partition: Int32 in 0..<2 {
            let writer = try log.openWriter(topic: "wa.device-events", partition: partition, options: .init(maxSegmentBytes: 8_000))
            var records: [LogRecord] = []
            for offset in 0..<80 {
                let isDeadLetter = offset % 20 == 7
                let value = [UInt8](repeating: UInt8(offset), count: 120)
                records.append(
                    LogRecord(
                        kind: isDeadLetter ? .deadLetter : .event, offset: Int64(offset), timestamp: 1_700_000_000_000,
                        key: Array("dev-1".utf8), value: value, reason: isDeadLetter ? "invalid_json : expected a value" : ""))
            }
            try writer.append(records)
        }
        return data
    }

    @Test("a clean log verifies: exit 0, a line per partition, dead letters by reason")
    func cleanLog() throws {
        let data = try makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ChatLedgerProcess.run(["verify", "--data", data])
        #expect(run.status == 0, "\(run.standardOutput)\(run.standardError)")
        #expect(run.standardOutput.contains("partition wa.device-events/0: 80 records (76 events, 4 dead letters), offsets 0..79"))
        #expect(run.standardOutput.contains("partition wa.device-events/1: 80 records"))
        #expect(run.standardOutput.contains("dead letters invalid_json: 8"))
        #expect(run.standardOutput.contains("ok: 160 records in 2 partitions"))
    }

    @Test("a damaged log fails: exit 1, the problem named with file, byte and offset; --json says the same")
    func damagedLog() throws {
        let data = try makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let directory = EventLog(dataDirectory: data).directory(topic: "wa.device-events", partition: 1)
        let segment = directory + "/" + (try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }.sorted()[1])
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[bytes.count / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: segment))

        let run = try ChatLedgerProcess.run(["verify", "--data", data])
        #expect(run.status == 1)
        let problem = try #require(run.standardOutput.split(separator: "\n").first { $0.hasPrefix("problem: ") })
        #expect(problem.contains(segment + " byte "))
        #expect(problem.contains(" offset "))
        #expect(run.standardOutput.contains("FAILED: 1 problems"))

        let json = try ChatLedgerProcess.run(["verify", "--data", data, "--json"])
        #expect(json.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["clean"] as? Bool == false)
        let problems = try #require(object["problems"] as? [[String: Any]])
        #expect(problems.count == 1)
        #expect(problems.first?["path"] as? String == segment)
    }

    /// Each record of a segment file: its byte position and the Kafka offset it states,
    /// read as `schemas/event-log.md` lays them out (header length at byte 10; a record is
    /// its body length, its CRC and the body, whose bytes 8 ..< 16 are the offset).
    static func records(of segment: [UInt8]) -> [(position: Int, offset: Int64)] {
        func integer<Value: FixedWidthInteger>(_ type: Value.Type, at position: Int) -> Value {
            segment[position..<(position + MemoryLayout<Value>.size)].reversed().reduce(0) { $0 << 8 | Value($1) }
        }
        var records: [(position: Int, offset: Int64)] = []
        var position = Int(integer(UInt16.self, at: 10))
        while position + 24 <= segment.count {
            records.append((position, integer(Int64.self, at: position + 16)))
            position += 8 + Int(integer(UInt32.self, at: position))
        }
        return records
    }

    @Test(
        "verify names a record whose checksum is damaged by the offset it records (said to be so) and its byte, in the text and in --json",
        arguments: zip([0, 1], [0, 1]))
    func damagedRecordNamedByItsOwnOffset(segmentIndex: Int, recordIndex: Int) throws {
        let data = try makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let directory = EventLog(dataDirectory: data).directory(topic: "wa.device-events", partition: 1)
        let segments = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }.sorted()
        let segment = directory + "/" + segments[segmentIndex]
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: segment)))
        let records = Self.records(of: bytes)
        try #require(records.count > 3)
        let damaged = records[recordIndex]
        bytes[damaged.position + 8 + 60] ^= 0x10  // inside the key or value, past the offset field
        try Data(bytes).write(to: URL(fileURLWithPath: segment))

        let run = try ChatLedgerProcess.run(["verify", "--data", data])
        #expect(run.status == 1)
        let problem = try #require(run.standardOutput.split(separator: "\n").first { $0.hasPrefix("problem: ") })
        let location = "problem: \(segment) byte \(damaged.position) offset \(damaged.offset): record CRC mismatch"
        #expect(problem.hasPrefix(location), "\(problem)")
        #expect(problem.contains("as recorded in the damaged record"), "\(problem)")

        let json = try ChatLedgerProcess.run(["verify", "--data", data, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let problems = try #require(object["problems"] as? [[String: Any]])
        #expect(problems.count == 1)
        #expect(problems.first?["byte"] as? Int == damaged.position)
        #expect(problems.first?["offset"] as? Int == Int(damaged.offset))
    }

    @Test("a missing data directory is an error, not an empty success")
    func missingDirectory() throws {
        let run = try ChatLedgerProcess.run(["verify", "--data", "/nonexistent/chatledger"])
        #expect(run.status == 1)
        #expect(run.standardError.contains("no data directory"))
    }
}
