/// A binary min-heap: the HTTP server's connection timers, the adapter stage's partition
/// heads. The smallest element is `first`; inserting and removing cost O(log n).
///
/// `public`, not `package`, and only for speed: Swift 6.3 does not specialize a `package`
/// generic type's `@inlinable` methods in another module, so every comparison and swap
/// went through witness tables and runtime metadata (20 % of the adapter stage's thread in
/// `perf`). The methods stay `package`.
public struct MinHeap<Element: Comparable> {
    @usableFromInline
    var elements: [Element] = []

    package init() {}

    /// The smallest element (nil: empty).
    @inlinable
    package var first: Element? { elements.first }

    @inlinable
    package var isEmpty: Bool { elements.isEmpty }

    @inlinable
    package var count: Int { elements.count }

    @inlinable
    package mutating func insert(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[child] < elements[parent] else { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes the smallest element.
    @inlinable
    @discardableResult
    package mutating func removeFirst() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let first = elements.removeLast()
        siftDown(0)
        return first
    }

    /// Replaces the smallest element with `element` (which may be larger: it sinks to its
    /// place), cheaper than removing and inserting.
    @inlinable
    package mutating func replaceFirst(with element: Element) {
        guard !elements.isEmpty else { return insert(element) }
        elements[0] = element
        siftDown(0)
    }

    @inlinable
    package mutating func removeAll() { elements.removeAll(keepingCapacity: true) }

    @inlinable
    mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < elements.count else { return }
            var smallest = left
            if left + 1 < elements.count, elements[left + 1] < elements[left] { smallest = left + 1 }
            guard elements[smallest] < elements[parent] else { return }
            elements.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
