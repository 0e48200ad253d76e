import ChatEvents
import Testing

/// Random damage to valid events: flipped bits, truncations, insertions, deletions and
/// repeated spans. The parser must never crash and always answer with an event or an
/// error; when it accepts a damaged value, `JSONDecoder` must read the same event from it.
@Suite("EventParser mutations")
struct EventParserMutationTests {
    static func corpus() throws -> [[UInt8]] {
        var values = try SchemaExamples.files("valid").map { try SchemaExamples.bytes("valid", $0) }
        var model = TrafficModel(.init(devices: 3, chatsPerDevice: 10, seed: 77))
        for _ in 0..<200 { values.append(EventEncoder.encode(model.next().event)) }
        return values
    }

    static func mutate(_ value: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = value
        guard !bytes.isEmpty else { return [UInt8(truncatingIfNeeded: random.next())] }
        let position = Int(random.next() % UInt64(bytes.count))
        let interesting: [UInt8] = Array("{}[]\",:\\ 0-etfnu".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xED, 0xF4, 0xFF]
        switch random.next() % 6 {
        case 0: bytes[position] ^= 1 << UInt8(random.next() % 8)
        case 1: bytes.removeSubrange(position...)
        case 2: bytes.insert(interesting[Int(random.next() % UInt64(interesting.count))], at: position)
        case 3: bytes.remove(at: position)
        case 4: bytes[position] = interesting[Int(random.next() % UInt64(interesting.count))]
        default:
            let end = min(bytes.count, position + 1 + Int(random.next() % 16))
            bytes.insert(contentsOf: bytes[position..<end], at: position)
        }
        return bytes
    }

    @Test("20,000 damaged values: never a crash, always an event or a located error")
    func damagedValues() throws {
        var random = SeededGenerator(seed: 0xC0FFEE)
        let corpus = try Self.corpus()
        var accepted = 0
        var rejected = 0
        for round in 0..<20_000 {
            var bytes = corpus[round % corpus.count]
            for _ in 0...(random.next() % 3) { bytes = Self.mutate(bytes, &random) }
            do {
                let event = try EventParser().parse(bytes)
                accepted += 1
                let reference = try? ReferenceEventDecoder.decode(bytes)
                #expect(reference == event, "accepted a value JSONDecoder reads differently: \(bytes)")
            } catch {
                rejected += 1
                #expect(error.byteOffset >= 0 && error.byteOffset <= max(bytes.count, EventLimits.default.maxEventBytes))
                #expect(!error.message.isEmpty)
            }
        }
        #expect(rejected > 10_000)
        #expect(accepted > 0)
    }
}
