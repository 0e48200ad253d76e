@testable import ChatProjection
import Testing

/// The chunked structures behind the event-id windows, against plain models: a copy (as a
/// checkpoint's snapshot takes) and the original then diverge, and each must still agree
/// with its own model, across chunk boundaries.
@Suite("Chunked copy-on-write structures")
struct ChunkedWordsTests {
    typealias SplitMix = HashSet64Tests.SplitMix

    @Test("appends and writes across chunk boundaries agree with [UInt64]; copies taken along the way diverge without touching each other")
    func wordsAgreeWithArray() {
        var random = SplitMix(seed: 11)
        var words = ChunkedWords()
        var model: [UInt64] = []
        var copies: [(ChunkedWords, [UInt64])] = []
        for step in 0..<120_000 {
            if model.isEmpty || random.next() % 3 != 0 {
                let value = random.next()
                words.append(value)
                model.append(value)
            } else {
                let index = Int(random.next() % UInt64(model.count))
                let value = random.next()
                words[index] = value
                model[index] = value
            }
            if step % 20_000 == 7 { copies.append((words, model)) }
            // Copies taken earlier are written too: their writes must not reach the original.
            if !copies.isEmpty, step % 101 == 0 {
                let which = Int(random.next() % UInt64(copies.count))
                let index = Int(random.next() % UInt64(copies[which].1.count))
                copies[which].0[index] = UInt64(step)
                copies[which].1[index] = UInt64(step)
            }
        }
        #expect(words.count == model.count)
        #expect(words.array == model)
        let start = model.count / 3
        #expect(words.rotated(from: start) == Array(model[start...] + model[..<start]))
        for (copy, copyModel) in copies { #expect(copy.array == copyModel, "a copy keeps its own words") }
        #expect(copies.count == 6)
        #expect(model.count > 4 * ChunkedWords.chunkSize, "spans several chunks")
    }

    @Test("HashSet64 copied mid-way: the copy and the original, both changed afterwards, each agree with their own Set<UInt64>")
    func tableCopiesDiverge() {
        var random = SplitMix(seed: 5)
        var table = HashSet64(minimumSlots: 16)
        var model = Set<UInt64>()
        func step(_ table: inout HashSet64, _ model: inout Set<UInt64>) {
            let value = random.next() % 200_000
            if random.next() % 4 == 0 {
                table.remove(value)
                model.remove(value)
            } else {
                #expect(table.insert(value) == model.insert(value).inserted)
            }
        }
        for _ in 0..<60_000 { step(&table, &model) }
        var copy = table
        var copyModel = model
        for _ in 0..<30_000 {
            step(&table, &model)
            step(&copy, &copyModel)
        }
        for probe in 0..<200_000 as Range<UInt64> {
            guard table.contains(probe) == model.contains(probe), copy.contains(probe) == copyModel.contains(probe) else {
                Issue.record("contains(\(probe)) disagrees with the model")
                return
            }
        }
        // `count` leaves out 0, which is kept apart.
        #expect(table.count + (model.contains(0) ? 1 : 0) == model.count)
        #expect(copy.count + (copyModel.contains(0) ? 1 : 0) == copyModel.count)
        #expect(model != copyModel, "the two really diverged")
    }

    /// The event-id window as plainly as it can be said: the last `capacity` ids, in order.
    struct ModelWindow {
        let capacity: Int
        private var seen: [UInt64] = []
        private var oldest = 0
        private var members = Set<UInt64>()

        init(capacity: Int) { self.capacity = capacity }

        var ids: [UInt64] { Array(seen[oldest...]) }

        mutating func insert(_ id: UInt64) -> Bool {
            guard members.insert(id).inserted else { return false }
            seen.append(id)
            if seen.count - oldest > capacity {
                members.remove(seen[oldest])
                oldest += 1
            }
            return true
        }
    }

    @Test("an event-id window over many chunks, copied while full and evicting, agrees with a plain model on both sides")
    func windowCopiesDiverge() {
        var random = SplitMix(seed: 3)
        let capacity = 3 * ChunkedWords.chunkSize + 123
        var window = EventIdWindow(capacity: capacity)
        var model = ModelWindow(capacity: capacity)
        // Ids from a range a little wider than the window: duplicates inside it, and ids
        // coming back after eviction.
        func id() -> UInt64 { random.next() % UInt64(capacity + capacity / 2) }
        for _ in 0..<(2 * capacity) {
            let next = id()
            #expect(window.insert(hash: next) == model.insert(next))
        }
        var copy = window
        var copyModel = model
        for _ in 0..<20_000 {
            let (first, second) = (id(), id())
            let inserted = (window.insert(hash: first), copy.insert(hash: second))
            #expect(inserted.0 == model.insert(first))
            #expect(inserted.1 == copyModel.insert(second))
        }
        #expect(window.oldestFirst == model.ids)
        #expect(copy.oldestFirst == copyModel.ids)
        #expect(model.ids != copyModel.ids)
        #expect(EventIdWindow(capacity: capacity, oldestFirst: copy.oldestFirst) == copy, "rebuilt from a checkpoint's list")
    }
}
