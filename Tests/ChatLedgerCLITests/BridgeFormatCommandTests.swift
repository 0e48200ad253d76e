import BridgeAdapters
import ChatEvents
import ChatLedgerCLI
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// The `baileys` and `wwebjs` formats end to end, as real processes on the mock cluster:
/// the checks the Evolution stage passes (`AdaptScenarios`), for each.
@Suite("chatledger adapt: Baileys and whatsapp-web.js events through the stage, as real processes", .serialized)
struct BridgeFormatCommandTests {
    typealias T = AdaptTesting

    @Test("three devices on one topic: produce --simulate --format F → adapt → ingest; every chat equals the state the records mean, each event names its record, verify holds", arguments: BridgeTraffic.formats)
    func adaptThenIngest(format: String) throws {
        let traffic = try #require(BridgeTraffic(format: format, .init(devices: 3, chatsPerDevice: 12, seed: 77)))
        let run = try AdaptScenarios.adaptThenIngest(traffic, devices: 3, chats: 12, seed: 77, count: 2_500)
        defer { try? FileManager.default.removeItem(atPath: run.data) }
        #expect(run.metrics.contains(#"chatledger_adapt_lag_records{format="\#(format)",topic="wa.\#(format)",partition="0"} 0"#))
        #expect(run.export.allSatisfy { $0.contains(#""topic":"wa.\#(format)""#) })
    }

    /// A valid record of `format` creating message `id`.
    static func valid(_ format: String, _ id: String) -> [UInt8] {
        if format == BaileysAdapter.formatName {
            return Array(#"{"event":"messages.upsert","deviceId":"hostile","data":{"type":"notify","messages":[{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"\#(id)"},"messageTimestamp":1767000000,"message":{"conversation":"fine"}}]}}"#.utf8)
        }
        return Array(#"{"event":"message_create","deviceId":"hostile","args":[{"id":{"fromMe":false,"remote":"491701234567@c.us","id":"\#(id)"},"type":"chat","body":"fine","timestamp":1767000000}]}"#.utf8)
    }

    /// Records no adapter of `format` can use, with the reason each is a dead letter (nil: skipped).
    static func hostile(_ format: String) -> [(value: [UInt8]?, reason: String?)] {
        let baileys = format == BaileysAdapter.formatName
        let event = baileys ? "messages.upsert" : "message_create"
        let body = baileys ? "data" : "args"
        let longId = String(repeating: "9", count: 300)
        let wrongType =
            baileys
            ? #"{"type":"notify","messages":[{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":"no","id":"X"}}]}"#
            : #"[{"id":{"fromMe":"no","remote":"491701234567@c.us","id":"X"},"type":"chat"}]"#
        let tooLong =
            baileys
            ? #"{"type":"notify","messages":[{"key":{"remoteJid":"491701234567@s.whatsapp.net","id":"\#(longId)"},"message":{"conversation":"x"}}]}"#
            : #"[{"id":{"fromMe":false,"remote":"491701234567@c.us","id":"\#(longId)"},"type":"chat"}]"#
        let big =
            baileys
            ? #"{"type":"notify","messages":[{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"BIG"},"messageTimestamp":1767000000,"message":{"imageMessage":{"caption":"big","jpegThumbnail":"\#(String(repeating: "A", count: 1_500_000))"}}}]}"#
            : #"[{"id":{"fromMe":false,"remote":"491701234567@c.us","id":"BIG"},"type":"image","hasMedia":true,"body":"big","timestamp":1767000000,"_data":{"body":"\#(String(repeating: "A", count: 1_500_000))"}}]"#
        func record(_ event: String, _ payload: String, device: String = #""hostile""#) -> [UInt8] {
            Array(#"{"event":"\#(event)","deviceId":\#(device),"\#(body)":\#(payload)}"#.utf8)
        }
        return [
            (Array("not json".utf8), "invalid_json"),
            (Array(#"{"event":"\#(event)","deviceId":"hostile","\#(body)":{"key":{"remoteJid":"#.utf8), "invalid_json"),
            (Array(#"[{"event":"\#(event)"}]"#.utf8), "wrong_type"),
            (Array(#"{"event":"\#(event)","\#(body)":[]}"#.utf8), "missing_field"),
            (record(event, "[]", device: "7"), "wrong_type"),
            (record(event, wrongType), "wrong_type"),
            (record(event, tooLong), "invalid_value"),
            (Array((String(repeating: "[", count: 200) + String(repeating: "]", count: 200)).utf8), "too_deep"),
            (nil, "invalid_json"),
            ([], "invalid_json"),
            (Array(#"{"event":"\#(event)","deviceId":"hostile","\#(body)":""#.utf8) + [UInt8](repeating: 0x41, count: 2_000_000), "invalid_json"),
            (record("labels.rainbow", "{}"), nil),  // unknown: skipped
            (record(event, big), nil),  // a large media record is a message
        ]
    }

    @Test("hostile records on the bridge topic: each a dead letter with its reason (counted, coordinates, logged), unknown events skipped, the partition keeps moving", arguments: BridgeTraffic.formats)
    func hostileRecords(format: String) throws {
        let topic = "wa.\(format).hostile"
        let cluster = try T.cluster(topics: [topic])
        let hostile = Self.hostile(format)
        let run = try AdaptScenarios.hostileRecords(
            cluster: cluster, format: format, topic: topic, pattern: "^wa\\.\(format)\\.hostile$", key: "hostile", valid: { Self.valid(format, $0) },
            hostile: hostile)
        #expect(run.canonical.contains { $0.contains(#""messageId":"BIG""#) && $0.contains(#""hasMedia":true"#) }, "the size limit applies to the event made")
        #expect(run.metrics.contains(#"chatledger_adapt_skipped_total{format="\#(format)",reason="unknown_event"} 1"#))
    }

    @Test("adapt SIGKILLed 20 times while a bridge's records keep arriving: the final state equals the reference, repeated events ignored", arguments: BridgeTraffic.formats)
    func crashWhileRecordsArrive(format: String) throws {
        let traffic = try #require(BridgeTraffic(format: format, .init(devices: 3, chatsPerDevice: 10, seed: 5)))
        try AdaptScenarios.crashWhileRecordsArrive(traffic, count: 1_500, latestKill: 1_500_000)
    }
}

extension BridgeFormatCommandTests {
    @Test("run --demo --demo-format F: simulated bridge records on the embedded broker, through the stage into the API (dev-1 gets chats; the stage counts the records)", arguments: BridgeTraffic.formats)
    func demo(format: String) throws {
        let data = IngestTesting.temporaryData("demo-\(format)")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ServerProcess(["run", "--demo", "--demo-format", format, "--http", "127.0.0.1:0", "--data", data])
        func get(_ target: String) throws -> String { try HTTPAnswer.get(run.port, target, key: "demo-key").body }
        try T.waitUntil("dev-1 has chats from the \(format) demo", seconds: 60) {
            try get("/api/v1/devices/dev-1/chats").contains(#""id":"#)
        }
        #expect(try get("/metrics").contains(#"chatledger_adapt_records_total{format="\#(format)"}"#))
    }
}
