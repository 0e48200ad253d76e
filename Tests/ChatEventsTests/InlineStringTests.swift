@testable import ChatEvents
import Testing

@Suite("InlineString, the parser's allocation-free ids")
struct InlineStringTests {
    /// Every length around the 31-byte inline limit, ASCII and multi-byte.
    static let texts: [String] = (0...40).map { String(repeating: "a", count: $0) }
        + ["ü", String(repeating: "ü", count: 15), String(repeating: "ü", count: 16), "01KDVDNBT2V2C6C08GDEADG8PE", "491701234567@c.us"]

    @Test("text of every length round-trips, from a String and from parsed bytes, to equal values with equal hashes", arguments: texts)
    func roundTrip(text: String) {
        let fromString = InlineString(text)
        let fromBytes = Array(text.utf8).withUnsafeBufferPointer { InlineString(validatedUTF8: $0) }
        #expect(fromString.string == text)
        #expect(fromBytes.string == text)
        #expect(fromString == fromBytes)
        #expect(fromString.hashValue == fromBytes.hashValue)
        // Inline exactly when it fits; the bytes given out are the text's.
        let inline = fromString.inlineUTF8
        #expect((inline != nil) == (text.utf8.count <= InlineString.inlineCapacity))
        if var inline {
            let bytes = withUnsafeBytes(of: &inline.words) { Array($0.prefix(inline.count)) }
            #expect(bytes == Array(text.utf8))
        }
    }

    @Test("the empty text made directly equals the empty text made from a String")
    func emptyText() {
        #expect(InlineString() == InlineString(""))
        #expect(InlineString().string == "")
    }

    @Test("texts that differ in one byte or only in length are different values")
    func distinctTexts() {
        let texts = Self.texts + ["b", "ab", "a\u{0}", String(repeating: "a", count: 30) + "b"]
        for (i, a) in texts.enumerated() {
            for b in texts[(i + 1)...] where a != b {
                #expect(InlineString(a) != InlineString(b), "\(a.debugDescription) vs \(b.debugDescription)")
            }
        }
    }

    @Test("an event's ids read back as written through the public String properties, long or short")
    func eventProperties() {
        let long = String(repeating: "9", count: 40) + "@g.us"
        var event = Event(
            eventId: "E", deviceId: "dev-1", occurredAt: 1, chatId: long,
            payload: .messageCreated(MessageCreated(messageId: long, fromMe: false, kind: .text, preview: "", senderId: "s")))
        #expect(event.chatId == long)
        event.chatId = nil
        #expect(event.chatId == nil)
        event.eventId = long
        #expect(event.eventId == long)
        guard case .messageCreated(var message) = event.payload else { return }
        #expect(message.messageId == long)
        #expect(message.senderId == "s")
        message.senderId = nil
        #expect(message.senderId == nil)
    }
}
