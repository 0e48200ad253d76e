#if canImport(Glibc)
import Glibc
#endif
import ChatLedgerCLI
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

extension ServerProcess {
    /// The built `chatledger` with these arguments.
    convenience init(_ arguments: [String]) throws {
        try self.init(executable: ChatLedgerProcess.executable, arguments: arguments)
    }
}

@Suite("chatledger run, as a real process")
struct RunCommandTests: DemoKeyRequests {
    /// Publishes NDJSON lines with `chatledger produce --file` (a separate client); returns the last offset as P:O.
    func produce(_ brokers: String, _ lines: [String]) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString).ndjson")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(lines.joined(separator: "\n").utf8).write(to: file)
        let run = try ChatLedgerProcess.run(["produce", "--brokers", brokers, "--file", file.path])
        #expect(run.status == 0, "\(run.standardError)")
        let summary = try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any]
        let (partition, offset) = try #require((summary?["lastOffsets"] as? [String: Int])?.first)
        return "\(partition):\(offset)"
    }

    /// The README's scenario (`schemas/projection.md`): a chat shows unreadCount 0; three messages from another person
    /// are produced by a separate client; the next query carrying minPosition shows 3.
    /// Then three more, and plain GETs polled right after the produce measure how long
    /// until they show 6 (printed), never going backwards.
    func staleCountScenario(brokers: String, port: UInt16, mode: String) throws {
        let own = try produce(brokers, [message("O1", fromMe: true, at: 100)])
        let before = try get(port, "/api/v1/devices/dev-s/chats?minPosition=\(own)&wait=20000")
        #expect(before.status == 200)
        #expect(unreadCount(before.body) == 0)

        let three = try produce(brokers, (1...3).map { message("M\($0)", fromMe: false, at: 200 + $0) })
        let after = try get(port, "/api/v1/devices/dev-s/chats?minPosition=\(three)&wait=20000")
        #expect(after.status == 200)
        #expect(unreadCount(after.body) == 3, "the very next query, no sleep")

        _ = try produce(brokers, (4...6).map { message("M\($0)", fromMe: false, at: 300 + $0) })
        let start = ContinuousClock.now
        var last = 3
        var polls = 0
        while last < 6, polls < 100_000 {
            let count = unreadCount(try get(port, "/api/v1/devices/dev-s/chats").body) ?? -1
            #expect(count >= last, "a count never goes backwards")
            last = max(last, count)
            polls += 1
        }
        #expect(last == 6)
        print("\(mode) freshness delay: \(Int((ContinuousClock.now - start) / .milliseconds(1))) ms after produce returned (\(polls) polls)")
    }

    func message(_ id: String, fromMe: Bool, at time: Int) -> String {
        #"{"schemaVersion":1,"eventId":"E-\#(id)","deviceId":"dev-s","type":"message.created","occurredAt":\#(time),"chatId":"anna@c.us","data":{"messageId":"\#(id)","fromMe":\#(fromMe),"kind":"text","preview":"hi"}}"#
    }

    @Test("the stale-count scenario: unreadCount 0, three messages from another person through Kafka, the next query with minPosition says 3; a plain GET catches up within the freshness delay and never goes backwards")
    func staleCountScenario() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ServerProcess(["run", "--http", "127.0.0.1:0", "--data", data])
        #expect(!run.brokers.isEmpty && run.port != 0)
        try staleCountScenario(brokers: run.brokers, port: run.port, mode: "run")
        #expect(run.terminate() == 0)
    }

    @Test("/metrics and /api/v1/status of a live run: records and dead letters by reason as ingested, lag 0 once caught up, requests by route and status")
    func metricsOfALiveRun() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("run-metrics-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ServerProcess(["run", "--http", "127.0.0.1:0", "--data", data, "--partitions", "1"])
        let producer = try KafkaProducer(bootstrapServers: run.brokers)
        for index in 1...5 {
            try producer.send(topic: "wa.device-events", key: Array("dev-s".utf8), value: Array(message("MM\(index)", fromMe: false, at: index).utf8))
        }
        try producer.send(topic: "wa.device-events", key: Array("dev-s".utf8), value: Array("not json".utf8))
        try producer.send(topic: "wa.device-events", key: Array("someone-else".utf8), value: Array(message("MM9", fromMe: false, at: 9).utf8))
        try producer.flush(timeoutMilliseconds: 10_000)
        let last = try #require(producer.report.lastOffsets[0])
        #expect(try get(run.port, "/api/v1/devices/dev-s/unread?minPosition=0:\(last)&wait=20000").status == 200)
        #expect(try get(run.port, "/api/v1/devices/dev-s/unread").status == 200)

        let text = try HTTPAnswer.get(run.port, "/metrics").body
        #expect(text.contains("chatledger_ingest_records_total 7\n"))
        #expect(text.contains("chatledger_ingest_events_total 5\n"))
        #expect(text.contains(#"chatledger_dead_letters_total{reason="invalid_json"} 1"#))
        #expect(text.contains(#"chatledger_dead_letters_total{reason="key_mismatch"} 1"#))
        #expect(text.contains(#"chatledger_ingest_lag_records{partition="0"} 0"#))
        #expect(text.contains("chatledger_ingest_caught_up 1\n"))
        #expect(text.contains(#"chatledger_projection_applied_offset{partition="0"} \#(last)"#))
        #expect(text.contains(#"chatledger_http_request_duration_seconds_count{route="/api/v1/devices/{deviceId}/unread",status="200"} 2"#))
        #expect(text.contains(#"chatledger_log_bytes{topic="wa.device-events",partition="0"} "#))

        // /api/v1/status says the same: ready, partition 0 applied through the broker's end, lag 0, the counts.
        let status = try get(run.port, "/api/v1/status").body
        #expect(status["ready"] as? Bool == true)
        #expect(status["source"] as? String == "kafka")
        let partition = try #require((status["partitions"] as? [[String: Any]])?.first)
        #expect(partition["appliedOffset"] as? Int == Int(last))
        #expect(partition["endOffset"] as? Int == Int(last) + 1)
        #expect(partition["lag"] as? Int == 0)
        let counts = try #require(status["counts"] as? [String: Any])
        #expect(counts["applied"] as? Int == 5)
        #expect(counts["deadLetters"] as? Int == 2, "the invalid JSON and the key mismatch")
        #expect(run.terminate() == 0)
    }

    @Test("run with the embedded broker refuses a data directory that already holds a log")
    func refusesExistingLog() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("run-existing-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        try FileManager.default.createDirectory(atPath: data + "/log/wa.device-events/0", withIntermediateDirectories: true)
        let run = try ChatLedgerProcess.run(["run", "--http", "127.0.0.1:0", "--data", data])
        #expect(run.status == 1)
        #expect(run.standardError.contains("already holds an event log"))
    }

    @Test("the stale-count scenario with ingest and serve as separate processes: the next query with minPosition says 3; a plain GET catches up within the freshness delay; serve lists the key's device and reports the log as its source")
    func staleCountIngestAndServe() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 2)])
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: data + ".keys")
        }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try Data(#"{"keys":[{"key":"demo-key","devices":["dev-s"],"role":"reader"}]}"#.utf8).write(to: URL(fileURLWithPath: data + ".keys"))
        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "serve-scenario")
        defer { _ = ingest.terminate() }
        let serve = try ServerProcess(["serve", "--data", data, "--http", "127.0.0.1:0", "--keys", data + ".keys"])
        let port = serve.port
        #expect(port != 0)

        try staleCountScenario(brokers: cluster.bootstrapServers, port: port, mode: "ingest+serve")
        #expect(try get(port, "/api/v1/devices/dev-other/chats").status == 404, "outside the key's scope")
        let devices = try get(port, "/api/v1/devices").body["devices"] as? [[String: Any]]
        #expect(devices?.map { $0["deviceId"] as? String } == ["dev-s"])
        #expect(devices?.first?["unreadMessages"] as? Int == 6)
        // serve's source is the log: once a round has read it, its end is the applied offset + 1.
        var partitions: [[String: Any]] = []
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            partitions = try get(port, "/api/v1/status").body["partitions"] as? [[String: Any]] ?? []
        } while !partitions.contains(where: { $0["endOffset"] as? Int != nil && $0["lag"] as? Int == 0 }) && ContinuousClock.now < deadline
        #expect(partitions.contains { ($0["endOffset"] as? Int).map { $0 > 0 } == true && $0["lag"] as? Int == 0 }, "\(partitions)")
        #expect(serve.terminate() == 0)
    }
}

