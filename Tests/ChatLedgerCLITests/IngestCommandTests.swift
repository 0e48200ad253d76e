#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import Dispatch
import ChatProjection
import EventLog
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

@Suite("chatledger ingest against the mock cluster, as real processes")
struct IngestCommandTests {
    struct Summary: Decodable {
        var delivered: Int
        var lastOffsets: [String: Int64]
        var partitions: [Int32: Int64] { Dictionary(uniqueKeysWithValues: lastOffsets.map { (Int32($0.key)!, $0.value) }) }
    }

    func produce(_ brokers: String, count: Int, seed: Int) throws -> Summary {
        try IngestTesting.produce(brokers, count: count, seed: seed)
    }

    @Test("produced events land in the log exactly once per offset, in order, and the projection digest equals a reference fold")
    func exactlyOnceAndDigest() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 4)])
        let data = IngestTesting.temporaryData("ingest")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let summary = try produce(cluster.bootstrapServers, count: 4_000, seed: 5)
        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "exactly-once")
        try IngestTesting.waitForLog(data: data, lastOffsets: summary.partitions)
        #expect(ingest.terminate() == 0, "SIGTERM: finish the batch, sync, checkpoint, exit 0")

        let messages = try IngestTesting.expectLogAndCheckpointMatchTopic(data: data, brokers: cluster.bootstrapServers, partitions: 4)
        #expect(messages.count == 4_000)
        #expect(try LogVerifier.verify(EventLog(dataDirectory: data)).isClean)

        // A restart reads nothing twice: new events after it are appended once. (A new
        // group: the mock cluster keeps a departed member until its session times out, and
        // where to resume comes from the log anyway.)
        let more = try produce(cluster.bootstrapServers, count: 500, seed: 6)
        let again = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "exactly-once-restart")
        try IngestTesting.waitForLog(data: data, lastOffsets: more.partitions)
        #expect(again.terminate() == 0)
        try IngestTesting.expectLogAndCheckpointMatchTopic(data: data, brokers: cluster.bootstrapServers, partitions: 4)
    }

    @Test("hostile input: every bad message is a dead letter with its reason, none is lost, and the partition keeps moving")
    func hostileInput() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 1)])
        let data = IngestTesting.temporaryData("hostile")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let valid = #"{"schemaVersion":1,"eventId":"E-ok","deviceId":"dev-h","type":"message.created","occurredAt":5,"chatId":"a@c.us","data":{"messageId":"M1","fromMe":false,"kind":"text","preview":"hi"}}"#
        let cases: [(value: [UInt8]?, key: String, code: String)] = [
            (Array("not json at all".utf8), "dev-h", "invalid_json"),
            (Array(valid.utf8.prefix(60)), "dev-h", "invalid_json"),
            (Array(#"{"schemaVersion":1,"eventId":"E","deviceId":"dev-h","type":"x.y","occurredAt":1,"data":{"pad":""#.utf8) + [UInt8](repeating: 0x61, count: 70_000) + Array(#""}}"#.utf8), "dev-h", "too_large"),
            (Array(valid.replacingOccurrences(of: #""fromMe":false"#, with: #""fromMe":"no""#).utf8), "dev-h", "wrong_type"),
            (Array(valid.utf8), "someone-else", "key_mismatch"),
            (Array(valid.replacingOccurrences(of: #""schemaVersion":1"#, with: #""schemaVersion":2"#).utf8), "dev-h", "unsupported_schema_version"),
            ([], "dev-h", "invalid_json"),
            (nil, "dev-h", "invalid_json"),
            (Array(valid.replacingOccurrences(of: "hi", with: "h\u{FFFD}").utf8).map { $0 == 0xEF ? 0xC3 : $0 }, "dev-h", "invalid_utf8"),
        ]
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        for item in cases { try producer.send(topic: "wa.device-events", key: Array(item.key.utf8), value: item.value) }
        try producer.send(topic: "wa.device-events", key: Array("dev-h".utf8), value: Array(valid.utf8))
        try producer.flush(timeoutMilliseconds: 30_000)
        #expect(producer.report.delivered == cases.count + 1)

        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "hostile")
        try IngestTesting.waitForLog(data: data, lastOffsets: [0: Int64(cases.count)])
        #expect(ingest.terminate() == 0)
        let records = try EventLog(dataDirectory: data).reader(topic: "wa.device-events", partition: 0).records()
        #expect(records.count == cases.count + 1, "none lost")
        for (record, item) in zip(records, cases) {
            #expect(record.kind == .deadLetter, "offset \(record.offset)")
            #expect(record.reason.hasPrefix(item.code), "offset \(record.offset): \(record.reason)")
            #expect(record.value == item.value, "raw bytes kept (nil for a tombstone)")
        }
        #expect(records.last?.kind == .event, "the partition keeps moving after bad input")
        let verification = try LogVerifier.verify(EventLog(dataDirectory: data))
        #expect(verification.partitions.first?.deadLetters == cases.count)
        #expect(verification.deadLettersByReason["invalid_json"] == 4)
        let store = CheckpointStore(dataDirectory: data)
        let checkpoint = try store.read(try #require(store.sequences().last)).0
        #expect(checkpoint.counts.deadLetters == cases.count)
        #expect(checkpoint.devices["dev-h"]?.chats["a@c.us"]?.unreadCount == 1)
    }

    @Test("the log's disk refuses a write (a file-size limit, as a full disk would): ingest exits 1 naming the cause; a restart loses nothing and duplicates nothing")
    func writeFailure() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 2)])
        let data = IngestTesting.temporaryData("write-failure")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let summary = try produce(cluster.bootstrapServers, count: 4_000, seed: 21)  // ~0.6 MB per partition

        // RLIMIT_FSIZE of 256 KiB makes write(2) fail with EFBIG part-way through a segment,
        // like ENOSPC on a full disk. SIGXFSZ is ignored so the write fails instead of the
        // signal killing the process (an ignored signal stays ignored across exec).
        let limited = Process()
        limited.executableURL = URL(fileURLWithPath: "/bin/bash")
        limited.arguments = ["-c", #"trap '' XFSZ; ulimit -f 256; exec "$0" "$@""#, ChatLedgerProcess.executable.path,
                             "ingest", "--brokers", cluster.bootstrapServers, "--data", data, "--group", "write-failure"]
        limited.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: data + ".stderr", contents: nil)
        limited.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: data + ".stderr"))
        let exited = DispatchSemaphore(value: 0)
        limited.terminationHandler = { _ in exited.signal() }
        try limited.run()
        // Bounded, so a hang fails the test instead of the whole run (it hung, before the
        // consumer could leave its group from deinit).
        if exited.wait(timeout: .now() + 120) == .timedOut {
            Issue.record("ingest still running 120 s after its writes started failing")
            Glibc.kill(limited.processIdentifier, SIGKILL)
            limited.waitUntilExit()
        }
        let stderr = (try? String(contentsOfFile: data + ".stderr", encoding: .utf8)) ?? ""
        #expect(limited.terminationReason == .exit && limited.terminationStatus == 1, "exit 1, not a crash or a hang")
        #expect(stderr.contains("command failed") && stderr.contains("write"), "the cause is logged:\n\(stderr.suffix(600))")

        let drained = try IngestTesting.drainAndCheck(
            brokers: cluster.bootstrapServers, data: data, group: "write-failure-restart", lastOffsets: summary.partitions, partitions: 2)
        #expect(drained == 4_000)
    }

    @Test("ingest SIGKILLed at 30 random moments while production continues: every offset exactly once and the reference digest")
    func crashWhileProducing() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 4)])
        let data = IngestTesting.temporaryData("ingest-crash")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let producer = Process()
        producer.executableURL = ChatLedgerProcess.executable
        producer.arguments = ["produce", "--brokers", cluster.bootstrapServers, "--simulate", "--count", "24000", "--rate", "400",
                              "--devices", "40", "--chats", "20", "--seed", "12"]
        let producerOutput = Pipe()
        producer.standardOutput = producerOutput
        producer.standardError = FileHandle.nullDevice
        try producer.run()

        var random = SystemRandomNumberGenerator()
        for kill in 0..<30 {
            // A new group each time: where to resume comes from the log, never from Kafka.
            let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "crash-\(kill)")
            usleep(UInt32.random(in: 200_000...4_500_000, using: &random))  // the kill moment; not a synchronisation
            ingest.kill()
        }
        let summaryData = producerOutput.fileHandleForReading.readDataToEndOfFile()
        producer.waitUntilExit()
        let summary = try JSONDecoder().decode(Summary.self, from: summaryData)
        #expect(summary.delivered == 24_000)

        let drained = try IngestTesting.drainAndCheck(
            brokers: cluster.bootstrapServers, data: data, group: "crash-final", lastOffsets: summary.partitions, partitions: 4)
        #expect(drained == 24_000)
    }
}

