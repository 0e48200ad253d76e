/// The most recent event ids seen (as stable hashes), to make redelivered events no-ops.
///
/// Bounded: `capacity` ids, 24–40 bytes each (8 in the ring, 16–32 in the hash table,
/// which doubles when half full), so the default 1,000,000 costs 24–40 MB when full. A duplicate older than the window is applied
/// again; bridges and Kafka redeliver within seconds, far inside it. The window is part
/// of checkpoints, so a replay from a checkpoint decides duplicates as a replay from zero.
package struct EventIdWindow: Sendable, Hashable {
    package let capacity: Int
    /// Chunked, as `members` is: after a snapshot, an insert copies one chunk, not the ring.
    private(set) var ring = ChunkedWords()
    /// How many inserts ahead the slot of an id to be evicted is fetched.
    private static let evictionLookahead = 8
    private var next = 0
    private var members = HashSet64()

    package init(capacity: Int = 1_000_000) {
        self.capacity = max(1, capacity)
    }

    /// Records `eventId`; returns false if it was already in the window (a duplicate).
    package mutating func insert(_ eventId: String) -> Bool {
        insert(hash: stableHash(eventId))
    }

    /// Whether no id was recorded yet.
    var isEmpty: Bool { ring.isEmpty }

    /// Fetches the slot of an id (by its `stableHash`) into the cache ahead of its insert.
    func prefetch(hash: UInt64) {
        members.prefetch(hash)
    }

    /// `insert(_:)` of an id by its `stableHash`.
    mutating func insert(hash: UInt64) -> Bool {
        guard !members.contains(hash) else { return false }
        if ring.count < capacity {
            ring.append(hash)
        } else {
            members.remove(ring[next])
            ring[next] = hash
            next = (next + 1) % capacity
            // The ids to evict are known in advance: fetch the slot of one a few inserts
            // ahead, so its removal then finds it in the cache.
            members.prefetch(ring[(next + Self.evictionLookahead) % capacity])
        }
        members.insert(hash)
        return true
    }

    /// The ids in the window, oldest first (for checkpoints).
    var oldestFirst: [UInt64] {
        ring.count < capacity ? ring.array : ring.rotated(from: next)
    }

    /// Rebuilds a window from `oldestFirst` hashes.
    init(capacity: Int, oldestFirst: [UInt64]) {
        self.init(capacity: capacity)
        for hash in oldestFirst.suffix(self.capacity) {
            ring.append(hash)
            members.insert(hash)
        }
        next = ring.count % self.capacity
        if ring.count == self.capacity { next = 0 }
    }

    package static func == (lhs: EventIdWindow, rhs: EventIdWindow) -> Bool {
        lhs.capacity == rhs.capacity && lhs.oldestFirst == rhs.oldestFirst
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(capacity)
        hasher.combine(oldestFirst)
    }
}

/// One `EventIdWindow` per Kafka partition, each of `capacity` ids: whether an event is a
/// duplicate depends only on its own partition's events (a device's events, and so its
/// redeliveries, are all in one partition), so the live fold, which sees every partition
/// interleaved, and a replay of one partition at a time decide it alike.
///
/// Memory grows with the events seen: a partition's window fills to `capacity` ids
/// (24–40 bytes each) only after that many events of its own.
package struct PartitionedEventIdWindow: Sendable, Hashable {
    /// Ids kept per partition.
    package let capacity: Int
    /// Indexed by partition number: partitions are small, dense numbers, and an array
    /// reaches a window in place without hashing per event. A partition without events
    /// has an empty window.
    private var windows: [EventIdWindow] = []

    package init(capacity: Int = 1_000_000) {
        self.capacity = max(1, capacity)
    }

    /// The partitions that have seen events, ascending, each with its ids oldest first.
    var partitions: [(partition: Int32, oldestFirst: [UInt64])] {
        windows.indices.compactMap { index in windows[index].isEmpty ? nil : (Int32(index), windows[index].oldestFirst) }
    }

    /// Rebuilds the windows of a checkpoint.
    init(capacity: Int, partitions: [(partition: Int32, oldestFirst: [UInt64])]) {
        self.init(capacity: capacity)
        for (partition, hashes) in partitions where partition >= 0 {
            grow(to: Int(partition))
            windows[Int(partition)] = EventIdWindow(capacity: self.capacity, oldestFirst: hashes)
        }
    }

    /// Fetches the slot of an id into the cache ahead of its insert.
    func prefetch(hash: UInt64, partition: Int32) {
        guard partition >= 0, Int(partition) < windows.count else { return }
        windows[Int(partition)].prefetch(hash: hash)
    }

    /// Records an id (by its `stableHash`) seen on `partition`; false if that partition's
    /// window already holds it (a duplicate).
    mutating func insert(hash: UInt64, partition: Int32) -> Bool {
        let index = Int(max(0, partition))
        if index >= windows.count { grow(to: index) }
        return windows[index].insert(hash: hash)
    }

    /// Takes in another state's windows; false, taking nothing, if both have seen events
    /// of one partition.
    mutating func absorb(_ other: PartitionedEventIdWindow) -> Bool {
        for index in other.windows.indices where !other.windows[index].isEmpty {
            if index < windows.count, !windows[index].isEmpty { return false }
        }
        for index in other.windows.indices where !other.windows[index].isEmpty {
            grow(to: index)
            windows[index] = other.windows[index]
        }
        return true
    }

    /// Forgets every id seen on `partition` (its log was dropped, see `ProjectionState.dropPartition`).
    mutating func forget(partition: Int32) {
        guard partition >= 0, Int(partition) < windows.count else { return }
        windows[Int(partition)] = EventIdWindow(capacity: capacity)
    }

    private mutating func grow(to index: Int) {
        while windows.count <= index { windows.append(EventIdWindow(capacity: capacity)) }
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.capacity == rhs.capacity
            && lhs.partitions.elementsEqual(rhs.partitions) { $0.partition == $1.partition && $0.oldestFirst == $1.oldestFirst }
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(capacity)
        for (partition, hashes) in partitions {
            hasher.combine(partition)
            hasher.combine(hashes)
        }
    }
}
