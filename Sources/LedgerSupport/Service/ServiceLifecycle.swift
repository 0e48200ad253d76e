/// Where a service is in its life. Each move is a `mutating` transition that rejects an
/// illegal one: a service starts once, and stopping is done once (a second `stop` is a
/// no-op, as is stopping one that never started).
package enum ServiceLifecycle: Sendable, Equatable {
    /// Made, not started.
    case idle
    /// Started; its threads run.
    case running
    /// Stopped (or never started and now never will): its threads are joined.
    case stopped

    /// An illegal move: starting a service that is not idle.
    package struct IllegalTransition: Error, Sendable, CustomStringConvertible {
        /// The state the move was tried from.
        package let from: ServiceLifecycle
        package var description: String { "a service can start only once (it is \(from))" }
    }

    /// idle → running.
    /// - Throws: `IllegalTransition` from any other state.
    package mutating func start() throws(IllegalTransition) {
        guard self == .idle else { throw IllegalTransition(from: self) }
        self = .running
    }

    /// → stopped. Returns true only on the move from `running`: the caller then stops the
    /// work and joins its threads, exactly once.
    package mutating func stop() -> Bool {
        defer { self = .stopped }
        return self == .running
    }
}
