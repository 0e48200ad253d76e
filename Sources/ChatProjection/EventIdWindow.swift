/// The most recent event ids seen (as stable hashes), to make redelivered events no-ops.
///
/// Bounded: `capacity` ids, 24–40 bytes each (8 in the ring, 16–32 in the hash table,
/// which doubles when half full), so the default 1,000,000 costs 24–40 MB when full. A duplicate older than the window is applied
/// again; bridges and Kafka redeliver within seconds, far inside it. The window is part
/// of checkpoints, so a replay from a checkpoint decides duplicates as a replay from zero.
public struct EventIdWindow: Sendable, Hashable {
    public let capacity: Int
    private(set) var ring: [UInt64] = []
    /// How many inserts ahead the slot of an id to be evicted is fetched.
    private static let evictionLookahead = 8
    private var next = 0
    private var members = HashSet64()

    public init(capacity: Int = 1_000_000) {
        self.capacity = max(1, capacity)
    }

    /// Records `eventId`; returns false if it was already in the window (a duplicate).
    package mutating func insert(_ eventId: String) -> Bool {
        insert(hash: stableHash(eventId))
    }

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

    /// Adds another window's ids after this one's (oldest first), keeping the newest
    /// `capacity`.
    mutating func absorb(_ other: EventIdWindow) {
        // When the other window alone fills this one, none of this one's ids would stay:
        // taking it whole saves a million inserts at the end of a parallel replay.
        if other.capacity == capacity, other.ring.count == capacity {
            self = other
            return
        }
        for hash in other.oldestFirst { _ = insert(hash: hash) }
    }

    /// The ids in the window, oldest first (for checkpoints).
    var oldestFirst: [UInt64] {
        ring.count < capacity ? ring : Array(ring[next...] + ring[..<next])
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

    public static func == (lhs: EventIdWindow, rhs: EventIdWindow) -> Bool {
        lhs.capacity == rhs.capacity && lhs.oldestFirst == rhs.oldestFirst
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(capacity)
        hasher.combine(oldestFirst)
    }
}
