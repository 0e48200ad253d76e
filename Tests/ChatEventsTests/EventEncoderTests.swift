import ChatEvents
import Testing

@Suite("EventEncoder")
struct EventEncoderTests {
    @Test("encode then parse gives the same event, for generated traffic of every type")
    func roundTrip() throws {
        var model = TrafficModel(.init(devices: 5, chatsPerDevice: 20, seed: 7))
        for _ in 0..<5_000 {
            let event = model.next().event
            #expect(try EventParser().parse(EventEncoder.encode(event)) == event)
        }
    }

    @Test("canonical form is a fixed point: re-encoding a parsed canonical event gives the same bytes")
    func canonicalIsStable() throws {
        var model = TrafficModel(.init(seed: 11))
        for _ in 0..<2_000 {
            let bytes = EventEncoder.encode(model.next().event)
            #expect(EventEncoder.encode(try EventParser().parse(bytes)) == bytes)
        }
    }

    @Test("the envelope is written in the schema's order without whitespace")
    func envelopeOrder() {
        let event = Event(eventId: "E", deviceId: "d", occurredAt: 1, chatId: "c", payload: .chatArchived(archived: true))
        let text = String(decoding: EventEncoder.encode(event), as: UTF8.self)
        #expect(
            text == #"{"schemaVersion":1,"eventId":"E","deviceId":"d","type":"chat.archived","occurredAt":1,"chatId":"c","data":{"archived":true}}"#
        )
    }

    @Test("strings use the shortest escapes and keep other UTF-8 raw")
    func escapes() throws {
        let preview = "q\"b\\n\n\t\u{01}\u{1F}é😀/"
        let event = Event(
            eventId: "E", deviceId: "d", occurredAt: 1, chatId: "c",
            payload: .messageEdited(MessageEdited(messageId: "M", preview: preview)))
        let text = String(decoding: EventEncoder.encode(event), as: UTF8.self)
        #expect(text.contains(#""preview":"q\"b\\n\n\t\u0001\u001fé😀/""#))
        #expect(try EventParser().parse(EventEncoder.encode(event)) == event)
    }

    @Test("negative and extreme integers are written exactly")
    func integers() throws {
        for value: Int64 in [-1, 0, 9, 10, Int64.max] {
            let event = Event(eventId: "E", deviceId: "d", occurredAt: 0, chatId: "c", payload: .chatMuted(muteUntil: value))
            let parsed = try EventParser().parse(EventEncoder.encode(event))
            #expect(parsed.payload == .chatMuted(muteUntil: value))
        }
    }

    @Test("an event larger than the encoder's stack scratch buffer is written whole, escapes included")
    func largerThanScratch() throws {
        // A preview at the schema's 4096-byte limit, a third of it control characters
        // (six bytes each when written): the event outgrows the scratch buffer several times.
        let units = EventLimits.default.maxTextBytes / 3
        let preview = String(repeating: "ab\u{01}", count: units)
        let event = Event(
            eventId: "E", deviceId: "d", occurredAt: 1, chatId: "c",
            payload: .messageEdited(MessageEdited(messageId: "M", preview: preview)))
        let bytes = EventEncoder.encode(event)
        #expect(bytes.count > 4 * EventEncoder.scratchBytes)
        #expect(try EventParser().parse(bytes) == event)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(String(repeating: #"ab\u0001"#, count: units)))
    }
}
