import ChatEvents
@testable import ChatProjection
import Testing

@Suite("Compact chat and message ids")
struct CompactTextTests {
    @Test("chat ids round-trip through ChatKey, packed or not", arguments: [
        "491701234567@c.us", "0049170@c.us", "120363041234567890@g.us", "1@s.whatsapp.net", "9999999999999999999@lid",
        "status@broadcast", "12-34@g.us", "491701234567@c.us.evil", "@c.us", "", "ünïcode@c.us", "12345678901234567890@c.us",
    ])
    func chatKeyRoundTrip(text: String) {
        #expect(ChatKey(text).description == text)
        #expect(ChatKey(text) == ChatKey(text))
    }

    @Test("different chat ids never compare equal", arguments: [("1@c.us", "01@c.us"), ("1@c.us", "1@g.us"), ("12@c.us", "21@c.us")])
    func chatKeysDiffer(a: String, b: String) {
        #expect(ChatKey(a) != ChatKey(b))
    }

    @Test("message ids round-trip through MessageID, packed or not", arguments: [
        "3EB0C767D097B7C7C030", "0", "00FF", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "3eb0lower", "true_49@c.us_3EB0", "",
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
    ])
    func messageIdRoundTrip(text: String) {
        #expect(MessageID(text).description == text)
        #expect(MessageID(text) == text)
    }

    @Test("ids taken from a parsed event (inline or, past 31 bytes, a String) pack and hash as their text does", arguments: [
        "491701234567@c.us", "status@broadcast", "3EB0C767D097B7C7C030", "01KDVDNBT2V2C6C08GDEADG8PE", "ünïcode@c.us",
        String(repeating: "1", count: 31), String(repeating: "1", count: 32) + "@g.us", String(repeating: "F", count: 40),
    ])
    func inlineIdsMatchText(text: String) {
        let parsed = InlineString(text)
        #expect(ChatKey(parsed) == ChatKey(text))
        #expect(MessageID(parsed) == MessageID(text))
        #expect(parsed.withBytes(stableHash) == stableHash(text))
    }

    @Test("the chat table finds, replaces and removes chats by id, moving the last one into a freed slot")
    func chatTable() {
        var table = ChatTable()
        for index in 0..<10 {
            var chat = ChatState()
            chat.unreadCount = Int32(index)
            table["\(index)@c.us"] = chat
        }
        table["3@c.us"] = nil
        table["0@c.us"] = nil
        #expect(table.count == 8)
        #expect(table["3@c.us"] == nil)
        #expect(table["9@c.us"]?.unreadCount == 9)
        #expect(Set(table.map(\.id)) == Set([1, 2, 4, 5, 6, 7, 8, 9].map { "\($0)@c.us" }))
        for (id, chat) in table { #expect(id == "\(chat.unreadCount)@c.us") }
        var reordered = ChatTable()
        for (id, chat) in table.reversed() { reordered[id] = chat }
        #expect(reordered == table, "equality ignores order")
    }

    @Test("random inserts, replacements and removals of packed and text ids always agree with a Dictionary, through growth and backward-shift deletion")
    func chatTableAgainstDictionary() {
        var table = ChatTable()
        var model: [String: ChatState] = [:]
        var random = SeededGenerator(seed: 4)
        // Few distinct ids, so removals hit long probe runs and ids come back after removal.
        let ids = (0..<300).map { index in index % 3 == 0 ? "group-\(index)" : "49170\(index)@\(index % 2 == 0 ? "c" : "g").us" }
        for step in 0..<20_000 {
            let id = ids[Int(random.next() % UInt64(ids.count))]
            if random.next() % 3 == 0 {
                table[id] = nil
                model[id] = nil
            } else {
                var chat = ChatState()
                chat.unreadCount = Int32(step)
                table[id] = chat
                model[id] = chat
            }
            if step % 1_000 == 999 {
                #expect(table.count == model.count)
                for id in ids { #expect(table[id] == model[id], "\(id) after step \(step)") }
                #expect(Dictionary(uniqueKeysWithValues: table.map { ($0.id, $0.chat) }) == model)
            }
        }
    }
}
