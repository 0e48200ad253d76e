#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// `chatledger run` or `serve` as a child process, and the addresses it prints first.
final class ServerProcess {
    let process = Process()
    private(set) var brokers = ""
    private(set) var port: UInt16 = 0

    /// Starts it and reads its stdout up to the `url=` line (`bootstrap=` before it, if any).
    init(_ arguments: [String]) throws {
        process.executableURL = ChatLedgerProcess.executable
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while port == 0, let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty {
            guard byte == Data("\n".utf8) else {
                line.append(byte)
                continue
            }
            let text = String(decoding: line, as: UTF8.self)
            if text.hasPrefix("bootstrap=") { brokers = String(text.dropFirst(10)) }
            if text.hasPrefix("url=") { port = UInt16(text.split(separator: ":").last ?? "") ?? 0 }
            line = Data()
        }
    }

    /// SIGTERM and wait; the exit status.
    func terminate() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    deinit { _ = terminate() }
}

@Suite("chatledger run, as a real process")
struct RunCommandTests {
    /// One GET with the development key; the response's status and JSON body.
    func get(_ port: UInt16, _ target: String) throws -> (status: Int, body: [String: Any]) {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET \(target) HTTP/1.1\r\nHost: x\r\nx-api-key: demo-key\r\nConnection: close\r\n\r\n")
        let response = client.readToEnd()
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? -1
        guard let start = response.range(of: "\r\n\r\n") else { return (status, [:]) }
        let body = (try? JSONSerialization.jsonObject(with: Data(response[start.upperBound...].utf8))) as? [String: Any] ?? [:]
        return (status, body)
    }

    func unreadCount(_ body: [String: Any]) -> Int? {
        ((body["chats"] as? [[String: Any]])?.first?["unreadCount"]) as? Int
    }

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

    /// SPEC §4's scenario: a chat shows unreadCount 0; three messages from another person
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

    @Test("run with the embedded broker refuses a data directory that already holds a log")
    func refusesExistingLog() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("run-existing-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        try FileManager.default.createDirectory(atPath: data + "/log/wa.device-events/0", withIntermediateDirectories: true)
        let run = try ChatLedgerProcess.run(["run", "--http", "127.0.0.1:0", "--data", data])
        #expect(run.status == 1)
        #expect(run.standardError.contains("already holds an event log"))
    }

    @Test("the stale-count scenario with ingest and serve as separate processes: the next query with minPosition says 3; a plain GET catches up within the freshness delay")
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
        #expect(serve.terminate() == 0)
    }
}
