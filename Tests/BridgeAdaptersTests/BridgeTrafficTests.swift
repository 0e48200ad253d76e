import BridgeAdapters
import ChatEvents
import Testing

/// The simulated `baileys` and `wwebjs` bridges: every record they write adapts to exactly
/// what it says it means (the state the end-to-end tests expect rests on this).
@Suite("Simulated Baileys and whatsapp-web.js traffic")
struct BridgeTrafficTests {
    @Test("each of 4000 records adapts to its meaning: same types, chats (a LID counts as the phone chat it was aliased to, as the fold merges them), times and payloads", arguments: BridgeTraffic.formats)
    func recordsMeanWhatTheySay(format: String) throws {
        var traffic = try #require(BridgeTraffic(format: format, .init(devices: 3, chatsPerDevice: 25, seed: 5)))
        let adapter = try #require(BridgeFormats.adapter(named: format))
        let tape = JSONTape()
        var kinds = Set<String>()
        var phoneOfLID: [String: String] = [:]
        for offset in 0..<4000 {
            let record = traffic.next()
            #expect(record.topic == "wa." + format)
            #expect(record.key == Array(record.deviceId.utf8))
            let result = adapter.adapt(BridgeRecord(topic: record.topic, partition: 0, offset: Int64(offset), timestamp: record.timestamp, key: record.key, value: record.value), tape: tape)
            #expect(!result.isDeadLetter, "\(result.outcome): \(String(decoding: record.value, as: UTF8.self))")
            let adapted = result.events.map(\.event)
            kinds.insert(result.eventName ?? "?")
            guard adapted.count == record.meaning.count else {
                Issue.record("\(adapted.map(\.type)) vs meaning \(record.meaning.map(\.type)): \(String(decoding: record.value, as: UTF8.self))")
                continue
            }
            for (event, meaning) in zip(result.events, record.meaning) {
                var got = event.event
                if case .contactAliased(let aliased) = got.payload { phoneOfLID[aliased.alias] = got.chatId }
                if let lid = got.chatId, let phone = phoneOfLID[lid] { got.chatId = phone }
                #expect(got.type == meaning.type && got.chatId == meaning.chatId && got.occurredAt == meaning.occurredAt
                    && got.payload == meaning.payload && got.deviceId == meaning.deviceId,
                    "\(got) vs \(meaning): \(String(decoding: record.value, as: UTF8.self))")
            }
        }
        #expect(kinds.count >= 9, "the traffic uses most of the format's events: \(kinds.sorted())")
    }
}
