@testable import BridgeAdapters
import ChatEvents
import LedgerSupport
import Testing

/// Pins, byte for byte, what each format's adapter and the event encoder make of a few
/// thousand seeded records: the encoded events (their ids included: downstream dedup depends
/// on them), the events' placement flags, skip reasons, dead letters with their details, the
/// record's event name, time and secret. The digests were computed with the code before the
/// adapter's speed work; a change in any output byte fails the test.
///
/// Besides the simulated records as written, every few records is also fed in altered:
/// letters rewritten as `\u` escapes (in keys too), as escaped quotes, backslashes and control
/// characters, as surrogate pairs and lone surrogates, as raw non-ASCII UTF-8; cut short;
/// with a field of the wrong type; and as a tombstone. So the escape paths of the reader and
/// the writer are pinned along with the plain ones.
@Suite("What the adapters make of seeded traffic, pinned by digest")
struct AdaptOutputDigestTests {
    /// The byte `letter` rewritten as `replacement` throughout `value`. Only letters that
    /// appear in no JSON literal (`true`, `false`, `null`) or number are rewritten, so the
    /// rewrite lands inside strings and keeps the JSON well formed.
    static func rewrite(_ value: [UInt8], _ letter: Character, as replacement: String) -> [UInt8] {
        let byte = letter.asciiValue!
        var out: [UInt8] = []
        out.reserveCapacity(value.count + 64)
        for element in value {
            if element == byte { out.append(contentsOf: replacement.utf8) } else { out.append(element) }
        }
        return out
    }

    /// The simulated records of `format`, each also altered every few records.
    static func records(format: String, count: Int) -> [BridgeRecord] {
        var traffic: any BridgeSimulation =
            format == EvolutionAdapter.formatName
            ? EvolutionTraffic(.init(instances: 4, chatsPerInstance: 12, seed: 11))
            : BridgeFormats.simulation(named: format, devices: 4, chats: 12, seed: 11)!
        var values: [[UInt8]?] = []
        for index in 0..<count {
            let value = traffic.next().value
            values.append(value)
            switch index % 17 {
            case 1: values.append(rewrite(value, "o", as: "\\u006f"))  // decodes to the same text
            case 3: values.append(rewrite(value, "i", as: "ï"))
            case 5: values.append(rewrite(value, "d", as: "\\\""))
            case 7: values.append(rewrite(value, "c", as: "\\t\\\\"))
            case 9: values.append(rewrite(value, "m", as: "\\u0001\\/"))
            case 11: values.append(rewrite(value, "h", as: "\\ud83d\\ude00"))
            case 12: values.append(rewrite(value, "p", as: "\\ud800x"))
            case 13: values.append(Array(value.prefix(value.count / 2)))
            case 14: values.append(Array(value.dropFirst()))
            case 15: values.append(nil)
            case 16: values.append(Array(#"{"event":7,"instance":"x","deviceId":[]}"#.utf8))
            default: break
            }
        }
        let topics = format == EvolutionAdapter.formatName ? ["evolution.inst-1.messages.upsert", "evolution.global.messages.update"] : ["wa." + format]
        return values.enumerated().map { index, value in
            BridgeRecord(
                topic: topics[index % topics.count], partition: Int32(index % 3), offset: Int64(index),
                timestamp: 1_767_225_600_000 + Int64(index) * 250, key: nil, value: value)
        }
    }

    /// The digest of everything `adapter` makes of `records` (events encoded as the stage does).
    static func digest(_ adapter: any BridgeAdapter, _ records: [BridgeRecord]) -> (digest: String, events: Int, deadLetters: Int) {
        var hasher = SHA256()
        func add(_ text: String) { hasher.update(Array(text.utf8) + [0]) }
        func add(_ bytes: [UInt8]) {
            add(String(bytes.count))
            hasher.update(bytes)
        }
        let tape = JSONTape()
        var events = 0
        var deadLetters = 0
        for record in records {
            let adapted = adapter.adapt(record, tape: tape)
            add("record \(record.offset)")
            switch adapted.outcome {
            case .mapped: add("mapped")
            case .deadLetter(let code, let detail):
                add("dead \(code)")
                add(detail)
                deadLetters += 1
            }
            add(adapted.skipReasons.joined(separator: ","))
            add(adapted.eventName ?? "-")
            add(adapted.time.map(String.init) ?? "-")
            add(adapted.secret ?? [])
            for event in adapted.events {
                add("\(event.waitsFor ?? "-") \(event.chatIsGuess) \(event.dropIfUnresolved)")
                add(EventEncoder.encode(event.event))
                events += 1
            }
        }
        return (hasher.finalize().hex, events, deadLetters)
    }

    @Test(
        "each format's events, ids, skip reasons and dead letters are byte for byte what they were",
        arguments: [
            (EvolutionAdapter.formatName, "df9169912bb2432e923604e8a88c072b2bc4c0386b93cd4428e7251cddfb6972"),
            (BaileysAdapter.formatName, "911bd520a4867659c83cd333fb269bc6b57c6edd82287e795af17917ad2d6b9e"),
            (WWebJSAdapter.formatName, "601b77985cc9c79b133d0735bb5fcae36d8eb6aa6dfea49f2a7f527d46cbb7ad"),
        ])
    func pinnedOutput(format: String, expected: String) throws {
        let adapter = try #require(BridgeFormats.adapter(named: format))
        let records = Self.records(format: format, count: 3_000)
        let (digest, events, deadLetters) = Self.digest(adapter, records)
        #expect(events > 2_000, "plenty of events")
        #expect(deadLetters > 300, "and plenty of dead letters")
        #expect(digest == expected, "\(format): \(events) events, \(deadLetters) dead letters")
    }
}
