import KafkaClient
import LedgerSupport

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
    /// What the adapter threads made of one record, as the stage's thread needs it. The
    /// events' `Event` values stay behind on the thread that built them (freed there),
    /// except where the stage may still have to change one (`Role.actsOn`).
    struct Entry {
        /// Its coordinates; its bytes only when it is a dead letter.
        var record: BridgeRecord
        var outcome: AdaptedRecord.Outcome
        /// Why parts of it made no event, counted.
        var skipReasons: [String]
        /// The record's secret, scrubbed from anything written about it.
        var secret: [UInt8]?
        /// The bridge's time of the record (its envelope), else Kafka's.
        var time: Int64
        var events: [PreparedEvent]
    }

    /// One canonical event, ready to produce.
    struct PreparedEvent: Equatable {
        /// The canonical bytes (checked against the schema's limits), the record's secret
        /// scrubbed out; nil when scrubbing broke the event, which is then skipped.
        var bytes: [UInt8]?
        /// The Kafka key.
        var deviceId: String
        var type: String
        /// Its key in the message directory (`MessageDirectory.key(for:)`).
        var directoryKey: UInt64
        var role: Role

        enum Role: Equatable {
            /// A `message.created` in this chat: filed in the directory; what waits for the
            /// message goes after it.
            case creates(chatId: String)
            /// A `contact.aliased`: sent once per pair and run.
            case aliases
            /// Acts on a message: waits for its `message.created`, whose chat may replace the
            /// event's own (hence the whole event).
            case actsOn(AdaptedEvent)
            /// Goes out as it is.
            case plain
        }
    }

    private struct Queue {
        var partition: TopicPartition
        /// Slots before `head` are handed out (nil: moved out, not copied).
        var entries: [Entry?] = []
        /// Each entry's time and offset, beside it: the heap reads these, never the entries.
        var keys: [(time: Int64, offset: Int64)] = []
        var head = 0
        /// The offset after the last record queued (or the group's committed offset).
        var nextOffset: Int64?
        /// The offset the next record read should have (the committed one, 0 without; then
        /// the one after each record); nil for a partition met before its assignment.
        var expectedOffset: Int64?
        /// The offset of the last record handed out.
        var lastHandedOut: Int64?
        /// Since when the merger has been waiting for this empty partition.
        var waitingSince: ContinuousClock.Instant?
        /// The partition's place among all tracked ones by (topic, partition): the tie-break.
        var rank = 0
        var inHeap = false

        var isEmpty: Bool { head >= entries.count }
        var count: Int { entries.count - head }

        mutating func append(_ entry: consuming Entry) {
            keys.append((entry.time, entry.record.offset))
            entries.append(entry)
        }

        mutating func removeFirst() -> Entry? {
            let entry = entries[head].take()
            lastHandedOut = keys[head].offset
            head += 1
            if head == entries.count {
                entries.removeAll(keepingCapacity: true)
                keys.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024, head * 2 > entries.count {
                entries.removeFirst(head)
                keys.removeFirst(head)
                head = 0
            }
            return entry
        }

        mutating func removeAll() {
            entries.removeAll()
            keys.removeAll()
            head = 0
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

    /// A non-empty queue in the heap, by its head's key.
    private struct Head: Comparable {
        var key: Key
        var queue: Int

        static func < (lhs: Head, rhs: Head) -> Bool { lhs.key < rhs.key }
        static func == (lhs: Head, rhs: Head) -> Bool { lhs.key == rhs.key }
    }

    private var queues: [Queue] = []
    private var indexOf: [TopicPartition: Int] = [:]
    /// The non-empty queues, a min-heap by their head's key (kept here, so comparing
    /// never touches a queue).
    private var heap = MinHeap<Head>()
    /// The queue the last record appended went to: a poll's records come in runs of one
    /// partition, so most appends find their queue without hashing its name.
    private var lastAppended: (topic: String, partition: Int32, queue: Int)?
    private var blocked = false
    /// Records queued in all partitions.
    private(set) var count = 0
    let maxIdle: Duration

    init(maxIdle: Duration) {
        self.maxIdle = maxIdle
    }

    var isEmpty: Bool { count == 0 }

    /// Starts tracking a newly assigned partition (reading from `nextOffset`, if known).
    /// - Parameter expectedOffset: the offset its first record should have (see `append`).
    mutating func assign(_ partition: TopicPartition, nextOffset: Int64?, expectedOffset: Int64? = nil) {
        if let index = indexOf[partition] {
            count -= queues[index].count
            queues[index].removeAll()
            queues[index].nextOffset = nextOffset
            queues[index].expectedOffset = expectedOffset
            queues[index].lastHandedOut = nil
            queues[index].waitingSince = nil
            rebuild()
        } else {
            indexOf[partition] = queues.count
            queues.append(Queue(partition: partition, nextOffset: nextOffset, expectedOffset: expectedOffset))
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
        lastAppended = nil
        let order = queues.indices.sorted { queues[$0].partition < queues[$1].partition }
        for (rank, index) in order.enumerated() { queues[index].rank = rank }
        heap.removeAll()
        for index in queues.indices {
            queues[index].inHeap = false
            if !queues[index].isEmpty { push(index) }
        }
    }

    /// Queues `entry`; returns the offsets skipped before it, when its partition's records
    /// did not follow on from the expected offset (the broker no longer had them).
    @discardableResult
    mutating func append(_ entry: consuming Entry) -> ClosedRange<Int64>? {
        let index = queueIndex(entry.record.topic, entry.record.partition)
        let offset = entry.record.offset
        var skipped: ClosedRange<Int64>?
        if let expected = queues[index].expectedOffset, offset > expected { skipped = expected...(offset - 1) }
        queues[index].expectedOffset = offset + 1
        queues[index].nextOffset = offset + 1
        queues[index].append(entry)
        queues[index].waitingSince = nil
        count += 1
        if !queues[index].inHeap { push(index) }
        return skipped
    }

    private mutating func queueIndex(_ topic: String, _ partition: Int32) -> Int {
        if let last = lastAppended, last.partition == partition, last.topic == topic { return last.queue }
        let key = TopicPartition(topic, partition)
        if indexOf[key] == nil { assign(key, nextOffset: nil) }
        let index = indexOf[key] ?? 0  // assigned just above
        lastAppended = (topic, partition, index)
        return index
    }

    /// The offset of the oldest record still queued for `partition`.
    func firstQueuedOffset(_ partition: TopicPartition) -> Int64? {
        guard let index = indexOf[partition], !queues[index].isEmpty else { return nil }
        return queues[index].keys[queues[index].head].offset
    }

    /// The offset of the last record handed out from `partition` since it was assigned.
    func lastHandedOut(_ partition: TopicPartition) -> Int64? {
        indexOf[partition].flatMap { queues[$0].lastHandedOut }
    }

    /// Every tracked partition that has handed out a record, with the last one's offset.
    var handedOut: [(partition: TopicPartition, offset: Int64)] {
        queues.compactMap { queue in queue.lastHandedOut.map { (queue.partition, $0) } }
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
        guard let index = heap.first?.queue, !blocked || force, let entry = queues[index].removeFirst() else { return nil }
        count -= 1
        if queues[index].isEmpty {
            heap.removeFirst()
            queues[index].inHeap = false
            if !force, holdsBack(index, now: now, highWatermark: highWatermark) { blocked = true }
        } else {
            heap.replaceFirst(with: Head(key: key(index), queue: index))
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
        let head = queues[index].keys[queues[index].head]
        return Key(time: head.time, rank: queues[index].rank, offset: head.offset)
    }

    private mutating func push(_ index: Int) {
        queues[index].inHeap = true
        heap.insert(Head(key: key(index), queue: index))
    }
}