@Suite("chatledger ingest under broker faults and rebalances")
struct IngestFaultTests {
    func produce(_ brokers: String, count: Int, seed: Int) throws -> [Int32: Int64] {
        try IngestTesting.produce(brokers, count: count, seed: seed).partitions
    }

    @Test("broker down and up, Fetch and OffsetCommit errors, leader moves: no loss, no duplicate, ingest recovers on its own")
    func brokerFaults() throws {
        let cluster = try MockCluster(brokerCount: 3, topics: [("wa.device-events", 4)])
        let data = IngestTesting.temporaryData("faults")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "faults")
        try IngestTesting.waitForLog(data: data, lastOffsets: try produce(cluster.bootstrapServers, count: 800, seed: 1))

        // Requests fail: fetches with leadership and timeout errors, commits with coordinator errors.
        cluster.failNextRequests(.fetch, errors: [6, 7, 6, 7, 6])
        cluster.failNextRequests(.offsetCommit, errors: [16, 7, 16, 15, 16])
        try IngestTesting.waitForLog(data: data, lastOffsets: try produce(cluster.bootstrapServers, count: 800, seed: 2))

        // Leaders move to other brokers.
        for partition: Int32 in 0..<4 { try cluster.setLeader(topic: "wa.device-events", partition: partition, broker: (partition + 1) % 3 + 1) }
        try IngestTesting.waitForLog(data: data, lastOffsets: try produce(cluster.bootstrapServers, count: 800, seed: 3))

