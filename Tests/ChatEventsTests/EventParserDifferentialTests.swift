import ChatEvents
import Foundation
import Testing

/// The hand-written parser against Foundation's `JSONDecoder` (through
/// `ReferenceEventDecoder`) on the same bytes: both must produce the same event.
@Suite("EventParser differential against JSONDecoder")
struct EventParserDifferentialTests {
    func expectSameEvent(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let parsed = try EventParser().parse(bytes)
        let reference = try ReferenceEventDecoder.decode(bytes)
        #expect(
            parsed == reference,
            "parser and JSONDecoder differ on \(String(decoding: bytes, as: UTF8.self))\n\(parsed)\n\(reference)",
            sourceLocation: sourceLocation)
    }

    @Test("canonical encodings of 10,000 generated events decode identically")
    func canonicalTraffic() throws {
        var model = TrafficModel(.init(devices: 8, chatsPerDevice: 40, seed: 2024))
        for _ in 0..<10_000 { try expectSameEvent(EventEncoder.encode(model.next().event)) }
    }

    @Test("JSONSerialization's renderings (sorted keys so data comes first, pretty-printed, escaped slashes) decode identically")
    func foreignRenderings() throws {
        var model = TrafficModel(.init(devices: 4, chatsPerDevice: 20, seed: 99))
        for round in 0..<3_000 {
            let canonical = EventEncoder.encode(model.next().event)
            let object = try JSONSerialization.jsonObject(with: Data(canonical))
            let options: JSONSerialization.WritingOptions = round.isMultiple(of: 2) ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
            try expectSameEvent(Array(try JSONSerialization.data(withJSONObject: object, options: options)))
        }
    }

    @Test("events with random Unicode, control characters and escapes in every string decode identically")
    func randomStrings() throws {
        var random = SeededGenerator(seed: 5)
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}",
                                          "é", "ß", "€", "中", "😀", "\u{FFFF}", "\u{10FFFF}", "\u{2028}"]
        func randomString(maxScalars: Int) -> String {
            var text = String.UnicodeScalarView()
            for _ in 0..<Int(random.next() % UInt64(maxScalars + 1)) {
                text.append(alphabet[Int(random.next() % UInt64(alphabet.count))])
            }
            return String(text)
        }
        for _ in 0..<3_000 {
            let event = Event(
                eventId: "E" + randomString(maxScalars: 20), deviceId: "d" + randomString(maxScalars: 20),
                occurredAt: Int64(random.next() >> 2), chatId: "c" + randomString(maxScalars: 30),
                payload: .messageCreated(
                    MessageCreated(
                        messageId: "M" + randomString(maxScalars: 20), fromMe: random.chance(0.5),
                        kind: MessageKind.allCases[Int(random.next() % 10)], preview: randomString(maxScalars: 200),
                        senderId: random.chance(0.5) ? "s" + randomString(maxScalars: 20) : nil,
                        hasMedia: random.chance(0.5) ? random.chance(0.5) : nil)))
            let bytes = EventEncoder.encode(event)
            try expectSameEvent(bytes)
            #expect(try EventParser().parse(bytes) == event)
        }
    }

    @Test("every type with its keys shuffled at every level and random whitespace between tokens decodes identically, and as the canonical bytes do")
    func shuffledKeys() throws {
        var random = SeededGenerator(seed: 77)
        var model = TrafficModel(.init(devices: 4, chatsPerDevice: 20, seed: 7))
        let booleans: Set<String> = [
            "fromMe", "hasMedia", "selfDevice", "archived", "pinned", "isGroup", "readOnly", "includesMe",
            "keepChatsArchived", "markedUnread", "revoked",
        ]
        func space() -> String { ["", "", " ", "\n", "\t ", "\r\n"][Int(random.next() % 6)] }
        func render(_ value: Any, key: String?) throws -> String {
            switch value {
            case let object as [String: Any]:
                var members: [String] = []
                for name in object.keys.shuffled(using: &random) {
                    members.append(space() + (try render(name, key: nil)) + space() + ":" + space() + (try render(object[name]!, key: name)) + space())
                }
                return "{" + members.joined(separator: ",") + space() + "}"
            case let array as [Any]:
                return "[" + (try array.map { space() + (try render($0, key: nil)) + space() }).joined(separator: ",") + "]"
            case let text as String:
                return String(decoding: try JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), as: UTF8.self)
            case is NSNull:
                return "null"
            case let number as NSNumber:
                if let key, booleans.contains(key) { return number.boolValue ? "true" : "false" }
                return String(number.int64Value)
            default:
                throw EventValidationError(code: .invalidJSON, path: key ?? "", byteOffset: 0, message: "unexpected \(value)")
            }
        }
        var types = Set<String>()
        for _ in 0..<3_000 {
            let canonical = EventEncoder.encode(model.next().event)
            let expected = try EventParser().parse(canonical)
            types.insert(expected.type)
            let shuffled = Array(try render(try JSONSerialization.jsonObject(with: Data(canonical)), key: nil).utf8)
            try expectSameEvent(shuffled)
            #expect(try EventParser().parse(shuffled) == expected, "\(String(decoding: shuffled, as: UTF8.self))")
        }
        // contact.aliased and `source` are covered by `adapterEvents` below, ledger.erased by `erasureEvents`.
        #expect(types.count >= EventType.allCases.count - 2, "the traffic covers every type: \(types.sorted())")
    }

    @Test("ledger.erased events (device, chat, contact) decode identically and as encoded; a plain device id or a missing subject is rejected by both")
    func erasureEvents() throws {
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        for erasure in [
            LedgerErasure(scope: .device, reason: "request 1"), LedgerErasure(scope: .chat, subject: digest, reason: "r\u{e9}quest \"2\""),
            LedgerErasure(scope: .contact, subject: digest, reason: "3"),
        ] {
            let event = Event(eventId: "erasure-1", deviceId: digest, occurredAt: 1, chatId: nil, payload: .ledgerErased(erasure))
            let bytes = EventEncoder.encode(event)
            try expectSameEvent(bytes)
            #expect(try EventParser().parse(bytes) == event)
            #expect(try EventParser().parse(bytes, kafkaKey: Array("any-device".utf8)) == event, "ingest checks the key against the digest")
        }
        let plain = Event(eventId: "e", deviceId: "dev-1", occurredAt: 1, chatId: nil, payload: .ledgerErased(LedgerErasure(scope: .device, reason: "r")))
        #expect(throws: EventValidationError.self) { try EventParser().parse(EventEncoder.encode(plain)) }
        #expect(throws: (any Error).self) { try ReferenceEventDecoder.decode(EventEncoder.encode(plain)) }
        let noSubject = Event(eventId: "e", deviceId: digest, occurredAt: 1, chatId: nil, payload: .ledgerErased(LedgerErasure(scope: .chat, reason: "r")))
        #expect(throws: EventValidationError.self) { try EventParser().parse(EventEncoder.encode(noSubject)) }
        #expect(throws: (any Error).self) { try ReferenceEventDecoder.decode(EventEncoder.encode(noSubject)) }
    }

    @Test("events the adapter stage and the write API make (a bridge or api source on every type, contact.aliased) decode identically, in canonical and shuffled forms")
    func adapterEvents() throws {
        var random = SeededGenerator(seed: 31)
        var model = TrafficModel(.init(devices: 3, chatsPerDevice: 10, seed: 3))
        let topics = ["evolution.sales.messages.upsert", "evolution.global.group-participants.update", "t\u{e9}\"\\x"]
        var seen = Set<String>()
        var (apiSources, bridgeSources) = (0, 0)
        for round in 0..<2_000 {
            var event = model.next().event
            if round % 5 == 0 {
                event = Event(
                    eventId: "A\(round)", deviceId: event.deviceId, occurredAt: event.occurredAt,
                    chatId: "49170\(round)@c.us", payload: .contactAliased(ContactAliased(alias: "1409\(round)@lid")))
            }
            if round % 3 == 0 {
                // The write API's form: the key's id, any identifier (configured or derived).
                event.source = .api(keyId: ["crm-agents", "sha256:9f86d081884c", "k\u{e9}\"\\\u{1}y"][(round / 3) % 3])
            } else if round % 7 != 0 {
                event.source = EventSource(
                    format: round % 2 == 0 ? "evolution" : "baileys", topic: topics[round % topics.count],
                    partition: Int32(truncatingIfNeeded: random.next() % 4_000_000_000 >> 1),
                    offset: Int64(random.next() >> 1))
            }
            seen.insert(event.type)
            switch event.source {
            case .api?: apiSources += 1
            case .bridgeRecord?: bridgeSources += 1
            case nil: break
            }
            let canonical = EventEncoder.encode(event)
            try expectSameEvent(canonical)
            #expect(try EventParser().parse(canonical) == event)
            #expect(EventEncoder.encode(try EventParser().parse(canonical)) == canonical, "a fixed point")
            let object = try JSONSerialization.jsonObject(with: Data(canonical))
            let sorted = Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]))
            try expectSameEvent(sorted)
            #expect(try EventParser().parse(sorted) == event)
        }
        #expect(seen.contains(EventType.contactAliased.rawValue))
        #expect(apiSources > 600 && bridgeSources > 600, "both forms of source are covered: \(apiSources), \(bridgeSources)")
    }
}

