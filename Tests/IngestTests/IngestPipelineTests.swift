import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Ingest
import KafkaTestSupport
import LedgerSupport
import Synchronization
import Testing

/// The pipeline without Kafka: messages handed to `accept` as the consumer would.
@Suite("IngestPipeline")
struct IngestPipelineTests {
    func accept(_ pipeline: IngestPipeline, offset: Int64, key: String, value: [UInt8]) throws {
        let keyBytes = Array(key.utf8)
        try keyBytes.withUnsafeBytes { keyBuffer in
            try value.withUnsafeBytes { valueBuffer in
                try pipeline.accept(partition: 0, offset: offset, timestamp: 1_000 + offset, key: keyBuffer, value: valueBuffer)
            }
        }
    }

    @Test("a batch with an event after a dead letter leaves the partition applied through the event: positions never move back")
    func deadLetterThenEventInOneBatch() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: "wa.device-events", fsync: .never))
        let event = Event(
            eventId: "E1", deviceId: "dev-1", occurredAt: 1, chatId: "a@c.us",
            payload: .messageCreated(MessageCreated(messageId: "M1", fromMe: false, kind: .text, preview: "hi")))
        try accept(pipeline, offset: 0, key: "dev-1", value: EventEncoder.encode(event))
        try accept(pipeline, offset: 1, key: "dev-1", value: Array("not json".utf8))
        var second = event
        second.eventId = "E2"
        try accept(pipeline, offset: 2, key: "dev-1", value: EventEncoder.encode(second))
        try accept(pipeline, offset: 3, key: "dev-1", value: Array("{".utf8))
        try accept(pipeline, offset: 4, key: "dev-1", value: EventEncoder.encode(event))  // a duplicate eventId
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        #expect(pipeline.store.appliedOffset(partition: 0) == 4)
        #expect(pipeline.counters.deadLetters == 2 && pipeline.counters.events == 3)

        try accept(pipeline, offset: 5, key: "dev-1", value: EventEncoder.encode(Event(
            eventId: "E3", deviceId: "dev-1", occurredAt: 2, chatId: "a@c.us", payload: .chatRead(ChatRead(upToMessageId: nil)))))
        try accept(pipeline, offset: 6, key: "dev-1", value: [])
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        #expect(pipeline.store.appliedOffset(partition: 0) == 6, "a dead letter last in the batch is the last position")
        #expect(pipeline.store.position(of: "dev-1") == LogPosition(partition: 0, offset: 6))
        try pipeline.close()
    }

    @Test("a Kafka key of 70,000 bytes (or a field name as long) is a dead letter whose reason quotes it cut short: nothing traps, the log and the next events go on")
    func hugeKeyIsADeadLetter() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let pipeline = try IngestPipeline(log: log, options: .init(topic: "wa.device-events", fsync: .never))
        let event = Event(
            eventId: "E1", deviceId: "dev-1", occurredAt: 1, chatId: "a@c.us",
            payload: .messageCreated(MessageCreated(messageId: "M1", fromMe: false, kind: .text, preview: "hi")))
        try accept(pipeline, offset: 0, key: String(repeating: "k", count: 70_000), value: EventEncoder.encode(event))
        let longField = #"{"schemaVersion":1,"eventId":"E2","deviceId":"dev-1","type":"chat.read","occurredAt":2,"chatId":"a@c.us","data":{""#
            + String(repeating: "f", count: 70_000) + #"":1}}"#
        try accept(pipeline, offset: 1, key: "dev-1", value: Array(longField.utf8))
        try accept(pipeline, offset: 2, key: "dev-1", value: EventEncoder.encode(event))
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        #expect(pipeline.counters.deadLetters == 2 && pipeline.counters.events == 1)
        #expect(pipeline.counters.deadLettersByReason["key_mismatch"] == 1)
        let reasons = try log.reader(topic: "wa.device-events", partition: 0).records().filter { $0.kind == .deadLetter }.map(\.reason)
        #expect(reasons.count == 2 && reasons.allSatisfy { $0.utf8.count < 2_000 }, "\(reasons.map(\.utf8.count))")
        #expect(reasons.first?.contains("(cut; 70000 bytes)") == true)
        try pipeline.close()
    }

    @Test("each dead letter is logged with its position and reason, at most 10 lines a second; the lines left out are counted in the next one; export --dead-letters lists them all with their bytes")
    func deadLettersAreLoggedAndExported() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lines = Mutex<[String]>([])
        let logger = Logger(label: "ingest", minimumLevel: .info) { line in lines.withLock { $0.append(line) } }
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: "wa.device-events", fsync: .never), logger: logger)
        for offset in 0..<12 { try accept(pipeline, offset: Int64(offset), key: "dev-1", value: Array("not json \(offset)".utf8)) }
        try accept(pipeline, offset: 12, key: "dev-1", value: [0xFF, 0xFE])
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        try pipeline.close()
        let logged = lines.withLock { $0 }.filter { $0.contains("msg=\"dead letter\"") }
        #expect(pipeline.counters.deadLetters == 13)
        #expect(logged.count == 10, "the first ten of the second: \(logged.count)")
        #expect(logged.first?.contains("partition=0 offset=0 reason=\"invalid_json") == true, "\(logged.first ?? "")")

        let run = try ChatLedgerProcess.run(["export", "--data", directory, "--dead-letters"])
        #expect(run.status == 0, "\(run.standardError)")
        let exported = try run.standardOutput.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        #expect(exported.count == 13)
        #expect(exported.first?["offset"] as? Int == 0 && exported.first?["value"] as? String == "not json 0" && exported.first?["key"] as? String == "dev-1")
        #expect((exported.first?["reason"] as? String)?.hasPrefix("invalid_json") == true)
        #expect(exported.last?["valueBase64"] as? String == "//4=", "bytes that are not UTF-8 in base64")
        #expect(try ChatLedgerProcess.run(["export", "--data", directory, "--dead-letters", "--device", "dev-2"]).standardOutput.isEmpty)
    }

    @Test("a torn tail of bytes that are no record (garbage, a length that promises more) is truncated before the projection reads the log: the pipeline opens, continues after the last whole record, and holds every event before it", arguments: [
        "garbage", "a length promising more",
    ])
    func tornTailBeforeProjectionLoad(kind: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = IngestPipeline.Options(topic: "wa.device-events", fsync: .never)
        var pipeline: IngestPipeline? = try IngestPipeline(log: EventLog(dataDirectory: directory), options: options)
        for offset in 0..<10 {
            try accept(pipeline!, offset: Int64(offset), key: "dev-1", value: EventEncoder.encode(Event(
                eventId: "E\(offset)", deviceId: "dev-1", occurredAt: Int64(offset), chatId: "a@c.us",
                payload: .messageCreated(MessageCreated(messageId: "M\(offset)", fromMe: false, kind: .text, preview: "hi")))))
        }
        try pipeline!.commitBatch()
        try pipeline!.close()
        pipeline = nil
        let segments = try FileManager.default.subpathsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }.sorted()
        let segment = directory + "/" + (try #require(segments.last))
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment)))
        // (A partial last record is covered by RecoveryTests; here a checkpoint already holds it.)
        if kind == "garbage" {
            bytes += (0..<57).map { UInt8(truncatingIfNeeded: $0 &* 91 &+ 7) }
        } else {
            bytes += [10, 0, 0, 0] + [UInt8](repeating: 0xAB, count: 14)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: segment))

        let reopened = try IngestPipeline(log: EventLog(dataDirectory: directory), options: options)
        let expectedLast: Int64 = 9
        #expect(try reopened.startOffset(for: 0) == expectedLast + 1)
        #expect(reopened.store.appliedOffset(partition: 0) == expectedLast)
        #expect(reopened.store.snapshot().devices["dev-1"]?.chats.count == 1)
        try reopened.close()
    }

    @Test("a trace stamps each stage of the records of its key, in order, and nothing of other keys")
    func traceStampsStagesOfItsKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let traceFile = directory + ".trace"
        defer { try? FileManager.default.removeItem(atPath: traceFile) }
        var options = IngestPipeline.Options(topic: "wa.device-events", fsync: .never)
        let trace: FreshnessTrace = try #require(FreshnessTrace(key: "probe", path: traceFile))
        options.trace = trace
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: options)
        for (offset, device) in ["dev-1", "probe", "dev-2", "probe"].enumerated() {
            let event = Event(
                eventId: "E\(offset)", deviceId: device, occurredAt: 1, chatId: "a@c.us",
                payload: .messageCreated(MessageCreated(messageId: "M\(offset)", fromMe: false, kind: .text, preview: "hi")))
            try accept(pipeline, offset: Int64(offset), key: device, value: EventEncoder.encode(event))
        }
        try accept(pipeline, offset: 4, key: "probe", value: Array("not json".utf8))  // a dead letter: not traced
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        try pipeline.close()

        let lines = try String(contentsOfFile: traceFile, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.map { "\($0[0]) \($0[2])" } == [
            "fetched 1", "fetched 3", "appended 1", "appended 3", "dequeued 1", "dequeued 3", "applied 1", "applied 3",
        ])
        #expect(lines.filter { $0[0] == "fetched" }.map { $0.last } == ["E1", "E3"], "the fetched line names the event id")
        let times = lines.compactMap { Int64($0[3]) }
        #expect(times.count == 8 && times == times.sorted(), "stamps in stage order, on one monotonic clock")
    }

    @Test("a small batch is in the projection when commitBatch returns; a large one once the applier has it, in order")
    func smallBatchFoldedOnCommit() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: "wa.device-events", fsync: .never))
        func message(_ offset: Int) throws {
            let event = Event(
                eventId: "E\(offset)", deviceId: "dev-1", occurredAt: Int64(offset), chatId: "a@c.us",
                payload: .messageCreated(MessageCreated(messageId: "M\(offset)", fromMe: false, kind: .text, preview: "hi")))
            try accept(pipeline, offset: Int64(offset), key: "dev-1", value: EventEncoder.encode(event))
        }
        for offset in 0..<3 { try message(offset) }
        try pipeline.commitBatch()
        #expect(pipeline.store.appliedOffset(partition: 0) == 2, "folded by the committing thread, no wait for the applier")

        for offset in 3..<1_003 { try message(offset) }  // larger than a batch folded inline
        try pipeline.commitBatch()
        try message(1_003)
        try pipeline.commitBatch()  // small: queued behind the large one if that is still outstanding
        pipeline.waitUntilApplied()
        #expect(pipeline.store.appliedOffset(partition: 0) == 1_003)
        #expect(pipeline.store.version(of: "dev-1") == 1_004, "every message applied once, in order")
        try pipeline.close()
    }
}

