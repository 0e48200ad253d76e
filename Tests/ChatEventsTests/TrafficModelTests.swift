import ChatEvents
import Testing

@Suite("TrafficModel")
struct TrafficModelTests {
    @Test("the same configuration generates the same events")
    func reproducible() {
        var first = TrafficModel(.init(devices: 3, chatsPerDevice: 10, seed: 42))
        var second = TrafficModel(.init(devices: 3, chatsPerDevice: 10, seed: 42))
        for _ in 0..<1_000 { #expect(first.next().event == second.next().event) }
        var other = TrafficModel(.init(devices: 3, chatsPerDevice: 10, seed: 43))
        var sameAsOther = 0
        var reference = TrafficModel(.init(devices: 3, chatsPerDevice: 10, seed: 42))
        for _ in 0..<100 where other.next().event == reference.next().event { sameAsOther += 1 }
        #expect(sameAsOther < 100)
    }

    @Test("the mix covers every event type, status posts and duplicates")
    func coversEveryType() {
        var model = TrafficModel(.init(devices: 4, chatsPerDevice: 30, seed: 1, duplicateRate: 0.01))
        var types = Set<String>()
        var duplicates = 0
        var statusPosts = 0
        var seenIds = Set<String>()
        for _ in 0..<50_000 {
            let generated = model.next()
            types.insert(generated.event.type)
            if generated.isDuplicate {
                duplicates += 1
                #expect(seenIds.contains(generated.event.eventId), "a duplicate repeats an earlier eventId")
            } else {
                #expect(seenIds.insert(generated.event.eventId).inserted, "fresh events have fresh ids")
            }
            if generated.event.chatId == "status@broadcast" { statusPosts += 1 }
        }
        // contact.aliased is made by the adapter stage from bridge records, not by a bridge;
        // ledger.erased by `chatledger erase`.
        #expect(types == Set(EventType.allCases.filter { $0 != .contactAliased && $0 != .ledgerErased }.map(\.rawValue)))
        #expect(duplicates > 100)
        #expect(statusPosts > 100)
    }

    @Test("chat activity is skewed: the busiest chat gets far more events than the median chat")
    func activityIsSkewed() {
        var model = TrafficModel(.init(devices: 1, chatsPerDevice: 100, seed: 3, duplicateRate: 0))
        var counts: [String: Int] = [:]
        for _ in 0..<20_000 {
            if let chatId = model.next().event.chatId { counts[chatId, default: 0] += 1 }
        }
        let sorted = counts.values.sorted()
        #expect(sorted.last! > 10 * sorted[sorted.count / 2])
    }
}
