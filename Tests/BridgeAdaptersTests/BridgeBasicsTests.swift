import BridgeAdapters
import ChatEvents
import Foundation
import Testing

@Suite("Bridge basics: ids, the JSON tape, secrets, dead letters")
struct BridgeBasicsTests {
    @Test("WhatsApp ids: one canonical form per contact")
    func canonicalIds() {
        #expect(WhatsAppID.canonical("491701234567@s.whatsapp.net") == "491701234567@c.us")
        #expect(WhatsAppID.canonical("491701234567:12@s.whatsapp.net") == "491701234567@c.us", "device suffix")
        #expect(WhatsAppID.canonical(" 491701234567@C.US ") == "491701234567@c.us")
        #expect(WhatsAppID.canonical("+491701234567") == "491701234567@c.us", "a bare number")
        #expect(WhatsAppID.canonical("140913951141911:3@lid") == "140913951141911@lid")
        #expect(WhatsAppID.canonical("120363041234567890@g.us") == "120363041234567890@g.us")
        #expect(WhatsAppID.canonical("status@broadcast") == "status@broadcast")
        #expect(WhatsAppID.canonical("120363000000000000@newsletter") == "120363000000000000@newsletter")
        #expect(WhatsAppID.canonical("") == nil)
        #expect(WhatsAppID.canonical("@s.whatsapp.net") == nil)
        #expect(WhatsAppID.canonical(String(repeating: "1", count: 300) + "@c.us") == nil)
        #expect(WhatsAppID.domain(of: "1@lid") == .lid)
        #expect(WhatsAppID.domain(of: "status@broadcast") == .statusBroadcast)
        #expect(WhatsAppID.domain(of: "1@broadcast") == .broadcast)
    }

