import ChatEvents
import Foundation
import Testing

@Suite("EventParser")
struct EventParserTests {
    let parser = EventParser()

    static let incoming = #"""
        {"schemaVersion":1,"eventId":"E1","deviceId":"dev-1","type":"message.created","occurredAt":5,
        "chatId":"c@c.us","data":{"messageId":"M1","fromMe":false,"kind":"text","preview":"hi"}}
        """#

    func parse(_ text: String, key: String? = nil) throws(EventValidationError) -> Event {
        try parser.parse(Array(text.utf8), kafkaKey: key.map { Array($0.utf8) })
    }

    func rejection(_ text: String, key: String? = nil) -> EventValidationError? {
        do {
            _ = try parse(text, key: key)
            return nil
        } catch {
            return error
        }
    }

    @Test("a plain incoming message parses into its typed fields")
    func parsesTypedFields() throws {
        let event = try parse(Self.incoming)
        #expect(event.eventId == "E1")
        #expect(event.deviceId == "dev-1")
        #expect(event.occurredAt == 5)
        #expect(event.chatId == "c@c.us")
        #expect(event.payload == .messageCreated(MessageCreated(messageId: "M1", fromMe: false, kind: .text, preview: "hi")))
    }

    @Test("a chat.snapshot as the API renders a chat: name null is no name, a last message's ack null is none; other optional fields null stay wrong types")
    func snapshotNullsAsRendered() throws {
        let snapshot = #"{"schemaVersion":1,"eventId":"S1","deviceId":"dev-1","type":"chat.snapshot","occurredAt":5,"chatId":"c@c.us","data":{"name":null,"isGroup":false,"unreadCount":1,"markedUnread":false,"archived":false,"pinned":false,"muteUntil":0,"timestamp":4,"lastMessage":{"id":"M1","fromMe":false,"kind":"text","preview":"hi","timestamp":4,"ack":null,"revoked":false}}}"#
        let event = try parse(snapshot)
        guard case .chatSnapshot(let parsed) = event.payload else { throw Unexpected() }
        #expect(parsed.name == "" && parsed.lastMessage?.ack == nil && parsed.unreadCount == 1)
        let senderNull = #"{"schemaVersion":1,"eventId":"E1","deviceId":"dev-1","type":"message.created","occurredAt":5,"chatId":"c@c.us","data":{"messageId":"M1","fromMe":false,"kind":"text","preview":"hi","senderId":null}}"#
        #expect(rejection(senderNull)?.code == .wrongType)
    }

    struct Unexpected: Error {}

    @Test("strings are scanned eight bytes at a time: a quote, escape, control character or UTF-8 byte is seen at every offset")
    func specialBytesAtEveryOffset() throws {
        func value(preview: [UInt8]) -> [UInt8] {
            Array(#"{"schemaVersion":1,"eventId":"E1","deviceId":"dev-1","type":"message.created","occurredAt":5,"chatId":"c@c.us","data":{"messageId":"M1","fromMe":false,"kind":"text","preview":""#.utf8)
                + preview + Array(#""}}"#.utf8)
        }
        func preview(_ bytes: [UInt8]) throws(EventValidationError) -> String? {
            guard case .messageCreated(let message) = try parser.parse(value(preview: bytes)).payload else { return nil }
            return message.preview
        }
        // Offsets 0...23 put the byte in each lane of three eight-byte words, with a tail.
        for offset in 0..<24 {
            let lead = [UInt8](repeating: UInt8(ascii: "a"), count: offset)
            let tail = Array("tail of the preview".utf8)
            #expect(try preview(lead) == String(repeating: "a", count: offset), "closing quote at \(offset)")
            #expect(try preview(lead + Array(#"\"q"#.utf8) + tail) == String(repeating: "a", count: offset) + "\"qtail of the preview")
            #expect(try preview(lead + Array("é€😀".utf8) + tail) == String(repeating: "a", count: offset) + "é€😀tail of the preview")
            #expect(throws: EventValidationError.self, "control character at \(offset)") { try preview(lead + [0x01] + tail) }
            #expect(throws: EventValidationError.self, "control character 0x1F at \(offset)") { try preview(lead + [0x1F] + tail) }
            #expect(try preview(lead + [0x7F] + tail) == String(repeating: "a", count: offset) + "\u{7F}tail of the preview")
            let invalid = Result { () throws(EventValidationError) in try preview(lead + [0xFF] + tail) }
            #expect(throws: EventValidationError.self) { try invalid.get() }
            if case .failure(let error) = invalid { #expect(error.code == .invalidUTF8, "0xFF at \(offset)") }
        }
    }

    @Test("after a UTF-8 sequence the scan goes on eight bytes at a time and still sees a quote, escape or control character at every offset")
    func specialBytesAfterUTF8() throws {
        func preview(_ bytes: [UInt8]) throws(EventValidationError) -> String? {
            let value = Array(#"{"schemaVersion":1,"eventId":"E1","deviceId":"dev-1","type":"message.created","occurredAt":5,"chatId":"c@c.us","data":{"messageId":"M1","fromMe":false,"kind":"text","preview":""#.utf8)
                + bytes + Array(#""}}"#.utf8)
            guard case .messageCreated(let message) = try parser.parse(value).payload else { return nil }
            return message.preview
        }
        for before in 0..<9 {
            let lead = [UInt8](repeating: UInt8(ascii: "a"), count: before) + Array("é".utf8)
            for offset in 0..<17 {
                let gap = [UInt8](repeating: UInt8(ascii: "b"), count: offset)
                let text = String(repeating: "a", count: before) + "é" + String(repeating: "b", count: offset)
                #expect(try preview(lead + gap) == text)
                #expect(try preview(lead + gap + Array(#"\n!"#.utf8)) == text + "\n!")
                #expect(throws: EventValidationError.self, "control character \(offset) bytes after é") { try preview(lead + gap + [0x1F, 0x41]) }
                #expect(try preview(lead + gap + Array("😀z".utf8)) == text + "😀z")
            }
        }
    }

    @Test("a key differing from a known one in any single byte, or only in the middle of a long key, is an unknown field")
    func keysMatchExactly() throws {
        let valid = #"{"schemaVersion":1,"eventId":"E1","deviceId":"dev-1","type":"account.settings","occurredAt":5,"data":{"keepChatsArchived":true}}"#
        #expect(try parser.parse(Array(valid.utf8)).payload == .accountSettings(keepChatsArchived: true))
        for key in ["schemaVersion", "eventId", "deviceId", "type", "occurredAt", "data", "keepChatsArchived"] {
            for index in key.utf8.indices {
                var changed = Array(key.utf8)
                let position = key.utf8.distance(from: key.utf8.startIndex, to: index)
                changed[position] = changed[position] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
                let mutated = valid.replacingOccurrences(of: "\"\(key)\"", with: "\"" + String(decoding: changed, as: UTF8.self) + "\"")
                let error = rejection(mutated)
                #expect(error?.code == .unknownField, "\(key) with byte \(position) changed")
            }
        }
        // Same length, same first and last eight bytes as `keepChatsArchived`.
        #expect(rejection(valid.replacingOccurrences(of: "keepChatsArchived", with: "keepChatXArchived"))?.code == .unknownField)
    }

    @Test("a key matched in place as the expected next one is still checked: a repeat is a duplicate, a longer name is unknown, a cut-off name is invalid JSON")
    func expectedKeysAreStillChecked() throws {
        // deviceId and schemaVersion come out of order (scanned); then eventId and deviceId
        // are each the expected next key, so deviceId's repeat is matched in place.
        let repeated = #"{"deviceId":"d","schemaVersion":1,"eventId":"E","deviceId":"d","type":"chat.cleared","occurredAt":1,"chatId":"c"}"#
        let duplicate = rejection(repeated)
        #expect(duplicate?.code == .duplicateKey)
        #expect(duplicate?.message.contains("deviceId") == true)
        let longer = Self.incoming.replacingOccurrences(of: #""eventId""#, with: #""eventId2""#)
        #expect(rejection(longer)?.code == .unknownField)
        for cut in [#"{"schemaVersion":1,"eventId"#, #"{"schemaVersion":1,"eventId""#, #"{"schemaVersion":1,"eventId":"#] {
            #expect(rejection(cut)?.code == .invalidJSON, "\(cut)")
        }
        // A key that is only a prefix of the expected one is scanned and found unknown.
        #expect(rejection(Self.incoming.replacingOccurrences(of: #""eventId""#, with: #""event""#))?.code == .unknownField)
    }

    @Test("the Kafka key must equal the deviceId")
    func kafkaKeyMustMatch() throws {
        #expect(try parse(Self.incoming, key: "dev-1").deviceId == "dev-1")
        let error = rejection(Self.incoming, key: "dev-2")
        #expect(error?.code == .keyMismatch)
        #expect(error?.path == "deviceId")
    }

    @Test("data before type parses to the same event as type before data")
    func dataBeforeTypeIsEquivalent() throws {
        let dataFirst = #"""
            {"data":{"messageId":"M1","fromMe":false,"kind":"text","preview":"hi"},"chatId":"c@c.us",
            "occurredAt":5,"type":"message.created","deviceId":"dev-1","eventId":"E1","schemaVersion":1}
            """#
        #expect(try parse(dataFirst) == parse(Self.incoming))
    }

    @Test("an error inside data that came before type still names the data field")
    func deferredDataErrorsHavePaths() {
        let error = rejection(
            #"{"data":{"messageId":"M1","fromMe":"no","kind":"text","preview":""},"type":"message.created","#
                + #""schemaVersion":1,"eventId":"E","deviceId":"d","occurredAt":1,"chatId":"c"}"#)
        #expect(error?.code == .wrongType)
        #expect(error?.path == "data.fromMe")
    }

    @Test("escaped keys match the schema's keys")
    func escapedKeysMatch() throws {
        let escaped = Self.incoming.replacingOccurrences(of: #""eventId""#, with: #""event\u0049d""#)
        #expect(try parse(escaped).eventId == "E1")
    }

    @Test("whitespace of every JSON kind is allowed between tokens")
    func whitespaceIsAllowed() throws {
        let spaced = Self.incoming.replacingOccurrences(of: ",", with: " ,\t\r\n ")
            .replacingOccurrences(of: ":", with: "\n:  ")
        #expect(try parse(spaced) == parse(Self.incoming))
    }

    @Test("an unknown type with a valid envelope is accepted as unknown, with or without data")
    func unknownTypeIsAccepted() throws {
        let withData = try parse(
            #"{"schemaVersion":1,"eventId":"E","deviceId":"d","type":"call.offer","occurredAt":1,"data":{"a":[1,{"b":null}],"c":-1.5e3}}"#)
        #expect(withData.payload == .unknown(type: "call.offer"))
        #expect(withData.chatId == nil)
        let withoutData = try parse(#"{"schemaVersion":1,"eventId":"E","deviceId":"d","type":"x.y","occurredAt":1}"#)
        #expect(withoutData.payload == .unknown(type: "x.y"))
    }

    @Test("duplicate keys inside an unknown type's data are rejected")
    func duplicateKeysInUnknownData() {
        let error = rejection(
            #"{"schemaVersion":1,"eventId":"E","deviceId":"d","type":"x.y","occurredAt":1,"data":{"a":1,"b":{"c":1,"c":2}}}"#)
        #expect(error?.code == .duplicateKey)
    }

    @Test("integers at the 64-bit limits parse; one past them is rejected")
    func int64Limits() throws {
        let max = Self.incoming.replacingOccurrences(of: #""occurredAt":5"#, with: #""occurredAt":9223372036854775807"#)
        #expect(try parse(max).occurredAt == Int64.max)
        let over = Self.incoming.replacingOccurrences(of: #""occurredAt":5"#, with: #""occurredAt":9223372036854775808"#)
        #expect(rejection(over)?.code == .invalidValue)
    }

    @Test("configured limits are enforced: event size and string bytes")
    func configuredLimits() {
        var limits = EventLimits.default
        limits.maxEventBytes = 100
        #expect(throws: EventValidationError.self) { try EventParser(limits: limits).parse(Array(Self.incoming.utf8)) }
        limits = .default
        limits.maxTextBytes = 1
        let error = #expect(throws: EventValidationError.self) {
            try EventParser(limits: limits).parse(Array(Self.incoming.utf8))
        }
        #expect(error?.code == .tooLong)
        #expect(error?.path == "data.preview")
    }

    @Test("an empty value and a lone value that is not an object are rejected")
    func emptyAndNonObjects() {
        #expect(rejection("")?.code == .invalidJSON)
        #expect(rejection("   ")?.code == .invalidJSON)
        #expect(rejection("42")?.code == .wrongType)
        #expect(rejection("nul")?.code == .invalidJSON)
    }

    @Test("overlong UTF-8 encodings and encoded surrogates are rejected")
    func strictUTF8() {
        for bad: [UInt8] in [[0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF]] {
            var bytes = Array(Self.incoming.utf8)
            let range = bytes.firstRange(of: Array("hi".utf8))!
            bytes.replaceSubrange(range, with: bad)
            let error = #expect(throws: EventValidationError.self) { try parser.parse(bytes) }
            #expect(error?.code == .invalidUTF8)
            #expect(error?.path == "data.preview")
        }
    }

    @Test("error descriptions name the field, the reason and the byte")
    func errorDescription() {
        let error = rejection(Self.incoming.replacingOccurrences(of: #""kind":"text""#, with: #""kind":"holo""#))
        #expect(error?.description.hasPrefix("data.kind: ") == true)
        #expect(error?.description.contains("(invalid_value, byte ") == true)
    }

    // MARK: - source and contact.aliased

    static let withSource = #"""
        {"schemaVersion":1,"eventId":"E1","deviceId":"sales","type":"message.created","occurredAt":5,
        "chatId":"c@c.us","data":{"messageId":"M1","fromMe":false,"kind":"text","preview":"hi"},
        "source":{"format":"evolution","topic":"evolution.sales.messages.upsert","partition":3,"offset":4711}}
        """#

    @Test("the envelope's source names the bridge record; events without one have none")
    func sourceParses() throws {
        let event = try parse(Self.withSource)
        #expect(event.source == EventSource(format: "evolution", topic: "evolution.sales.messages.upsert", partition: 3, offset: 4711))
        #expect(try parse(Self.incoming).source == nil)
        #expect(try parse(Self.incoming) != event, "the source is part of the event's value")
        // Before `data` and `type`, too.
        let first = #"{"source":{"offset":0,"partition":0,"topic":"t","format":"f"},"schemaVersion":1,"eventId":"E1","deviceId":"d","type":"chat.read","occurredAt":1,"chatId":"c@c.us"}"#
        #expect(try parse(first).source == EventSource(format: "f", topic: "t", partition: 0, offset: 0))
    }

    @Test("a write-API source names the key's id: format api and keyId, in either order")
    func apiSourceParses() throws {
        let canonical = #"{"schemaVersion":1,"eventId":"api-1","deviceId":"d","type":"chat.read","occurredAt":1,"chatId":"c@c.us","data":{},"source":{"format":"api","keyId":"crm-agents"}}"#
        let event = try parse(canonical)
        #expect(event.source == .api(keyId: "crm-agents"))
        #expect(event.source?.format == "api")
        #expect(String(decoding: EventEncoder.encode(event), as: UTF8.self) == canonical, "the canonical form: format, then keyId")
        let reordered = #"{"source":{"keyId":"sha256:9f86d081884c","format":"api"},"schemaVersion":1,"eventId":"api-1","deviceId":"d","type":"chat.read","occurredAt":1,"chatId":"c@c.us"}"#
        #expect(try parse(reordered).source == .api(keyId: "sha256:9f86d081884c"))
        #expect(try parse(reordered).source != EventSource(format: "api", topic: "t", partition: 0, offset: 0))
    }

    @Test("a source is closed and typed: each bad form names its field")
    func sourceRejections() {
        func source(_ body: String) -> String {
            #"{"schemaVersion":1,"eventId":"E1","deviceId":"d","type":"chat.read","occurredAt":1,"chatId":"c@c.us","source":"# + body + "}"
        }
        let cases: [(String, EventValidationError.Code, String)] = [
            (#"{"format":"f","topic":"t","partition":0}"#, .missingField, "source.offset"),
            (#"{"format":"f","topic":"t","partition":0,"offset":1,"apikey":"k"}"#, .unknownField, "source.apikey"),
            (#"{"format":"f","topic":"t","partition":2147483648,"offset":1}"#, .invalidValue, "source.partition"),
            (#"{"format":"f","topic":"t","partition":-1,"offset":1}"#, .invalidValue, "source.partition"),
            (#"{"format":"f","topic":"t","partition":0,"offset":-1}"#, .invalidValue, "source.offset"),
            (#"{"format":"","topic":"t","partition":0,"offset":1}"#, .invalidValue, "source.format"),
            (#"{"format":"f","topic":"t","partition":"0","offset":1}"#, .wrongType, "source.partition"),
            (#"{"format":"f","topic":"t","partition":0,"offset":1,"offset":2}"#, .duplicateKey, "source.offset"),
            (#"{"topic":"t","partition":0,"offset":1}"#, .missingField, "source.format"),
            (#"{"format":"f","topic":"t","partition":0,"offset":1,"keyId":"k"}"#, .unknownField, "source.keyId"),
            (#"{"format":"api"}"#, .missingField, "source.keyId"),
            (#"{"format":"api","keyId":"k","topic":"t"}"#, .unknownField, "source.topic"),
            (#"{"format":"api","keyId":"k","offset":1}"#, .unknownField, "source.offset"),
            (#"{"format":"api","keyId":""}"#, .invalidValue, "source.keyId"),
            (#"{"format":"api","keyId":7}"#, .wrongType, "source.keyId"),
            (#"{"format":"api","keyId":"\#(String(repeating: "k", count: 129))"}"#, .tooLong, "source.keyId"),
            (#"{"format":"api","keyId":"k","keyId":"k"}"#, .duplicateKey, "source.keyId"),
            (#""bridge-7""#, .wrongType, "source"),
            (#"null"#, .wrongType, "source"),
        ]
        for (body, code, path) in cases {
            let error = rejection(source(body))
            #expect(error?.code == code, "\(body): \(String(describing: error))")
            #expect(error?.path == path, "\(body): \(String(describing: error))")
        }
    }

    @Test("contact.aliased carries the other id of the chat's contact and needs a chatId")
    func contactAliased() throws {
        let valid = #"{"schemaVersion":1,"eventId":"E1","deviceId":"d","type":"contact.aliased","occurredAt":1,"chatId":"491701234567@c.us","data":{"alias":"140913951141911@lid"}}"#
        let event = try parse(valid)
        #expect(event.payload == .contactAliased(ContactAliased(alias: "140913951141911@lid")))
        #expect(event.type == "contact.aliased")
        #expect(rejection(valid.replacingOccurrences(of: #""chatId":"491701234567@c.us","#, with: ""))?.code == .missingField)
        #expect(rejection(valid.replacingOccurrences(of: #""alias":"140913951141911@lid""#, with: #""alias":"""#))?.code == .invalidValue)
        #expect(rejection(valid.replacingOccurrences(of: #","data":{"alias":"140913951141911@lid"}"#, with: ""))?.path == "data")
        #expect(rejection(valid.replacingOccurrences(of: #""alias""#, with: #""lid""#))?.code == .unknownField)
    }

    // MARK: - Request bodies (the write API)

    @Test("a request body parses as the data of its type, with the event's rules and paths relative to the body")
    func dataBodies() throws {
        let parser = EventParser()
        func body(_ text: String) -> [UInt8] { Array(text.utf8) }
        #expect(try parser.parseData(body(#"{"archived":true}"#), type: .chatArchived, maxBytes: 4096) == .chatArchived(archived: true))
        #expect(try parser.parseData(body(" {\n\"pinned\" : false } \n"), type: .chatPinned, maxBytes: 4096) == .chatPinned(pinned: false))
        #expect(try parser.parseData(body(#"{"muteUntil":-1}"#), type: .chatMuted, maxBytes: 4096) == .chatMuted(muteUntil: -1))
        #expect(try parser.parseData(body(#"{"upToMessageId":"M1"}"#), type: .chatRead, maxBytes: 4096) == .chatRead(ChatRead(upToMessageId: "M1")))
        #expect(try parser.parseData(body("{}"), type: .chatMarkedUnread, maxBytes: 4096) == .chatMarkedUnread)
        let cases: [(String, EventType, EventValidationError.Code, String)] = [
            (#"{"archived":true,"pinned":true}"#, .chatArchived, .unknownField, "pinned"),
            (#"{"archived":"yes"}"#, .chatArchived, .wrongType, "archived"),
            (#"{"archived":null}"#, .chatArchived, .wrongType, "archived"),
            (#"{}"#, .chatArchived, .missingField, "archived"),
            (#"{"archived":true,"archived":false}"#, .chatArchived, .duplicateKey, "archived"),
            (#"{"archived":true} {"#, .chatArchived, .invalidJSON, ""),
            (#"{"archived":true},"source":{"format":"api","keyId":"x"}"#, .chatArchived, .invalidJSON, ""),
            (#"[true]"#, .chatArchived, .wrongType, ""),
            (#"{"muteUntil":-2}"#, .chatMuted, .invalidValue, "muteUntil"),
            (#"{"muteUntil":1.5}"#, .chatMuted, .wrongType, "muteUntil"),
            (#"{"upToMessageId":""}"#, .chatRead, .invalidValue, "upToMessageId"),
            (#"{"upToMessageId":"\#(String(repeating: "m", count: 129))"}"#, .chatRead, .tooLong, "upToMessageId"),
            ("", .chatRead, .invalidJSON, ""),
            (#"{"upToMessageId":"\#(String(repeating: "m", count: 300))"}"#, .chatRead, .tooLarge, ""),
        ]
        for (text, type, code, path) in cases {
            let error = #expect(throws: EventValidationError.self, "\(text)") {
                _ = try parser.parseData(body(text), type: type, maxBytes: 200)
            }
            #expect(error?.code == code, "\(text): \(String(describing: error))")
            #expect(error?.path == path, "\(text): \(String(describing: error))")
        }
        let invalidUTF8: [UInt8] = Array(#"{"upToMessageId":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)
        #expect(throws: EventValidationError.self) { _ = try parser.parseData(invalidUTF8, type: .chatRead, maxBytes: 4096) }
    }
}
