import KafkaClient

/// Adapted records waiting per source partition, handed out in the order of their
/// bridge's clock across all partitions.
///
/// A bridge that writes one topic per event type (Evolution) spreads one device's history
/// over many partitions, and a consumer reads them at independent paces: after a restart
/// or with a backlog, a thousand receipts can be fetched before the messages they
/// acknowledge. As Kafka Streams does for a task with several inputs, the merger always
/// hands out the record with the smallest time among the partitions' heads, and while a
/// partition that still has records on the broker (its high watermark is beyond what was
/// fetched) has none here, it waits for them, up to `maxIdle`, instead of guessing. A
/// partition that is caught up does not hold the others back. Ties go by topic,
/// partition and offset, so the order does not depend on fetch timing.
///
/// The heads sit in a binary heap, so handing out a record costs O(log partitions); whether
/// an empty partition holds the others back is decided once per drain (`beginDrain`) and
/// again whenever a partition runs empty, since nothing else changes it between polls.
struct RecordMerger {
    struct Entry {
        var record: BridgeRecord
        var adapted: AdaptedRecord
        /// The bridge's time of the record (its envelope), else Kafka's.
        var time: Int64
        /// Each event's canonical bytes (already checked against the parser).
        var encoded: [[UInt8]]
    }

    private struct Queue {
        var partition: TopicPartition
        /// Slots before `head` are handed out (nil: moved out, not copied).
        var entries: [Entry?] = []
        var head = 0
        /// The offset after the last record queued (or the group's committed offset).
        var nextOffset: Int64?
        /// Since when the merger has been waiting for this empty partition.
        var waitingSince: ContinuousClock.Instant?
        /// The partition's place among all tracked ones by (topic, partition): the tie-break.
        var rank = 0
        var inHeap = false

        var isEmpty: Bool { head >= entries.count }
        var count: Int { entries.count - head }

        mutating func removeFirst() -> Entry? {
            let entry = entries[head].take()
            head += 1
            if head == entries.count {
                entries.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024, head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
            return entry
        }
    }

    private struct Key: Comparable {
        var time: Int64
        var rank: Int
        var offset: Int64

        static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.time, lhs.rank, lhs.offset) < (rhs.time, rhs.rank, rhs.offset)
        }
    }

    private var queues: [Queue] = []
    private var indexOf: [TopicPartition: Int] = [:]
    /// Indices of non-empty queues, a min-heap by their head's key.
    private var heap: [Int] = []
    private var blocked = false
    /// Records queued in all partitions.
    private(set) var count = 0
    let maxIdle: Duration

    init(maxIdle: Duration) {
        self.maxIdle = maxIdle
    }

    var isEmpty: Bool { count == 0 }

    /// Starts tracking a newly assigned partition (reading from `nextOffset`, if known).
    mutating func assign(_ partition: TopicPartition, nextOffset: Int64?) {
        if let index = indexOf[partition] {
            count -= queues[index].count
            queues[index].entries.removeAll()
            queues[index].head = 0
            queues[index].nextOffset = nextOffset
            queues[index].waitingSince = nil
            rebuild()
        } else {
            indexOf[partition] = queues.count
            queues.append(Queue(partition: partition, nextOffset: nextOffset))
            rebuild()
        }
    }

    /// Forgets partitions taken away, with their queued records.
    mutating func revoke(_ revoked: [TopicPartition]) {
        let gone = Set(revoked)
        for queue in queues where gone.contains(queue.partition) { count -= queue.count }
        queues.removeAll { gone.contains($0.partition) }
        indexOf = Dictionary(uniqueKeysWithValues: queues.enumerated().map { ($1.partition, $0) })
        rebuild()
    }

    /// Ranks and heap again after the set of partitions changed.
    private mutating func rebuild() {
        let order = queues.indices.sorted { queues[$0].partition < queues[$1].partition }
        for (rank, index) in order.enumerated() { queues[index].rank = rank }
        heap.removeAll()
        for index in queues.indices {
            queues[index].inHeap = false
            if !queues[index].isEmpty { push(index) }
        }
    }

    mutating func append(_ entry: consuming Entry) {
        let partition = TopicPartition(entry.record.topic, entry.record.partition)
        if indexOf[partition] == nil { assign(partition, nextOffset: nil) }
        let index = indexOf[partition]!
        queues[index].nextOffset = entry.record.offset + 1
        queues[index].entries.append(entry)
        queues[index].waitingSince = nil
        count += 1
        if !queues[index].inHeap { push(index) }
    }

    /// The offset of the oldest record still queued for `partition`.
    func firstQueuedOffset(_ partition: TopicPartition) -> Int64? {
        guard let index = indexOf[partition], !queues[index].isEmpty else { return nil }
        return queues[index].entries[queues[index].head]?.record.offset
    }

    /// Decides, for the records fetched so far, whether an empty partition that still has
    /// records on the broker holds the others back. Call after each poll.
    mutating func beginDrain(now: ContinuousClock.Instant, highWatermark: (TopicPartition) -> Int64?) {
        blocked = false
        for index in queues.indices where queues[index].isEmpty {
            if holdsBack(index, now: now, highWatermark: highWatermark) { blocked = true }
        }
    }

    /// Whether records are still to come from the broker that could be older than what is
    /// queued: a partition has records on the broker not fetched yet, or records are
    /// queued here. While this holds, an event waiting for its message keeps waiting.
    func isCatchingUp(highWatermark: (TopicPartition) -> Int64?) -> Bool {
        if count > 0 { return true }
        for queue in queues {
            guard let high = highWatermark(queue.partition) else { return true }
            if (queue.nextOffset ?? 0) < high { return true }
        }
        return false
    }

    /// The next record in time order, or nil when none may go yet.
    /// - Parameter force: hand out the oldest head even while a partition still fetching
    ///   holds the others back (to bound memory, or when stopping).
    mutating func next(now: ContinuousClock.Instant, highWatermark: (TopicPartition) -> Int64?, force: Bool = false) -> Entry? {
        guard let index = heap.first, !blocked || force, let entry = queues[index].removeFirst() else { return nil }
        count -= 1
        if queues[index].isEmpty {
            popHeap()
            queues[index].inHeap = false
            if !force, holdsBack(index, now: now, highWatermark: highWatermark) { blocked = true }
        } else {
            siftDown(0)
        }
        return entry
    }

    /// Whether the empty queue `index` has records on the broker not fetched yet, and has
    /// not been waited for longer than `maxIdle`.
    private mutating func holdsBack(_ index: Int, now: ContinuousClock.Instant, highWatermark: (TopicPartition) -> Int64?) -> Bool {
        let behind: Bool
        if let high = highWatermark(queues[index].partition) {
            behind = (queues[index].nextOffset ?? 0) < high
        } else {
            behind = queues[index].nextOffset == nil
        }
        guard behind else { return false }
        if let since = queues[index].waitingSince { return now - since < maxIdle }
        queues[index].waitingSince = now
        return true
    }

    // MARK: - Heap

    private func key(_ index: Int) -> Key {
        let head = queues[index].head
        return Key(
            time: queues[index].entries[head]?.time ?? .max, rank: queues[index].rank, offset: queues[index].entries[head]?.record.offset ?? .max)
    }

    private mutating func push(_ index: Int) {
        queues[index].inHeap = true
        heap.append(index)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard key(heap[child]) < key(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popHeap() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count, key(heap[left + 1]) < key(heap[left]) { smallest = left + 1 }
            guard key(heap[smallest]) < key(heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
