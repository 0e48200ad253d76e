import Synchronization

/// The API keys in force, replaceable while the server runs (key rotation without a
/// restart): every request authenticates against the keys current when it arrives.
package final class KeyRing: Sendable {
    private let current: Mutex<(keys: APIKeys, generation: Int)>
    /// Called after each replacement (the server is woken, so change streams look at their key).
    private let observers = Mutex<[@Sendable () -> Void]>([])

    /// A ring holding `keys` as generation 1.
    package init(_ keys: APIKeys) {
        current = Mutex((keys, 1))
    }

    /// How many key sets have been in force: 1 at start, one more per replacement.
    package var generation: Int { current.withLock { $0.generation } }

    /// The grant of a presented key under the current keys; nil for an unknown one.
    package func authenticate(_ presented: String) -> APIKeys.Grant? {
        let keys = current.withLock { $0.keys }
        return keys.authenticate(presented)
    }

    /// Puts `keys` in force; returns the new generation.
    @discardableResult
    package func replace(with keys: APIKeys) -> Int {
        let generation = current.withLock { state in
            state = (keys, state.generation + 1)
            return state.generation
        }
        for observer in observers.withLock({ $0 }) { observer() }
        return generation
    }

    /// Calls `action` after every replacement.
    package func onReplace(_ action: @escaping @Sendable () -> Void) {
        observers.withLock { $0.append(action) }
    }
}
