@testable import ChatProjection
import Testing

@Suite("HashSet64, the event-id window's table")
struct HashSet64Tests {
    @Test("random inserts and removes, with many values sharing probe runs, always agree with Set<UInt64>")
    func agreesWithSet() {
        var generator = SplitMix(seed: 7)
        var table = HashSet64(minimumSlots: 16)
        var reference = Set<UInt64>()
        // A small value range makes collisions and long probe runs common; 0 is included.
        for step in 0..<200_000 {
            let value = generator.next() % (step < 100_000 ? 600 : 1 << 40)
            if generator.next() % 3 == 0 {
                table.remove(value)
                reference.remove(value)
            } else {
                let inserted = table.insert(value)
                #expect(inserted == reference.insert(value).inserted)
            }
            if step % 997 == 0 {
                for probe in 0..<700 as Range<UInt64> where table.contains(probe) != reference.contains(probe) {
                    Issue.record("step \(step): contains(\(probe)) disagrees")
                    return
                }
            }
            #expect(table.count + (reference.contains(0) ? 1 : 0) == reference.count)
        }
        for value in reference { #expect(table.contains(value)) }
    }

    @Test("the window forgets the oldest id once full, and remembers the rest")
    func windowEvictsOldest() {
        var window = EventIdWindow(capacity: 3)
        let fresh = ["a", "b", "c"].map { window.insert($0) }
        #expect(fresh == [true, true, true])
        let again = window.insert("a")
        #expect(!again, "a duplicate inside the window")
        let fourth = window.insert("d")
        #expect(fourth, "evicts a")
        let returning = window.insert("a")
        #expect(returning, "a is outside the window now")
        let recent = [window.insert("c"), window.insert("d")]
        #expect(recent == [false, false])
    }

    @Test("absorbing a window keeps the newest ids of both, oldest first, whether or not the other one is full")
    func absorbKeepsNewest() {
        for otherCount in [2, 4, 6] {
            var mine = EventIdWindow(capacity: 4)
            var other = EventIdWindow(capacity: 4)
            var oneByOne = EventIdWindow(capacity: 4)
            let myIds = (0..<3).map { "mine-\($0)" }
            let otherIds = (0..<otherCount).map { "other-\($0)" }
            for id in myIds {
                _ = mine.insert(id)
                _ = oneByOne.insert(id)
            }
            for id in otherIds {
                _ = other.insert(id)
                _ = oneByOne.insert(id)
            }
            mine.absorb(other)
            #expect(mine == oneByOne, "absorbing \(otherCount) ids")
            #expect(mine.oldestFirst == (myIds + otherIds).suffix(4).map(stableHash))
            let stillKnown = mine.insert(otherIds.last!)
            #expect(!stillKnown, "the newest id is a duplicate after the merge")
        }
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
