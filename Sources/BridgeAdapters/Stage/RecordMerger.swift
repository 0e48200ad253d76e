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
        var entries: [Entry] = []
        var head = 0
        /// The offset after the last record queued (or the group's committed offset).
        var nextOffset: Int64?
        /// Since when the merger has been waiting for this empty partition.
        var waitingSince: ContinuousClock.Instant?

        var isEmpty: Bool { head >= entries.count }
        var count: Int { entries.count - head }
        var first: Entry? { isEmpty ? nil : entries[head] }

        mutating func removeFirst() -> Entry {
            let entry = entries[head]
            head += 1
            if head > 1024, head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
            return entry
        }
    }

    private var partitions: [TopicPartition] = []
    private var queues: [Queue] = []
    private var indexOf: [TopicPartition: Int] = [:]
    /// The partition handed out last and the key of the next-best head: its records that
    /// sort before that key go out without another scan (valid until the queues change).
    private var run: (index: Int, limit: Key?)?
    /// Records queued in all partitions.
    private(set) var count = 0
    let maxIdle: Duration

    private struct Key: Comparable {
        var time: Int64
        var topic: String
        var partition: Int32
        var offset: Int64

        static func < (lhs: Key, rhs: Key) -> Bool {
            if lhs.time != rhs.time { return lhs.time < rhs.time }
            if lhs.topic != rhs.topic { return lhs.topic < rhs.topic }
            if lhs.partition != rhs.partition { return lhs.partition < rhs.partition }
            return lhs.offset < rhs.offset
        }
    }

    init(maxIdle: Duration) {
        self.maxIdle = maxIdle
    }

    var isEmpty: Bool { count == 0 }

    /// Partitions tracked.
    var tracked: [TopicPartition] { partitions }

    /// Starts tracking a newly assigned partition (reading from `nextOffset`, if known).
    mutating func assign(_ partition: TopicPartition, nextOffset: Int64?) {
        run = nil
        if let index = indexOf[partition] {
            count -= queues[index].count
            queues[index] = Queue(nextOffset: nextOffset)
        } else {
            indexOf[partition] = queues.count
            partitions.append(partition)
            queues.append(Queue(nextOffset: nextOffset))
        }
    }

    /// Forgets partitions taken away, with their queued records.
    mutating func revoke(_ revoked: [TopicPartition]) {
        run = nil
        let gone = Set(revoked)
        for (index, partition) in partitions.enumerated() where gone.contains(partition) { count -= queues[index].count }
        let kept = partitions.indices.filter { !gone.contains(partitions[$0]) }
        queues = kept.map { queues[$0] }
        partitions = kept.map { partitions[$0] }
        indexOf = Dictionary(uniqueKeysWithValues: partitions.enumerated().map { ($1, $0) })
    }

    mutating func append(_ entry: Entry) {
        run = nil
        let partition = TopicPartition(entry.record.topic, entry.record.partition)
        if indexOf[partition] == nil { assign(partition, nextOffset: nil) }
        let index = indexOf[partition]!
        queues[index].entries.append(entry)
        queues[index].nextOffset = entry.record.offset + 1
        queues[index].waitingSince = nil
        count += 1
    }

    /// Forgets the current run: the broker's watermarks may have moved since it was chosen.
    mutating func rescan() { run = nil }

    /// The offset of the oldest record still queued for `partition`.
    func firstQueuedOffset(_ partition: TopicPartition) -> Int64? {
        indexOf[partition].flatMap { queues[$0].first?.record.offset }
    }

    private func headKey(_ index: Int) -> Key? {
        guard !queues[index].isEmpty else { return nil }
        let entry = queues[index].entries[queues[index].head]
        return Key(time: entry.time, topic: entry.record.topic, partition: entry.record.partition, offset: entry.record.offset)
    }

    private mutating func pop(_ index: Int) -> Entry {
        count -= 1
        return queues[index].removeFirst()
    }

    /// The next record in time order, or nil when none may go yet.
    /// - Parameters:
    ///   - highWatermark: the broker's next offset of a partition, as last fetched.
    ///   - force: hand out the oldest head regardless of partitions still fetching (to
    ///     bound memory, or when stopping).
    mutating func next(now: ContinuousClock.Instant, highWatermark: (TopicPartition) -> Int64?, force: Bool = false) -> Entry? {
        guard count > 0 else { return nil }
        if let current = run, let key = headKey(current.index), current.limit.map({ key < $0 }) ?? true {
            return pop(current.index)
        }
        var best: (index: Int, key: Key)?
        var runnerUp: Key?
        var blocked = false
        for index in queues.indices {
            guard let key = headKey(index) else {
                guard !force, !blocked else { continue }
                // An empty partition that still has records on the broker may hold an older one.
                let behind: Bool
                if let high = highWatermark(partitions[index]) {
                    behind = (queues[index].nextOffset ?? 0) < high
                } else {
                    behind = queues[index].nextOffset == nil
                }
                guard behind else { continue }
                if let since = queues[index].waitingSince {
                    if now - since < maxIdle { blocked = true }
                } else {
                    queues[index].waitingSince = now
                    blocked = true
                }
                continue
            }
            if let current = best {
                if key < current.key {
                    runnerUp = current.key
                    best = (index, key)
                } else if runnerUp.map({ key < $0 }) ?? true {
                    runnerUp = key
                }
            } else {
                best = (index, key)
            }
        }
        guard let best, !blocked || force else {
            run = nil
            return nil
        }
        run = force ? nil : (best.index, runnerUp)
        return pop(best.index)
    }
}