@Suite("Audits of a live run")
struct LiveAuditTests {
    /// One GET with the development key: status, headers and the raw body.
    func get(_ port: UInt16, _ target: String) throws -> (status: Int, head: String, body: String) {
        let answer = try HTTPAnswer.get(port, target, key: "demo-key")
        return (answer.status, answer.head, answer.body)
    }

    func header(_ head: String, _ name: String) -> String? {
        head.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    @Test("chat lists recorded while run serves live traffic replay byte for byte at their X-Ledger-Position; the auditor routes agree with export and with the live list")
    func liveResponsesReplayByteIdentical() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("live-audit-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ServerProcess(["run", "--http", "127.0.0.1:0", "--data", data, "--partitions", "4"])
        let producer = Process()
        producer.executableURL = ChatLedgerProcess.executable
        producer.arguments = ["produce", "--brokers", run.brokers, "--simulate", "--devices", "4", "--chats", "20",
                              "--count", "20000", "--rate", "4000"]
        let summary = Pipe()
        producer.standardOutput = summary
        producer.standardError = FileHandle.nullDevice
        try producer.run()

        // Record responses while events keep arriving: body, position and the request time.
        var recorded: [(device: String, body: String, position: String, now: Int64)] = []
        var seen: Set<String> = []
        let giveUp = ContinuousClock.now + .seconds(60)  // a bound, so a broken server fails instead of hanging
        while (producer.isRunning || recorded.count < 8) && ContinuousClock.now < giveUp {
            for device in (1...4).map({ "dev-\($0)" }) {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let response = try get(run.port, "/api/v1/devices/\(device)/chats")
                guard response.status == 200, let position = header(response.head, "X-Ledger-Position"),
                    seen.insert(device + "@" + position).inserted
                else { continue }
                recorded.append((device, response.body, position, now))
            }
            if recorded.count >= 60 { break }
        }
        producer.waitUntilExit()
        #expect(recorded.count >= 8)
        #expect(Set(recorded.map(\.position)).count > 4, "responses from many points of the log")

        // The auditor routes on the same server, once it has every event produced.
        let produced = try JSONSerialization.jsonObject(with: summary.fileHandleForReading.readDataToEndOfFile()) as? [String: Any]
        let lastOffsets = try #require(produced?["lastOffsets"] as? [String: Int])
        for (partition, offset) in lastOffsets {
            #expect(try get(run.port, "/api/v1/devices/dev-1/unread?minPosition=\(partition):\(offset)&wait=20000").status == 200)
        }
        let device = "dev-1"
        let export = try ChatLedgerProcess.run(["export", "--data", data, "--device", device, "--with-position"])
        #expect(export.status == 0)
        let exported = export.standardOutput.split(separator: "\n").map(String.init)
        var paged: [String] = []
        var cursor: String?
        repeat {
            let page = try get(run.port, "/api/v1/devices/\(device)/events?limit=500" + (cursor.map { "&cursor=" + $0 } ?? ""))
            #expect(page.status == 200)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any])
            let events = try #require(object["events"] as? [Any])
            paged += try events.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            cursor = object["nextCursor"] as? String
        } while cursor != nil
        let exportedObjects = try exported.map {
            String(decoding: try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: Data($0.utf8)), options: [.sortedKeys]), as: UTF8.self)
        }
        #expect(!paged.isEmpty && paged == exportedObjects, "events over HTTP, page by page, are what export prints")
        let live = try get(run.port, "/api/v1/devices/\(device)/chats")
        let asOf = try get(run.port, "/api/v1/devices/\(device)/chats?asOf=\(Int64(Date().timeIntervalSince1970 * 1000) + 60_000)")
        #expect(asOf.status == 200)
        #expect(asOf.body == live.body, "the list as of now is the live list")
        let early = try get(run.port, "/api/v1/devices/\(device)/chats?asOf=2000-01-01T00:00:00Z")
        #expect(early.body == #"{"deviceId":"dev-1","version":0,"chats":[],"nextCursor":null}"#, "before any event the list was empty")
        #expect(run.terminate() == 0)

        for response in recorded {
            let replay = try ChatLedgerProcess.run(
                ["replay", "--data", data, "--device", response.device, "--at-offset", response.position, "--now", String(response.now)])
            #expect(replay.status == 0, "\(replay.standardError)")
            #expect(replay.standardOutput == response.body + "\n", "replay at \(response.position) equals the live response for \(response.device)")
        }
        print("live audit: \(recorded.count) live responses replayed byte for byte, \(paged.count) events paged")
    }
}
