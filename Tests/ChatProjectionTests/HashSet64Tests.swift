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

    @Test("each partition has its own window: an id is a duplicate only on the partition it was seen on, and absorbing refuses a shared partition")
    func windowsPerPartition() {
        var windows = PartitionedEventIdWindow(capacity: 2)
        let first = [windows.insert(hash: stableHash("a"), partition: 0), windows.insert(hash: stableHash("a"), partition: 3)]
        #expect(first == [true, true], "the same id on another partition is not a duplicate")
        let again = windows.insert(hash: stableHash("a"), partition: 3)
        #expect(!again)
        // Partition 0 sees two more ids: "a" leaves its window, but not partition 3's.
        _ = windows.insert(hash: stableHash("b"), partition: 0)
        _ = windows.insert(hash: stableHash("c"), partition: 0)
        let afterEviction = [windows.insert(hash: stableHash("a"), partition: 0), windows.insert(hash: stableHash("a"), partition: 3)]
        #expect(afterEviction == [true, false])

        var other = PartitionedEventIdWindow(capacity: 2)
        _ = other.insert(hash: stableHash("z"), partition: 5)
        let before = windows
        let absorbed = windows.absorb(other)
        let known = windows.insert(hash: stableHash("z"), partition: 5)
        #expect(absorbed && !known)
        var clash = PartitionedEventIdWindow(capacity: 2)
        _ = clash.insert(hash: stableHash("y"), partition: 0)
        var unchanged = before
        let refused = !unchanged.absorb(clash)
        #expect(refused)
        #expect(unchanged == before, "a refused absorb takes nothing")
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
