import ChatEvents
import EventLog
import LedgerSupport
import Synchronization

/// The live projection shared by the applying thread and query threads: the state under
/// one lock, and the snapshot cache invalidated in the same critical section as each
/// apply (lock order: projection, then cache), so no query can see a new version while
/// an old rendering is still cached.
public final class ProjectionStore: Sendable {
    /// Internal so that `ProjectionStore+*.swift` extensions read it under the same lock.
    let state: Mutex<ProjectionState>
    public let cache: SnapshotCache

    public init(_ initial: ProjectionState = ProjectionState(), cacheBytes: Int = 64 << 20) {
        state = Mutex(initial)
        cache = SnapshotCache(capacityBytes: cacheBytes)
    }

    /// Applies an event read from the log; see `ProjectionState.apply`.
    @discardableResult
    public func apply(_ event: Event, at position: LogPosition, chainHash: SHA256Digest = .zero) -> ProjectionState.Outcome {
        state.withLock { state in
            // An erasure names its device by digest: the cache knows it by id.
            var deviceId = event.deviceId
            if case .ledgerErased = event.payload, let named = state.device(named: event.deviceId) { deviceId = named }
            let outcome = state.apply(event, at: position, chainHash: chainHash)
            if case .applied(let version) = outcome { cache.invalidate(deviceId: deviceId, version: version) }
            return outcome
        }
    }

    /// Puts a device's state in place of the one held (see `ProjectionState.replaceDevice`).
    public func replaceDevice(_ deviceId: String, with device: DeviceProjection?) {
        state.withLock { state in
            state.replaceDevice(deviceId, with: device)
            cache.invalidate(deviceId: deviceId, version: device?.version ?? 0)
        }
    }

    /// Records a dead letter at `position`.
    public func skip(at position: LogPosition, chainHash: SHA256Digest = .zero) {
        state.withLock { $0.skip(at: position, chainHash: chainHash) }
    }

    /// Moves past a gap record at `position` (see `ProjectionState.pass`).
    public func pass(at position: LogPosition, chainHash: SHA256Digest = .zero) {
        state.withLock { $0.pass(at: position, chainHash: chainHash) }
    }

    /// A copy of the whole state (cheap: copy-on-write), for checkpoints and digests.
    public func snapshot() -> ProjectionState { state.withLock { $0 } }

    public func version(of deviceId: String) -> UInt64 { state.withLock { $0.version(of: deviceId) } }

    /// The log position a device's chat list reflects (see `ProjectionState.position(of:)`).
    public func position(of deviceId: String) -> LogPosition? { state.withLock { $0.position(of: deviceId) } }

    /// How far a partition has been applied, nil if not at all.
    public func appliedOffset(partition: Int32) -> Int64? { state.withLock { $0.positions[partition] } }

    /// The last applied offset of every partition.
    public var appliedOffsets: [Int32: Int64] { state.withLock { $0.positions } }

    /// How many devices the projection holds.
    public var deviceCount: Int { state.withLock { $0.devices.count } }

    /// One device's state, copied out (copy-on-write) with its version.
    public func device(_ deviceId: String) -> DeviceProjection? { state.withLock { $0.devices[deviceId] } }

    /// A page of a device's chat list, from the cache when it holds the current rendering.
    /// - Throws: `ChatListRenderer.InvalidCursor` for a cursor that is not one of ours.
    public func chatList(_ deviceId: String, query: ChatListQuery, now: Int64) throws(ChatListRenderer.InvalidCursor) -> RenderedView {
        let found = lookup(deviceId, SnapshotCache.Key(deviceId: deviceId, view: query.viewKey), now: now)
        if let hit = found.hit { return hit }
        return fill(found, try ChatListRenderer.chatList(found.device, deviceId: deviceId, query: query, now: now))
    }

    /// One chat, nil if the device has no such chat.
    public func chat(_ deviceId: String, chatId: String, now: Int64) -> RenderedView? {
        let found = lookup(deviceId, SnapshotCache.Key(deviceId: deviceId, view: "chat:" + chatId), now: now)
        if let hit = found.hit { return hit }
        return ChatListRenderer.chat(found.device, chatId: chatId, now: now).map { fill(found, $0) }
    }

    /// Unread totals of a device.
    public func unread(_ deviceId: String, now: Int64) -> RenderedView {
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
        state.withLock { state in
            let position = state.position(of: deviceId)
            if var hit = cache.lookup(key, now: now) {
                hit.position = position
                return Lookup(key: key, hit: hit, position: position)
            }
            return Lookup(key: key, device: state.devices[deviceId], position: position)
        }
    }

    /// Caches a view rendered (outside the lock) from a lookup's device copy; the cache
    /// refuses it if the device moved on meanwhile.
    private func fill(_ lookup: Lookup, _ rendered: RenderedView) -> RenderedView {
        cache.store(lookup.key, rendered)
        var answered = rendered
        answered.position = lookup.position
        return answered
    }
}
