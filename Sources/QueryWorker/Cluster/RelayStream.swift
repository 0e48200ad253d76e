#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport
import Synchronization

/// A change stream (SSE) relayed from the instance that owns the device: a thread reads
/// the owner's connection and the HTTP loop sends what it read. When the owner's stream
/// ends (it died, or gave the partition up) or ownership moves away from it, the client
/// gets a last event, `event: reconnect`, and the connection closes: reconnecting reaches the new owner.
package final class RelayStream: HTTPStream {
    /// With nothing (not even a heartbeat comment, every 15 s) from the owner for this
    /// long, the owner is taken for gone.
    static let silenceMilliseconds = 45_000

    /// The event a stream ends with when the instance serving it no longer can.
    package static let reconnectEvent = Array("event: reconnect\ndata: {\"reason\":\"ownership of this device moved; reconnect\"}\n\n".utf8)

    private struct Buffer {
        var bytes: [UInt8]
        /// The owner's connection is still open (the reader closes it when it ends).
        var open = true
    }

    private final class Shared: Sendable {
        let buffer: Mutex<Buffer>
        init(_ bytes: [UInt8]) { buffer = Mutex(Buffer(bytes: bytes)) }
    }

    private let fd: Int32
    private let shared: Shared
    private let reader: LedgerThread

    init(fd: Int32, buffered: [UInt8], wake: @escaping @Sendable () -> Void) {
        self.fd = fd
        let shared = Shared(buffered)
        self.shared = shared
        reader = LedgerThread(name: "chatledger-relay") {
            var input: [UInt8] = []
            var chunk = ClusterForwarder.readChunk()
            while ClusterForwarder.readSome(fd, into: &input, using: &chunk) > 0 {
                shared.buffer.withLock { $0.bytes += input }
                input.removeAll(keepingCapacity: true)
                wake()
            }
            shared.buffer.withLock {
                $0.bytes += RelayStream.reconnectEvent
                $0.open = false
                close(fd)
            }
            wake()
        }
        reader.start()
    }

    deinit {
        end()
        reader.join()
    }

    /// Ends the relay: the owner's connection is shut, and the client is told to reconnect.
    package func end() {
        shared.buffer.withLock { if $0.open { shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    package func poll() -> [UInt8] {
        shared.buffer.withLock { buffer in
            defer { buffer.bytes = [] }
            return buffer.bytes
        }
    }

    /// The owner's stream ended and its last bytes (`reconnectEvent`) were handed out.
    package var isFinished: Bool { shared.buffer.withLock { !$0.open && $0.bytes.isEmpty } }
}
