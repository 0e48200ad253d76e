import ChatEvents
import EventLog
import LedgerSupport
import Synchronization

/// The live projection shared by the applying thread and query threads: the state and
/// its snapshot cache under one lock, so an applied event invalidates its device's
/// renderings in the same critical section and no query can see a new version while an
/// old rendering is still cached.
package final class ProjectionStore: Sendable {
    /// What the lock guards.
    struct Guarded {
        var projection: ProjectionState
        var cache: SnapshotCache
    }

    /// Internal so that `ProjectionStore+*.swift` extensions read it under the same lock.
    let guarded: Mutex<Guarded>

    package init(_ initial: ProjectionState = ProjectionState(), cacheBytes: Int = 64 << 20) {
        guarded = Mutex(Guarded(projection: initial, cache: SnapshotCache(capacityBytes: cacheBytes)))
    }

    /// The snapshot cache's counters.
    package var cacheCounters: SnapshotCache.Counters { guarded.withLock { $0.cache.counters } }

    /// Applies an event read from the log; see `ProjectionState.apply`.
    @discardableResult
    package func apply(_ event: Event, at position: LogPosition, chainHash: SHA256Digest = .zero) -> ProjectionState.Outcome {
        guarded.withLock { guarded in
            // An erasure names its device by digest: the cache knows it by id.
            var deviceId = event.deviceId
            if case .ledgerErased = event.payload, let named = guarded.projection.device(named: event.deviceId) { deviceId = named }
            let outcome = guarded.projection.apply(event, at: position, chainHash: chainHash)
            if case .applied = outcome { guarded.cache.invalidate(deviceId: deviceId) }
            return outcome
        }
    }

    /// Puts a device's state in place of the one held (see `ProjectionState.replaceDevice`).
    package func replaceDevice(_ deviceId: String, with device: DeviceProjection?) {
        guarded.withLock { guarded in
            guarded.projection.replaceDevice(deviceId, with: device)
            guarded.cache.invalidate(deviceId: deviceId)
        }
    }

    /// Whether any erased device left its version behind (`ProjectionState.erasedDeviceVersions`).
    package var holdsErasedDeviceVersions: Bool { guarded.withLock { !$0.projection.erasedDeviceVersions.isEmpty } }

    /// Takes a partition's devices and positions out (see `ProjectionState.dropPartition`);
    /// their cached renderings go with them. Returns how many devices were removed.
    @discardableResult
    package func dropPartition(_ partition: Int32, erasedDevices: [SHA256Digest] = []) -> Int {
        guarded.withLock { guarded in
            let removed = guarded.projection.dropPartition(partition, erasedDevices: erasedDevices)
            for deviceId in removed { guarded.cache.invalidate(deviceId: deviceId) }
            return removed.count
        }
    }

    /// Folds one stored record; see `ProjectionState.fold`. An applied event invalidates
    /// its device's cached snapshot in the same critical section.
    @discardableResult
    package func fold(_ record: StoredRecord, at position: LogPosition, chainHash: SHA256Digest = .zero) -> ProjectionState.Outcome? {
        if case .event(let event) = record { return apply(event, at: position, chainHash: chainHash) }
        return guarded.withLock { $0.projection.fold(record, at: position, chainHash: chainHash) }
    }

    /// The id of the device a `ledger.erased` event names (by digest), nil if none held.
    package func deviceId(named digestName: String) -> String? { guarded.withLock { $0.projection.device(named: digestName) } }

    /// A copy of the whole state (cheap: copy-on-write), for checkpoints and digests.
    package func snapshot() -> ProjectionState { guarded.withLock { $0.projection } }

    package func version(of deviceId: String) -> UInt64 { guarded.withLock { $0.projection.version(of: deviceId) } }

    /// The log position a device's chat list reflects (see `ProjectionState.position(of:)`).
    package func position(of deviceId: String) -> LogPosition? { guarded.withLock { $0.projection.position(of: deviceId) } }

    /// How far a partition has been applied, nil if not at all.
    package func appliedOffset(partition: Int32) -> Int64? { guarded.withLock { $0.projection.positions[partition] } }

    /// The last applied offset of every partition.
    package var appliedOffsets: [Int32: Int64] { guarded.withLock { $0.projection.positions } }

    /// How many devices the projection holds.
    package var deviceCount: Int { guarded.withLock { $0.projection.devices.count } }

    /// One device's state, copied out (copy-on-write) with its version.
    package func device(_ deviceId: String) -> DeviceProjection? { guarded.withLock { $0.projection.devices[deviceId] } }

    /// A page of a device's chat list, from the cache when it holds the current rendering.
    /// - Throws: `ChatListRenderer.InvalidCursor` for a cursor that is not one of ours.
    package func chatList(_ deviceId: String, query: ChatListQuery, now: Int64) throws(ChatListRenderer.InvalidCursor) -> RenderedView {
        let found = lookup(deviceId, SnapshotCache.Key(deviceId: deviceId, view: query.viewKey), now: now)
        if let hit = found.hit { return hit }
        return fill(found, try ChatListRenderer.chatList(found.device, deviceId: deviceId, query: query, now: now))
    }

    /// One chat, nil if the device has no such chat.
    package func chat(_ deviceId: String, chatId: String, now: Int64) -> RenderedView? {
        let found = lookup(deviceId, SnapshotCache.Key(deviceId: deviceId, view: "chat:" + chatId), now: now)
        if let hit = found.hit { return hit }
        return ChatListRenderer.chat(found.device, chatId: chatId, now: now).map { fill(found, $0) }
    }

    /// Whether the device has a chat under `chatId` (or an id aliased to it): exactly when
    /// `chat(_:chatId:now:)` finds one, without rendering it.
    package func hasChat(_ deviceId: String, chatId: String) -> Bool {
        guarded.withLock { $0.projection.devices[deviceId]?.chat(chatId) != nil }
    }

    /// The other ids of the device's chat `chatId` (`DeviceProjection.otherIds(ofChat:)`).
    package func otherIds(_ deviceId: String, ofChat chatId: String) -> [String] {
        guarded.withLock { $0.projection.devices[deviceId]?.otherIds(ofChat: chatId) ?? [] }
    }

    /// Unread totals of a device.
    package func unread(_ deviceId: String, now: Int64) -> RenderedView {
        let found = lookup(deviceId, SnapshotCache.Key(deviceId: deviceId, view: "unread"), now: now)
        if let hit = found.hit { return hit }
        return fill(found, ChatListRenderer.unread(found.device))
    }

    /// A cache lookup: the hit, or the device to render; either way the log position.
    private struct Lookup {
        var key: SnapshotCache.Key
        var hit: RenderedView?
        var device: DeviceProjection?
        var position: LogPosition?
    }

    /// Looks the view up with the position read under the same state lock, so no event can
    /// land between them: the position is exactly the one the view shows.
    private func lookup(_ deviceId: String, _ key: SnapshotCache.Key, now: Int64) -> Lookup {
        guarded.withLock { guarded in
            let position = guarded.projection.position(of: deviceId)
            if var hit = guarded.cache.lookup(key, now: now) {
                hit.position = position
                return Lookup(key: key, hit: hit, position: position)
            }
            return Lookup(key: key, device: guarded.projection.devices[deviceId], position: position)
        }
    }

    /// Caches a view rendered (outside the lock) from a lookup's device copy; the cache
    /// refuses it if the device moved on meanwhile.
    private func fill(_ lookup: Lookup, _ rendered: RenderedView) -> RenderedView {
        guarded.withLock { guarded in
            let current = guarded.projection.version(of: lookup.key.deviceId)
            guarded.cache.store(lookup.key, rendered, currentVersion: current)
        }
        var answered = rendered
        answered.position = lookup.position
        return answered
    }
}
