import Synchronization

/// A change stream that holds only while its partition stays where it was: this
/// instance's own stream once the partition is no longer its own, or a relay once the
/// partition left the instance it relays, gives the client `event: reconnect` and ends
/// (the connection closes), instead of a stream that silently stops changing.
final class OwnedStream: HTTPStream {
    private let inner: any HTTPStream
    private let stillOwned: @Sendable () -> Bool
    private let onLost: @Sendable () -> Void
    private let ended = Atomic<Bool>(false)

    /// - Parameter onLost: called once when `stillOwned` first says no (a relay ends its connection).
    init(_ inner: any HTTPStream, stillOwned: @escaping @Sendable () -> Bool, onLost: @escaping @Sendable () -> Void = {}) {
        self.inner = inner
        self.stillOwned = stillOwned
        self.onLost = onLost
    }

    func poll() -> [UInt8] {
        if ended.load(ordering: .acquiring) { return [] }
        guard stillOwned() else {
            ended.store(true, ordering: .releasing)
            onLost()
            return RelayStream.reconnectEvent
        }
        return inner.poll()
    }

    /// Once it has said `reconnect` (or the stream it wraps ended), the connection closes:
    /// a client reconnects when the body ends, and must not be kept on a stream that will
    /// never change again.
    var isFinished: Bool { ended.load(ordering: .acquiring) || inner.isFinished }
}
