#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatLedgerCLI
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// The write API (README, "The write API") end to end: real `chatledger` processes, Kafka (the embedded
/// broker, or librdkafka's mock cluster in this process so the test can stop it), the log,
/// `replay` and `export`.
@Suite("Write API, as real processes")
struct WriteAPITests {
    static let writerKey = "writer-secret-7f3a9c"
    static let readerKey = "reader-secret-1b2d"
    static let chat = "/api/v1/devices/dev-s/chats/anna%40c.us"

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [String: Any]
        var text: String
        var errorCode: String? { (body["error"] as? [String: Any])?["code"] as? String }
    }

    /// A keys file: a writer for dev-s (id crm-agents), a reader of dev-s that may not write.
    static func keysFile(_ directory: String) throws -> String {
        let path = directory + ".keys.json"
        try Data("""
            {"keys":[
              {"id":"crm-agents","key":"\(writerKey)","devices":["dev-s"],"role":"reader","write":true},
              {"key":"\(readerKey)","devices":["dev-s"],"role":"reader"}
            ]}
            """.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func request(
        _ port: UInt16, _ method: String, _ target: String, key: String? = writerKey, body: String = "", headers: [String] = []
    ) throws -> Response {
        let answer = try HTTPAnswer.request(port, method, target, key: key, body: body, headers: headers)
        return Response(status: answer.status, headers: answer.headers, body: answer.json, text: answer.body)
    }

    static func message(_ id: String, at time: Int) -> String {
        #"{"schemaVersion":1,"eventId":"E-\#(id)","deviceId":"dev-s","type":"message.created","occurredAt":\#(time),"chatId":"anna@c.us","data":{"messageId":"\#(id)","fromMe":false,"kind":"text","preview":"hi"}}"#
    }

    /// Publishes events with a separate client (`KafkaProducer`); the last position, P:O.
    static func produce(_ brokers: String, _ lines: [String]) throws -> String {
        let producer = try KafkaProducer(bootstrapServers: brokers)
        for line in lines { try producer.send(topic: "wa.device-events", key: Array("dev-s".utf8), value: Array(line.utf8)) }
        try producer.flush(timeoutMilliseconds: 20_000)
        let (partition, offset) = try #require(producer.report.lastOffsets.first)
        return "\(partition):\(offset)"
    }

    /// Every file under `directory` (recursively) and `extra`: none may hold `secret` (an
    /// API key, an erased device's id).
    static func expectNowhere(_ secret: String, under directory: String, or extra: [String]) throws {
        let files = (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).map { directory + "/" + $0 } + extra
        var segments = 0
        for path in files {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            if path.hasSuffix(".seg") { segments += 1 }
            #expect(data.range(of: Data(secret.utf8)) == nil, "\(path) holds \(secret)")
        }
        #expect(segments >= 1, "the log's segments were looked at")
    }

    @Test("the seed scenario reversed: three unread; POST …/read?wait=1000 answers 200 with 0 and the next GET says 0; replay --at-offset of its position says 0 (3 one record earlier); export shows the event with its API source; 401/403/404; no key in the log, its checkpoints or the process's log lines")
    func seedScenarioReversed() throws {
        let data = IngestTesting.temporaryData("write-seed")
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: data + ".keys.json")
            try? FileManager.default.removeItem(atPath: data + ".stderr")
        }
        let run = try ServerProcess(
            executable: ChatLedgerProcess.executable,
            arguments: ["run", "--http", "127.0.0.1:0", "--data", data, "--keys", try Self.keysFile(data), "--partitions", "2"],
            standardError: data + ".stderr")
        let three = try Self.produce(run.brokers, (1...3).map { Self.message("M\($0)", at: 200 + $0) })
        let before = try Self.request(run.port, "GET", Self.chat + "?minPosition=\(three)&wait=20000")
        #expect(before.status == 200)
        #expect(before.body["unreadCount"] as? Int == 3)

        #expect(try Self.request(run.port, "POST", Self.chat + "/read", key: nil).status == 401)
        #expect(try Self.request(run.port, "POST", Self.chat + "/read", key: Self.readerKey).status == 403)
        #expect(try Self.request(run.port, "POST", "/api/v1/devices/dev-other/chats/anna%40c.us/read").status == 404)

        let read = try Self.request(run.port, "POST", Self.chat + "/read?wait=1000")
        #expect(read.status == 200, "\(read.text)")
        #expect(read.body["unreadCount"] as? Int == 0)
        let position = try #require(read.headers["x-ledger-position"])
        let after = try Self.request(run.port, "GET", Self.chat)
        #expect(after.body["unreadCount"] as? Int == 0, "the next GET")
        #expect(after.headers["x-ledger-position"] == position)
        #expect(run.terminate() == 0)

        let at = try ChatLedgerProcess.run(["replay", "--data", data, "--device", "dev-s", "--chat", "anna@c.us", "--at-offset", position])
        #expect(at.status == 0, "\(at.standardError)")
        #expect((try JSONSerialization.jsonObject(with: Data(at.standardOutput.utf8)) as? [String: Any])?["unreadCount"] as? Int == 0)
        let parts = position.split(separator: ":")
        let earlier = try ChatLedgerProcess.run(
            ["replay", "--data", data, "--device", "dev-s", "--chat", "anna@c.us", "--at-offset", "\(parts[0]):\(Int(parts[1])! - 1)"])
        #expect((try JSONSerialization.jsonObject(with: Data(earlier.standardOutput.utf8)) as? [String: Any])?["unreadCount"] as? Int == 3)

        let export = try ChatLedgerProcess.run(["export", "--data", data, "--device", "dev-s", "--chat", "anna@c.us", "--with-position"])
        #expect(export.status == 0)
        let lines = export.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "three messages and the read")
        let last = try #require(lines.last)
        #expect(last.hasPrefix(#"{"partition":\#(parts[0]),"offset":\#(parts[1]),"#))
        #expect(last.contains(#""type":"chat.read""#))
        #expect(last.contains(#""source":{"format":"api","keyId":"crm-agents"}"#))
        try Self.expectNowhere(Self.writerKey, under: data, or: [data + ".stderr"])
    }

    @Test("Kafka down (the mock cluster's broker stopped): a POST answers 503 in bounded time and the loop keeps answering; nothing of it reaches the log; once the broker is back the same request with its Idempotency-Key works, once")
    func kafkaDown() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 1)])
        let data = IngestTesting.temporaryData("write-down")
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: data + ".keys.json")
        }
        let run = try ServerProcess(
            executable: ChatLedgerProcess.executable,
            arguments: [
                "run", "--brokers", cluster.bootstrapServers, "--http", "127.0.0.1:0", "--data", data, "--keys", try Self.keysFile(data),
                "--write-timeout-ms", "1000", "--kafka-config", "session.timeout.ms=6000",
            ])
        let first = try Self.produce(cluster.bootstrapServers, [Self.message("M1", at: 100)])
        #expect(try Self.request(run.port, "GET", Self.chat + "?minPosition=\(first)&wait=20000").body["unreadCount"] as? Int == 1)
        let read = try Self.request(run.port, "POST", Self.chat + "/read")
        #expect(read.status == 202, "\(read.text)")

        try cluster.setBroker(1, up: false)
        let start = ContinuousClock.now
        let down = try Self.request(run.port, "POST", Self.chat + "/archive", body: #"{"archived":true}"#, headers: ["Idempotency-Key: archive-1"])
        let elapsed = ContinuousClock.now - start
        #expect(down.status == 503, "\(down.text)")
        #expect(down.errorCode == "kafka_unavailable")
        #expect(down.headers["retry-after"] == "1")
        #expect(elapsed < .milliseconds(1_000 + 2_000 + 1_500), "the write timeout and the server's grace: \(elapsed)")
        #expect(try Self.request(run.port, "GET", "/healthz", key: nil).status == 200)

        try cluster.setBroker(1, up: true)
        var archived: Response?
        for _ in 0..<20 {
            let attempt = try Self.request(
                run.port, "POST", Self.chat + "/archive?wait=10000", body: #"{"archived":true}"#, headers: ["Idempotency-Key: archive-1"])
            if attempt.status == 200 {
                archived = attempt
                break
            }
            #expect(attempt.errorCode == "kafka_unavailable", "only Kafka's absence may fail it: \(attempt.text)")
        }
        let answer = try #require(archived, "works again once the broker is back")
        #expect(answer.body["archived"] as? Bool == true)
        let metrics = try Self.request(run.port, "GET", "/metrics", key: nil).text
        #expect(metrics.contains(#"chatledger_write_events_total{type="chat.archived"} 1"#))
        #expect(!metrics.contains("chatledger_write_failures_total 0\n"))
        #expect(run.terminate() == 0)

        let records = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "wa.device-events", partitions: 1)
        let events = records.compactMap { try? EventParser().parse($0.value) }
        #expect(events.map(\.type) == ["message.created", "chat.read", "chat.archived"], "one record per acknowledged write, none for the failures")
        #expect(events.dropFirst().allSatisfy { $0.source == .api(keyId: "crm-agents") })
    }

    @Test("serve answers the write routes only with --brokers (else 501); with it a write goes through Kafka, ingest and the log serve follows; a retried Idempotency-Key is truly one record on the topic")
    func serveWithAndWithoutBrokers() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 2)])
        let data = IngestTesting.temporaryData("write-serve")
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: data + ".keys.json")
            try? FileManager.default.removeItem(atPath: data + ".stderr")
        }
        let keys = try Self.keysFile(data)
        let three = try Self.produce(cluster.bootstrapServers, (1...3).map { Self.message("M\($0)", at: 200 + $0) })
        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "write-serve")
        let parts = three.split(separator: ":")
        try IngestTesting.waitForLog(data: data, lastOffsets: [Int32(parts[0])!: Int64(parts[1])!])
        let serve = try ServerProcess(
            executable: ChatLedgerProcess.executable,
            arguments: ["serve", "--data", data, "--http", "127.0.0.1:0", "--keys", keys, "--brokers", cluster.bootstrapServers])
        let plain = try ServerProcess(executable: ChatLedgerProcess.executable, arguments: ["serve", "--data", data, "--http", "127.0.0.1:0", "--keys", keys])
        #expect(try Self.request(serve.port, "GET", Self.chat + "?minPosition=\(three)&wait=20000").body["unreadCount"] as? Int == 3)

        let unavailable = try Self.request(plain.port, "POST", Self.chat + "/read")
        #expect(unavailable.status == 501)
        #expect(unavailable.errorCode == "not_implemented")

        let read = try Self.request(serve.port, "POST", Self.chat + "/read?wait=10000", headers: ["Idempotency-Key: crm-read-1"])
        #expect(read.status == 200, "\(read.text)")
        #expect(read.body["unreadCount"] as? Int == 0)
        let retry = try Self.request(serve.port, "POST", Self.chat + "/read", headers: ["Idempotency-Key: crm-read-1"])
        #expect(retry.status == 202)
        #expect(retry.headers["idempotent-replayed"] == "true")
        #expect(try Self.request(plain.port, "GET", Self.chat + "?minPosition=\(read.headers["x-ledger-position"] ?? "")&wait=10000").body["unreadCount"] as? Int == 0,
                "every serve process follows the same log")
        #expect(serve.terminate() == 0)
        #expect(plain.terminate() == 0)
        #expect(ingest.terminate() == 0)

        let records = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "wa.device-events", partitions: 2)
        let reads = records.compactMap { try? EventParser().parse($0.value) }.filter { $0.type == "chat.read" }
        #expect(reads.count == 1, "the retry produced no second record")
        #expect(reads.first?.eventId == retry.body["eventId"] as? String)
    }
}
