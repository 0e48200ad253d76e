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
        // An object or array where the token belongs is replaced whole.
        for container in [#"["\#(secret)"]"#, #"{"token":"\#(secret)","n":[1,{"a":2}]}"#] {
            let scrubbed = String(decoding: SecretScrubber.scrub(Array(#"{"apikey":\#(container),"x":1}"#.utf8), secret: nil), as: UTF8.self)
            #expect(scrubbed == #"{"apikey":"[redacted]","x":1}"#, "\(scrubbed)")
        }
        // Its strings are the record's secrets: found, and scrubbed wherever else they occur.
        let nested = Array(#"{"apikey":["\#(secret)"],"url":"http://x/?k=\#(secret)"}"#.utf8)
        #expect(SecretScrubber.secretValue(in: nested) == Array(secret.utf8))
        let member = Array(#"{"apikey":{"instance":"\#(secret)"},"instance":"sales"}"#.utf8)
        #expect(SecretScrubber.secretValue(in: member) == Array(secret.utf8), "a member's name is no secret")
        #expect(String(decoding: SecretScrubber.scrub(member, secret: nil), as: UTF8.self) == #"{"apikey":"[redacted]","instance":"sales"}"#)
        #expect(!String(decoding: SecretScrubber.scrub(nested, secret: nil), as: UTF8.self).contains(secret))
    }

    @Test("session credentials in baileys/wwebjs envelopes (creds.update keys, a linking QR or pairing code, legacy session tokens) never reach a dead letter, whole objects included, valid or cut off")
    func sessionCredentialsScrubbed() throws {
        let privateKey = "cHJpdmF0ZS1ub2lzZS1rZXktYnl0ZXM="
        let advSecret = "YWR2LXNlY3JldC1rZXk="
        let qr = "2@Zq1hA9kX,cHVibGljLW5vaXNl,aWRlbnRpdHk=,YWR2"
        // A publisher that forwards creds.update whole (ours keeps only accountSettings), with
        // no deviceId: a dead letter.
        let creds = #"{"event":"creds.update","data":{"noiseKey":{"private":"\#(privateKey)","public":"cHVibGlj"},"advSecretKey":"\#(advSecret)","signedPreKey":{"keyPair":{"private":"\#(privateKey)"},"keyId":1},"registrationId":7},"timestamp":1}"#
        let baileys = BaileysAdapter().adapt(
            BridgeRecord(topic: "wa.baileys", partition: 0, offset: 3, timestamp: 1, key: Array("bot-1".utf8), value: Array(creds.utf8)), tape: JSONTape())
        guard case .deadLetter(let code, let detail) = baileys.outcome else {
            Issue.record("creds.update without deviceId is a dead letter")
            return
        }
        let letter = String(decoding: DeadLetter(
            format: "baileys", record: BridgeRecord(topic: "wa.baileys", partition: 0, offset: 3, timestamp: 1, key: Array("bot-1".utf8), value: Array(creds.utf8)),
            reason: code, detail: detail, secret: baileys.secret).encoded(), as: UTF8.self)
        #expect(!letter.contains(privateKey) && !letter.contains(advSecret), "\(letter)")
        #expect(letter.contains("creds.update"), "the rest of the record stays for diagnosis: \(letter)")

        let cases: [(record: String, secrets: [String])] = [
            // Anywhere, at any depth: the credential keys' values, whatever their type.
            (#"{"event":"messages.upsert","data":{"x":{"noiseKey":{"private":"\#(privateKey)"},"pairingCode":"ABCD1234"}}}"#, [privateKey, "ABCD1234"]),
            (#"{"event":"connection.update","deviceId":"bot-1","data":{"connection":"connecting","qr":"\#(qr)"}}"#, [qr]),
            // whatsapp-web.js: qr and code carry the code in args; authenticated the legacy session.
            (#"{"event":"qr","deviceId":"bot-1","args":["\#(qr)"]}"#, [qr]),
            (#"{"args":["ABCD1234"],"deviceId":"bot-1","event":"code"}"#, ["ABCD1234"]),
            (#"{"event":"authenticated","deviceId":"bot-1","args":[{"WABrowserId":"\"brw-77a\"","WASecretBundle":"{\"key\":\"\#(privateKey)\"}","WAToken1":"\"tok-one-1\"","WAToken2":"\"tok-two-2\""}]}"#, [privateKey, "brw-77a", "tok-one-1", "tok-two-2"]),
            // Evolution's linking QR (its event, not its key names, says so); a media message's key.
            (#"{"event":"qrcode.updated","instance":"sales","data":{"qrcode":{"instance":"sales","pairingCode":null,"code":"2@\#(qr)","base64":"data:image/png;base64,iVBORw0K\#(qr)"}}}"#, [qr]),
            (#"{"event":"messages.upsert","data":{"message":{"imageMessage":{"url":"https://mmg.whatsapp.net/v/x.enc","mediaKey":"\#(advSecret)","mimetype":"image/jpeg"}}}}"#, [advSecret]),
            (#"{"event":"messages.upsert","data":{"message":{"messageContextInfo":{"messageSecret":"\#(advSecret)"},"conversation":"hi"}}}"#, [advSecret]),
            (#"{"event":"messages.edited","data":{"type":"APP_STATE_SYNC_KEY_SHARE","appStateSyncKeyShare":{"keys":[{"keyId":{"keyId":"AAAA"},"keyData":{"keyData":"\#(privateKey)","timestamp":"1"}}]}}}"#, [privateKey]),
            // Cut off inside the credentials.
            (#"{"event":"creds.update","deviceId":"bot-1","data":{"advSecretKey":"\#(advSecret)","noiseKey":{"private":"\#(privateKey)"#, [advSecret, privateKey]),
        ]
        for (record, secrets) in cases {
            let scrubbed = String(decoding: SecretScrubber.scrub(Array(record.utf8), secret: nil), as: UTF8.self)
            for secret in secrets { #expect(!scrubbed.contains(secret), "\(secret) in \(scrubbed)") }
            #expect(scrubbed.contains("[redacted]"))
        }
        // What is not a credential stays, and the record's secret is still Evolution's apikey alone.
        let upsert = #"{"event":"messages.upsert","deviceId":"bot-1","data":{"messages":[{"key":{"id":"M1"},"message":{"conversation":"qr code please"}}]}}"#
        #expect(SecretScrubber.scrub(Array(upsert.utf8), secret: nil) == Array(upsert.utf8))
        #expect(SecretScrubber.secretValue(in: Array(#"{"event":"qr","args":["\#(qr)"]}"#.utf8)) == nil)
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
