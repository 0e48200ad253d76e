import LedgerSupport
import Testing

@Suite("MinHeap: the smallest element first")
struct MinHeapTests {
    @Test("elements come out in ascending order whatever the order they went in, with replaceFirst keeping the order")
    func ascendingOrder() {
        var heap = MinHeap<Int>()
        var reference: [Int] = []
        for step in 0..<5_000 {
            let value = (step &* 7_919 &+ step / 3) % 1_000  // a fixed, scrambled sequence with repeats
            switch step % 5 {
            case 0, 1, 2:
                heap.insert(value)
                reference.append(value)
            case 3:
                reference.sort()
                #expect(heap.removeFirst() == reference.first)
                if !reference.isEmpty { reference.removeFirst() }
            default:
                // The smallest replaced by a new value: what a merger does when a queue's head moves on.
                guard !reference.isEmpty else { continue }
                reference.sort()
                reference[0] = value
                heap.replaceFirst(with: value)
            }
            #expect(heap.count == reference.count)
            #expect(heap.first == reference.min())
        }
        var drained: [Int] = []
        while let value = heap.removeFirst() { drained.append(value) }
        #expect(drained == reference.sorted())
        #expect(heap.isEmpty && heap.removeFirst() == nil)
    }
}
