import EventLog
import Synchronization

/// The `Idempotency-Key`s the write API saw recently, so that a retried request produces
/// no second record: what each produced (its event id) and where Kafka wrote it.
///
/// In memory, per process, bounded: at most `capacity` keys, each forgotten after
/// `lifetime`. A retry the process no longer remembers (after a restart, or beyond those
/// bounds) produces a second record with the same event id, which the projection ignores
/// as a duplicate (its event-id window holds the last million ids per partition).
final class IdempotencyKeys: Sendable {
    /// What a request holding an idempotency key should do.
    enum Claim: Equatable {
        /// First seen (or forgotten): produce; then `written` or `release`.
        case fresh
        /// The same request is still being produced (a concurrent retry): 409.
        case inFlight
        /// The same request was written there: answer as for it, produce nothing.
        case written(LogPosition)
        /// The key was used for a different request (another route, chat or body): 422.
        case reused
    }

    private struct Entry {
        var eventId: String
        var position: LogPosition?
        var created: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Keys in the order they were claimed, for eviction; `head` is the oldest still listed.
        var order: [String] = []
        var head = 0
    }

    let capacity: Int
    let lifetime: Duration
    private let state = Mutex(State())

    init(capacity: Int = 100_000, lifetime: Duration = .seconds(24 * 3600)) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
    }

    /// Claims `key` for a request that makes `eventId` (derived from the key and the request,
    /// so equal requests make equal ids).
    func claim(_ key: String, eventId: String, now: ContinuousClock.Instant = .now) -> Claim {
        state.withLock { state in
            evict(&state, now: now)
            if let entry = state.entries[key] {
                guard entry.eventId == eventId else { return .reused }
                return entry.position.map(Claim.written) ?? .inFlight
            }
            state.entries[key] = Entry(eventId: eventId, position: nil, created: now)
            state.order.append(key)
            return .fresh
        }
    }

    /// Records where the claimed request's event was written.
    func written(_ key: String, at position: LogPosition) {
        state.withLock { $0.entries[key]?.position = position }
    }

    /// Forgets a claim whose event was not written, so a retry produces it.
    func release(_ key: String) {
        state.withLock { state in
            if state.entries[key]?.position == nil { state.entries[key] = nil }
        }
    }

    /// Keys remembered now.
    var count: Int { state.withLock { $0.entries.count } }

    private func evict(_ state: inout State, now: ContinuousClock.Instant) {
        while state.head < state.order.count {
            let key = state.order[state.head]
            guard let entry = state.entries[key] else {
                state.head += 1  // released earlier
                continue
            }
            guard state.entries.count > capacity - 1 || now - entry.created > lifetime else { break }
            state.entries[key] = nil
            state.head += 1
        }
        // Compact now and then, so the order list does not grow without bound.
        if state.head > 1_024, state.head * 2 > state.order.count {
            state.order.removeFirst(state.head)
            state.head = 0
        }
    }
}
