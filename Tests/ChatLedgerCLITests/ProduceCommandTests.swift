import ChatEvents
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

@Suite("chatledger produce, as a real process against the mock cluster")
struct ProduceCommandTests {
    struct Summary: Decodable {
        var sent: Int
        var duplicates: Int
        var delivered: Int
        var failed: Int
        var invalidLines: Int
        var lastOffsets: [String: Int64]
    }

    @Test("produce --simulate: every message is consumed back, validates, is keyed by device, and counts match the delivery reports")
    func simulateRoundTrip() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 4)])
        let run = try ChatLedgerProcess.run([
            "produce", "--brokers", cluster.bootstrapServers, "--simulate", "--count", "3000", "--devices", "20",
            "--chats", "30", "--seed", "9",
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let summary = try JSONDecoder().decode(Summary.self, from: Data(run.standardOutput.utf8))
        #expect(summary.sent == 3000)
        #expect(summary.delivered == 3000)
        #expect(summary.failed == 0)

        let messages = try PlainConsumer(bootstrapServers: cluster.bootstrapServers)
            .readAll(topic: "wa.device-events", partitions: 4)
        #expect(messages.count == summary.delivered)
        let parser = EventParser()
        var consumedByDevice: [String: [Event]] = [:]
        for message in messages.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let event = try parser.parse(message.value, kafkaKey: message.key)  // validates, and key == deviceId
            consumedByDevice[event.deviceId, default: []].append(event)
        }
        for (partition, lastOffset) in summary.lastOffsets {
            #expect(messages.filter { $0.partition == Int32(partition) }.map(\.offset).max() == lastOffset)
        }
        // The same seed regenerates the same traffic: each device's events arrive complete and in order.
        var model = TrafficModel(.init(devices: 20, chatsPerDevice: 30, seed: 9))
        var expectedByDevice: [String: [Event]] = [:]
        var duplicates = 0
        for _ in 0..<3000 {
            let generated = model.next()
            if generated.isDuplicate { duplicates += 1 }
            expectedByDevice[generated.event.deviceId, default: []].append(generated.event)
        }
        #expect(consumedByDevice == expectedByDevice)
        #expect(summary.duplicates == duplicates)
    }

    @Test("produce --file sends every line as it is, like a bridge (invalid ones reported by line number, keyed by their deviceId if any, for ingest to dead-letter); --strict sends only valid lines and exits 1")
    func fileWithInvalidLines() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 2)])
        let valid = #"{"schemaVersion":1,"eventId":"E1","deviceId":"dev-1","type":"chat.read","occurredAt":1,"chatId":"c@c.us"}"#
        let spaced = #"{ "schemaVersion": 1, "eventId": "E2", "deviceId": "dev-2", "type": "chat.read", "occurredAt": 2, "chatId": "c@c.us" }"#
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("produce-\(UUID().uuidString).ndjson")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data([valid, "not json", "", spaced, #"{"schemaVersion":2}"#].joined(separator: "\n").utf8).write(to: file)

        let strict = try ChatLedgerProcess.run(["produce", "--brokers", cluster.bootstrapServers, "--file", file.path, "--strict"])
        #expect(strict.status == 1, "with --strict, invalid lines make the exit status non-zero")
        #expect(strict.standardError.contains("line=2"))
        #expect(strict.standardError.contains("line=5"))
        #expect(strict.standardError.contains("reason=invalid_json"))
        let strictSummary = try JSONDecoder().decode(Summary.self, from: Data(strict.standardOutput.utf8))
        #expect(strictSummary.invalidLines == 2)
        #expect(strictSummary.delivered == 2)
        let validOnly = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "wa.device-events", partitions: 2)
        #expect(Set(validOnly.map { String(decoding: $0.value, as: UTF8.self) }) == [valid, spaced], "sent byte for byte")

        let run = try ChatLedgerProcess.run(["produce", "--brokers", cluster.bootstrapServers, "--file", file.path])
        #expect(run.status == 0, "every line was delivered")
        #expect(run.standardError.contains("line=2") && run.standardError.contains("line=5"), "invalid lines are still reported")
        let summary = try JSONDecoder().decode(Summary.self, from: Data(run.standardOutput.utf8))
        #expect(summary.invalidLines == 2)
        #expect(summary.delivered == 4)
        let all = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "wa.device-events", partitions: 2)
        let sent = all.map { (String(decoding: $0.value, as: UTF8.self), $0.key) }
        #expect(sent.filter { $0.0 == "not json" }.map(\.1) == [[]], "a line that names no device goes without a key")
        #expect(sent.filter { $0.0 == valid }.count == 2)
    }

    @Test("kcat, a real Kafka client, reads what produce published", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kcat")))
    func kcatReadsBack() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 2)])
        let run = try ChatLedgerProcess.run(["produce", "--brokers", cluster.bootstrapServers, "--simulate", "--count", "50"])
        #expect(run.status == 0)
        let kcat = Process()
        kcat.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        kcat.arguments = ["-b", cluster.bootstrapServers, "-C", "-t", "wa.device-events", "-e", "-q", "-f", "%k\t%s\n"]
        let output = Pipe()
        kcat.standardOutput = output
        kcat.standardError = FileHandle.nullDevice
        try kcat.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        kcat.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 50)
        for line in lines {
            let parts = line.split(separator: "\t", maxSplits: 1)
            let event = try EventParser().parse(Array(parts[1].utf8))
            #expect(event.deviceId == String(parts[0]))
        }
    }
}