    @Test("the tape: strict structure (each error located), members and elements, numbers, escapes")
    func tape() throws {
        let tape = JSONTape(maxDepth: 4)
        try tape.parse(Array(#" {"a":[1,-2.5e1,"x\u00e9"],"b":{"c":true,"d":null},"a":0} "#.utf8))
        #expect(tape.root["a"]?.elements.count == 3, "the first of repeated keys")
        #expect(tape.root["a"]?.elements[0].int64 == 1)
        #expect(tape.root["a"]?.elements[1].int64 == -25)
        #expect(tape.root["a"]?.elements[2].string == "xé")
        #expect(tape.root["b"]?["c"]?.bool == true)
        #expect(tape.root["b"]?["d"]?.isNull == true)
        #expect(tape.root["missing"] == nil)
        #expect(tape.root.members.map(\.key) == ["a", "b", "a"])
        for (text, offset) in [(#"{"a":1,}"#, 7), (#"{"a" 1}"#, 5), ("[01]", 1), (#""\q""#, 1), ("[1] x", 4), (#"{"a":"#, 5), ("\"a\u{1}\"", 2)] {
            #expect(throws: JSONTapeError.self, "\(text)") { try tape.parse(Array(text.utf8)) }
            do {
                try tape.parse(Array(text.utf8))
            } catch {
                #expect(error.code == .invalidJSON && error.offset == offset, "\(text): \(error)")
            }
        }
        #expect(throws: JSONTapeError.self) { try tape.parse(Array("[[[[[1]]]]]".utf8)) }
        try tape.parse(Array("[[[[1]]]]".utf8))
        // Invalid UTF-8 inside a string is text, replaced, not a failure.
        try tape.parse([UInt8(ascii: "\""), 0x61, 0xFF, 0x62, UInt8(ascii: "\"")])
        #expect(tape.root.string == "a\u{FFFD}b")
    }

    @Test("the tape never crashes on damaged records: every mutation parses or fails with an offset inside the record")
    func tapeMutations() {
        var random = SeededGenerator(seed: 11)
        let base = Array(EvolutionHarness.envelope("messages.upsert", #"{"key":{"remoteJid":"4917@s.whatsapp.net","fromMe":false,"id":"A\u00e9"},"message":{"conversation":"hi \ud83d\ude00"},"messageTimestamp":1767366770}"#).utf8)
        let tape = JSONTape()
        let adapter = EvolutionAdapter()
        for _ in 0..<5_000 {
            var bytes = base
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let index = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.remove(at: index)
                default: bytes.insert(Array(#"{}[]",:\0"#.utf8)[Int(random.next() % 9)], at: index)
                }
            }
            do {
                try tape.parse(bytes)
            } catch {
                #expect(error.offset >= 0 && error.offset <= bytes.count)
            }
            let result = adapter.adapt(BridgeRecord(topic: "t", partition: 0, offset: 0, value: bytes), tape: tape)
            for adapted in result.events {
                #expect(throws: Never.self) { try EventParser().parse(EventEncoder.encode(adapted.event)) }
            }
        }
    }

    @Test("secrets: every apikey value and every other occurrence are replaced, in valid and in broken JSON")
    func scrubbing() {
        let secret = "s3cr3t-T0KEN"
        let record = Array(#"{"apikey":"\#(secret)","data":{"ApiKey":"other-token-1","url":"http://x/?k=\#(secret)","api_key":12345678},"x":"#.utf8)
        let scrubbed = String(decoding: SecretScrubber.scrub(record, secret: nil), as: UTF8.self)
        #expect(!scrubbed.contains(secret) && !scrubbed.contains("other-token-1") && !scrubbed.contains("12345678"), "\(scrubbed)")
        #expect(scrubbed.contains(#""apikey":"[redacted]""#))
        #expect(SecretScrubber.secretValue(in: record) == Array(secret.utf8))
        let cut = Array(#"{"event":"x","apikey":"\#(secret)"#.utf8)
        #expect(!String(decoding: SecretScrubber.scrub(cut, secret: nil), as: UTF8.self).contains(secret), "a value cut off is still redacted")
        let escapedKey = Array(#"{"api\u006bey":"\#(secret)"}"#.utf8)
        #expect(!String(decoding: SecretScrubber.scrub(escapedKey, secret: nil), as: UTF8.self).contains(secret))
        #expect(SecretScrubber.scrub("detail with \(secret) in it", secret: Array(secret.utf8)) == "detail with [redacted] in it")
    }

    @Test("a dead letter: coordinates, reason, scrubbed value as text (base64 when not UTF-8), cut at 64 KiB on a character")
    func deadLetterEncoding() throws {
        let secret = "B6D711FCDE4D4FD5936544120E713976"
        let record = BridgeRecord(
            topic: "evolution.sales.messages.upsert", partition: 2, offset: 41, timestamp: 5, key: Array("sales".utf8),
            value: Array(#"{"apikey":"\#(secret)","data":"#.utf8))
        let letter = DeadLetter(format: "evolution", record: record, reason: "invalid_json", detail: "cut off", secret: Array(secret.utf8))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(letter.encoded())) as? [String: Any])
        #expect(object["topic"] as? String == "evolution.sales.messages.upsert")
        #expect(object["partition"] as? Int == 2 && object["offset"] as? Int == 41)
        #expect(object["reason"] as? String == "invalid_json")
        #expect(object["value"] as? String == #"{"apikey":"[redacted]","data":"#)
        #expect(object["key"] as? String == "sales")
        #expect(letter.key == Array("sales".utf8))
        let binary = DeadLetter(format: "evolution", record: BridgeRecord(topic: "t", partition: 0, offset: 0, value: [0xFF, 0x00, 0x41]), reason: "invalid_json", detail: "", secret: nil)
        let binaryObject = try #require(try JSONSerialization.jsonObject(with: Data(binary.encoded())) as? [String: Any])
        #expect(binaryObject["valueBase64"] as? String == "/wBB")
        let big = BridgeRecord(topic: "t", partition: 0, offset: 0, value: Array(String(repeating: "é", count: 40_000).utf8))
        let bigObject = try #require(try JSONSerialization.jsonObject(with: Data(DeadLetter(format: "evolution", record: big, reason: "too_large", detail: "", secret: nil).encoded())) as? [String: Any])
        #expect(bigObject["truncated"] as? Bool == true)
        #expect((bigObject["value"] as? String)?.utf8.count == 65_536)
        #expect(bigObject["valueBytes"] as? Int == 80_000)
    }
}
