/// Rendered JSON per (device, view), which can never be served stale.
///
/// A value with no lock of its own: its owner (`ProjectionStore`) keeps it under the
/// projection's lock, so an applied event and the invalidation of its device's renderings
/// are one critical section, and the cache keeps no copy of any device's version: a fill
/// (`store`) is given the device's current version, read under that same lock, and is
/// refused if the rendering was made at another one (a reader that rendered from old
/// state while an event was applied cannot store its stale bytes afterwards, the "stale
/// set" race memcache leases exist for). Entries also expire when a mute in them does.
/// Bounded by bytes, least recently used evicted first; lookups are a hash probe and a
/// copy of the bytes' reference.
package struct SnapshotCache: Sendable {
    package struct Key: Hashable, Sendable {
        package var deviceId: String
        package var view: String

        package init(deviceId: String, view: String) {
            self.deviceId = deviceId
            self.view = view
        }
    }

    package struct Counters: Sendable, Hashable {
        package var hits = 0
        package var misses = 0
        package var invalidations = 0
        package var evictions = 0
        /// Fills refused because the device moved on while they were rendered.
        package var staleFillsRejected = 0
        package var entries = 0
        package var bytes = 0
    }

    private struct Slot {
        var key: Key
        var view: RenderedView
        var previous: Int
        var next: Int
    }

    private struct State {
        var slots: [Slot] = []
        var free: [Int] = []
        var index: [Key: Int] = [:]
        var viewsByDevice: [String: Set<String>] = [:]
        var head = -1  // most recently used
        var tail = -1  // least recently used
        var counters = Counters()
    }

    package let capacityBytes: Int
    private var state = State()

    /// A cache holding at most `capacityBytes` of rendered JSON.
    package init(capacityBytes: Int = 64 << 20) {
        self.capacityBytes = capacityBytes
    }

    /// The cached rendering, if one exists for the device's current version and is not
    /// past its `validUntil` at `now`.
    package mutating func lookup(_ key: Key, now: Int64) -> RenderedView? {
        guard let slot = state.index[key] else {
            state.counters.misses += 1
            return nil
        }
        let view = state.slots[slot].view
        if let validUntil = view.validUntil, now >= validUntil {
            Self.remove(slot, from: &state)
            state.counters.misses += 1
            return nil
        }
        Self.moveToFront(slot, in: &state)
        state.counters.hits += 1
        return view
    }

    /// Stores a rendering made at `view.version`; refused (returns false) if the device's
    /// version is `currentVersion` now, another one: it moved on while the view was rendered.
    @discardableResult
    package mutating func store(_ key: Key, _ view: RenderedView, currentVersion: UInt64) -> Bool {
        guard view.bytes.count <= capacityBytes else { return false }
        if currentVersion != view.version {
            state.counters.staleFillsRejected += 1
            return false
        }
        if let existing = state.index[key] { Self.remove(existing, from: &state) }
        let slot = Slot(key: key, view: view, previous: -1, next: state.head)
        let position: Int
        if let reused = state.free.popLast() {
            state.slots[reused] = slot
            position = reused
        } else {
            state.slots.append(slot)
            position = state.slots.count - 1
        }
        if state.head >= 0 { state.slots[state.head].previous = position }
        state.head = position
        if state.tail < 0 { state.tail = position }
        state.index[key] = position
        state.viewsByDevice[key.deviceId, default: []].insert(key.view)
        state.counters.entries += 1
        state.counters.bytes += view.bytes.count
        while state.counters.bytes > capacityBytes, state.tail >= 0 {
            Self.remove(state.tail, from: &state)
            state.counters.evictions += 1
        }
        return true
    }

    /// Called for every event applied to a device: drops every rendering of it.
    package mutating func invalidate(deviceId: String) {
        state.counters.invalidations += 1
        guard let views = state.viewsByDevice[deviceId] else { return }
        for view in views {
            if let slot = state.index[Key(deviceId: deviceId, view: view)] { Self.remove(slot, from: &state) }
        }
    }

    package var counters: Counters { state.counters }

    // MARK: - LRU list

    private static func unlink(_ slot: Int, in state: inout State) {
        let previous = state.slots[slot].previous
        let next = state.slots[slot].next
        if previous >= 0 { state.slots[previous].next = next } else { state.head = next }
        if next >= 0 { state.slots[next].previous = previous } else { state.tail = previous }
    }

    private static func moveToFront(_ slot: Int, in state: inout State) {
        guard state.head != slot else { return }
        unlink(slot, in: &state)
        state.slots[slot].previous = -1
        state.slots[slot].next = state.head
        if state.head >= 0 { state.slots[state.head].previous = slot }
        state.head = slot
        if state.tail < 0 { state.tail = slot }
    }

    private static func remove(_ slot: Int, from state: inout State) {
        unlink(slot, in: &state)
        let key = state.slots[slot].key
        state.counters.entries -= 1
        state.counters.bytes -= state.slots[slot].view.bytes.count
        state.slots[slot].view.bytes = []
        state.index[key] = nil
        state.viewsByDevice[key.deviceId]?.remove(key.view)
        if state.viewsByDevice[key.deviceId]?.isEmpty == true { state.viewsByDevice[key.deviceId] = nil }
        state.free.append(slot)
    }
}
