#if canImport(Glibc)
import Glibc
#endif
import KafkaTestSupport
import QueryWorker
import Synchronization
import Testing

/// `HTTPServer.Configuration.loops`: the first loop accepts and hands each new connection
/// to the loops in turn. Every kind of answer must behave the same on whichever loop a
/// connection lands: parked requests released by `wake()`, deferred work finished on a
/// worker thread, streams fed on wake, heartbeats and head timeouts.
@Suite("HTTPServer with several loops")
struct MultiLoopTests {
    final class Shared: Sendable {
        let released = Atomic<Bool>(false)
        /// How many times a parked request was asked before its release.
        let parkedAsks = Atomic<Int>(0)
        let pushes = Mutex<Int>(0)
        /// The threads (loops) that answered a request.
        let loops = Mutex<Set<UInt>>([])
    }

    final class PushStream: HTTPStream {
        let shared: Shared
        private let sent = Mutex<Int>(-1)
        init(_ shared: Shared) { self.shared = shared }
        func poll() -> [UInt8] {
            let now = shared.pushes.withLock { $0 }
            return sent.withLock { sent in
                guard sent != now else { return [] }
                sent = now
                return Array("push \(now)\n".utf8)
            }
        }
    }

    @Test("on two loops, each connection's parked request, deferred work, stream and head timeout behave as on one; both loops serve")
    func everyLoopBehavesTheSame() throws {
        let shared = Shared()
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.loops = 2
        configuration.headerTimeoutMilliseconds = 300
        configuration.streamHeartbeatMilliseconds = 200
        let server = HTTPServer(configuration: configuration) { head, _ in
            shared.loops.withLock { _ = $0.insert(UInt(pthread_self())) }
            switch head.target {
            case "/parked":
                guard shared.released.load(ordering: .acquiring) else {
                    shared.parkedAsks.add(1, ordering: .relaxed)
                    return .retry(deadline: .now + .seconds(20), fallback: HTTPResponse(status: 503, body: Array("not released".utf8)))
                }
                return .response(HTTPResponse(status: 200, body: Array("released".utf8)))
            case "/deferred":
                return .deferred { HTTPResponse(status: 200, body: Array("deferred done".utf8)) }
            case "/stream":
                return .stream(head: HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream")]), PushStream(shared))
            default:
                return .response(HTTPResponse(status: 404))
            }
        }
        let port = try server.start()
        defer { server.stop() }
        let clients = try (0..<8).map { _ in try LoopbackClient(port: port) }
        defer { for client in clients { client.close() } }

        for client in clients { client.send("GET /parked HTTP/1.1\r\nHost: x\r\n\r\nGET /deferred HTTP/1.1\r\nHost: x\r\n\r\n") }
        // Every request is parked before it is released.
        let parkedBy = ContinuousClock.now + .seconds(10)
        while shared.parkedAsks.load(ordering: .relaxed) < clients.count, ContinuousClock.now < parkedBy { usleep(1_000) }
        #expect(shared.parkedAsks.load(ordering: .relaxed) >= clients.count, "every connection's request was parked")
        shared.released.store(true, ordering: .releasing)
        server.wake()
        for (index, client) in clients.enumerated() {
            let responses = client.readResponses(2)
            #expect(responses.first?.hasSuffix("released") == true, "connection \(index): the parked request, released by wake()")
            #expect(responses.last?.hasSuffix("deferred done") == true, "connection \(index): the deferred work, after it")
        }
        #expect(shared.loops.withLock { $0.count } == 2, "both loops answered requests")

        let streams = try (0..<4).map { _ in try LoopbackClient(port: port) }
        defer { for client in streams { client.close() } }
        for client in streams {
            client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readUntil("push 0\n").contains("push 0\n"))
        }
        shared.pushes.withLock { $0 = 1 }
        server.wake()
        for (index, client) in streams.enumerated() {
            #expect(client.readUntil("push 1\n").contains("push 1\n"), "stream \(index) fed on wake")
            #expect(client.readUntil(": keep-alive\n\n").contains(": keep-alive"), "stream \(index) gets its heartbeat")
        }

        let slow = try (0..<4).map { _ in try LoopbackClient(port: port) }
        defer { for client in slow { client.close() } }
        for client in slow { client.send("GET /never HTTP/1.1\r\nHost: x\r\n") }
        for (index, client) in slow.enumerated() {
            #expect(client.readToEnd().hasPrefix("HTTP/1.1 408 Request Timeout"), "slow head \(index) timed out")
        }
    }

    @Test("a second server on the port fails to start, with several loops too")
    func portInUse() throws {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.loops = 2
        let first = HTTPServer(configuration: configuration) { _, _ in .response(HTTPResponse(status: 200)) }
        configuration.port = try first.start()
        defer { first.stop() }
        let second = HTTPServer(configuration: configuration) { _, _ in .response(HTTPResponse(status: 200)) }
        #expect(throws: HTTPServer.StartError.self) { _ = try second.start() }
    }
}