        // A broker goes down while events are produced, and comes back.
        try cluster.setBroker(2, up: false)
        let producer = Process()
        producer.executableURL = ChatLedgerProcess.executable
        producer.arguments = ["produce", "--brokers", cluster.bootstrapServers, "--simulate", "--count", "800", "--devices", "30", "--chats", "20", "--seed", "4"]
        let output = Pipe()
        producer.standardOutput = output
        producer.standardError = FileHandle.nullDevice
        try producer.run()
        usleep(2_000_000)  // the length of the outage; not a synchronisation
        try cluster.setBroker(2, up: true)
        let summary = try JSONDecoder().decode(IngestCommandTests.Summary.self, from: output.fileHandleForReading.readDataToEndOfFile())
        producer.waitUntilExit()
        #expect(summary.delivered == 800)
        try IngestTesting.waitForLog(data: data, lastOffsets: summary.partitions)
        #expect(ingest.terminate() == 0)

        let messages = try IngestTesting.expectLogAndCheckpointMatchTopic(data: data, brokers: cluster.bootstrapServers, partitions: 4)
        #expect(messages.count == 3_200)
    }

    @Test("two instances split the partitions; one is killed; the survivor rebuilds its partitions from the topic and ends with the full state")
    func survivorTakesOver() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 4)])
        let first = IngestTesting.temporaryData("pair-a")
        let second = IngestTesting.temporaryData("pair-b")
        defer {
            try? FileManager.default.removeItem(atPath: first)
            try? FileManager.default.removeItem(atPath: second)
        }
        let config = ["--kafka-config", "session.timeout.ms=6000,heartbeat.interval.ms=500"]
        let survivor = try IngestProcess(brokers: cluster.bootstrapServers, data: first, group: "pair", extra: config)
        let victim = try IngestProcess(brokers: cluster.bootstrapServers, data: second, group: "pair", extra: config)
        let before = try produce(cluster.bootstrapServers, count: 2_000, seed: 7)
        // Both instances between them hold every partition.
        for (partition, last) in before {
            let logs = [first, second].map { EventLog(dataDirectory: $0).directory(topic: "wa.device-events", partition: partition) }
            let followers = logs.map { LogFollower(directory: $0, topic: "wa.device-events", partition: partition) }
            var quiet = 0
            while followers.allSatisfy({ $0.nextOffset <= last }) {
                let progress = try followers.reduce(0) { $0 + (try $1.poll { _ in }) }
                if progress == 0 {
                    quiet += 1
                    #expect(quiet < 200, "partition \(partition) is consumed by one of the instances")
                    if quiet >= 200 { return }
                    followers[quiet % 2].waitForChanges(timeoutMilliseconds: 250)
                }
            }
        }
        let split = [first, second].map { (try? EventLog(dataDirectory: $0).partitions().count) ?? 0 }
        victim.kill()

        let after = try produce(cluster.bootstrapServers, count: 2_000, seed: 8)
        try IngestTesting.waitForLog(data: first, lastOffsets: after)
        #expect(survivor.terminate() == 0)
        let survivorLog = (try? String(contentsOfFile: first + ".stderr", encoding: .utf8)) ?? ""
        #expect(survivorLog.contains("rebuilding it from the start of the topic"), "partitions new to it were rebuilt from the topic")
        let caughtUp = Set(survivorLog.split(separator: "\n").filter { $0.contains("msg=\"partition caught up\"") }
            .compactMap { line in line.split(separator: " ").first { $0.hasPrefix("partition=") }.flatMap { Int($0.dropFirst(10)) } })
        #expect(caughtUp == [0, 1, 2, 3], "every partition it ends with was reported caught up (ready)")
        try IngestTesting.expectLogAndCheckpointMatchTopic(data: first, brokers: cluster.bootstrapServers, partitions: 4)
        #expect(split.reduce(0, +) >= 4, "the partitions were split between the two instances: \(split)")
    }
}
