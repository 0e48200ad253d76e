import ChatEvents
import EventLog
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// `chatledger erase` against the mock cluster, applied by a `chatledger ingest` process.
@Suite("chatledger erase")
struct EraseCommandTests {
    @Test("erase publishes the erasure on the canonical topic; ingest applies it: verify exit 0 and reports it, no id or preview of the device on disk, export shows redactions, replay shows no chat")
    func eraseThroughIngest() throws {
        let topic = "wa.device-events"
        let cluster = try MockCluster(topics: [(topic, 2)])
        let data = IngestTesting.temporaryData("erase")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        for index in 0..<1_500 {
            for device in ["dev-gone", "dev-stays"] where device == "dev-gone" || index % 3 == 0 {
                let event = Event(
                    eventId: "\(device)-\(index)", deviceId: device, occurredAt: Int64(index), chatId: "49155512\(index % 9)@c.us",
                    payload: .messageCreated(MessageCreated(messageId: "\(device)-msg-\(index)", fromMe: false, kind: .text, preview: "\(device)-preview \(index)")))
                try producer.send(topic: topic, key: Array(device.utf8), value: EventEncoder.encode(event))
            }
        }
        try producer.flush(timeoutMilliseconds: 30_000)

        let usage = try ChatLedgerProcess.run(["erase", "--brokers", cluster.bootstrapServers, "--device", "dev-gone", "--chat", "a", "--contact", "b", "--reason", "r"])
        #expect(usage.status == 64, "a chat and a contact at once is a usage error")
        let erase = try ChatLedgerProcess.run(["erase", "--brokers", cluster.bootstrapServers, "--device", "dev-gone", "--reason", "ticket 7"])
        #expect(erase.status == 0, "\(erase.standardError)")

        let consumer = try PlainConsumer(bootstrapServers: cluster.bootstrapServers)
        let lastOffsets = Dictionary(uniqueKeysWithValues: try (Int32(0)..<2).map { ($0, try consumer.watermarks(topic: topic, partition: $0).high - 1) })
        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "erase")
        try IngestTesting.waitForLog(data: data, lastOffsets: lastOffsets)
        #expect(ingest.terminate() == 0)
        #expect(ingest.standardError.contains("erasure applied"))

        let verify = try ChatLedgerProcess.run(["verify", "--data", data])
        #expect(verify.status == 0, "\(verify.standardOutput)")
        #expect(verify.standardOutput.contains("(device erasure, device sha256:") && verify.standardOutput.contains("1500 records redacted"), "\(verify.standardOutput)")

        // "dev-gone" is a prefix of the device's previews and message ids too.
        try WriteAPITests.expectNowhere("dev-gone", under: data, or: [])

        let export = try ChatLedgerProcess.run(["export", "--data", data, "--device", "dev-gone"])
        let lines = export.standardOutput.split(separator: "\n")
        #expect(lines.filter { $0.contains(#""redacted":{"erasureOffset":"#) }.count == 1_500, "\(lines.prefix(2))")
        #expect(lines.count == 1_501 && lines.last?.contains(#""type":"ledger.erased""#) == true, "the erasure itself, by digest: \(lines.suffix(1))")
        let kept = try ChatLedgerProcess.run(["export", "--data", data, "--device", "dev-stays"])
        #expect(kept.standardOutput.split(separator: "\n").count == 500)

        let replay = try ChatLedgerProcess.run(["replay", "--data", data, "--device", "dev-gone"])
        #expect(replay.status == 0 && replay.standardOutput.contains(#""chats":[]"#), "\(replay.standardOutput)")
    }
}
