#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Synchronization
import Testing

@Suite("HTTPServer on loopback sockets")
struct HTTPServerTests {
    static func server(_ adjust: (inout HTTPServer.Configuration) -> Void = { _ in }) throws -> (HTTPServer, UInt16) {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        adjust(&configuration)
        let server = HTTPServer(configuration: configuration) { head, _ in
            .response(HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array("you asked for \(head.target)".utf8)))
        }
        return (server, try server.start())
    }

    @Test("a request is answered and the kept-alive connection serves the next one")
    func keepAlive() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = client.readResponses(1)
        #expect(first.first?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        #expect(first.first?.hasSuffix("you asked for /a") == true)
        client.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(client.readResponses(1).first?.hasSuffix("you asked for /b") == true)
    }

    @Test("pipelined requests in one packet are answered in order")
    func pipelining() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let responses = LoopbackClient.split(client.readToEnd())
        #expect(responses.map { $0.split(separator: " ").last.map(String.init) } == ["/1", "/2", "/3"])
    }

    @Test("a malformed request gets 400 with a JSON error, then the connection closes")
    func malformedCloses() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET / HTTP/1.1\nHost: x\n\n")
        let text = client.readToEnd()
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.contains("Connection: close"))
        #expect(text.hasSuffix(#"{"error":{"code":"bad_request","message":"bare LF in the request head"}}"#))
    }

    @Test("HTTP/1.0 without keep-alive is answered and closed")
    func http10Closes() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /old HTTP/1.0\r\n\r\n")
        let text = client.readToEnd()
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(text.contains("Connection: close"))
    }

    @Test("a head that does not arrive in time gets 408 and the connection closes (no slowloris)")
    func headerTimeout() throws {
        let (server, port) = try Self.server { $0.headerTimeoutMilliseconds = 300 }
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Drip: ")
        let text = client.readToEnd()  // blocks until the server gives up on the head
        #expect(text.hasPrefix("HTTP/1.1 408 Request Timeout"))
    }

    @Test("at the connection limit a new client takes the place of the connection idle longest; the others keep working")
    func connectionLimit() throws {
        let (server, port) = try Self.server { $0.maxConnections = 2 }
        defer { server.stop() }
        let first = try LoopbackClient(port: port)
        let second = try LoopbackClient(port: port)
        defer {
            first.close()
            second.close()
        }
        for client in [first, second] {
            client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponses(1).count == 1)
        }
        second.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n")  // now `first` has been idle longest
        #expect(second.readResponses(1).first?.hasSuffix("/again") == true)
        let third = try LoopbackClient(port: port)
        defer { third.close() }
        third.send("GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(third.readResponses(1).first?.hasSuffix("/third") == true)
        #expect(first.readToEnd().isEmpty, "the longest-idle connection made room: closed without a response")
        second.send("GET /still HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(second.readResponses(1).first?.hasSuffix("/still") == true)
    }

    @Test("limits answer 414 and 431 and close")
    func limits() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let long = try LoopbackClient(port: port)
        defer { long.close() }
        long.send("GET /" + String(repeating: "a", count: 10_000) + " HTTP/1.1\r\n")
        #expect(long.readToEnd().hasPrefix("HTTP/1.1 414"))
        let big = try LoopbackClient(port: port)
        defer { big.close() }
        big.send("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "b", count: 60_000) + "\r\n\r\n")
        #expect(big.readToEnd().hasPrefix("HTTP/1.1 431"))
    }

    @Test("stop closes idle connections and returns")
    func gracefulStop() throws {
        let (server, port) = try Self.server()
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(client.readResponses(1).count == 1)
        server.stop()
        #expect(client.readToEnd().isEmpty, "the idle connection was closed")
    }
}

@Suite("HTTPServer: deferred work and streams")
struct HTTPServerDeferredTests {
    /// A stream that sends what the test pushes.
    final class PushedStream: HTTPStream {
        private let pending = Mutex<[String]>(["first\n"])
        func push(_ text: String) { pending.withLock { $0.append(text) } }
        func poll() -> [UInt8] {
            Array(pending.withLock { pending in
                defer { pending = [] }
                return pending.joined()
            }.utf8)
        }
    }

    @Test("deferred work runs off the loop: while it blocks, other connections are served; then its response is sent, before what was pipelined after it")
    func deferredRunsOffTheLoop() throws {
        let gate = Semaphore()
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let server = HTTPServer(configuration: configuration) { head, _ in
            if head.target == "/slow" {
                return .deferred {
                    gate.wait()
                    return HTTPResponse(status: 200, body: Array("slow done".utf8))
                }
            }
            return .response(HTTPResponse(status: 200, body: Array("fast \(head.target)".utf8)))
        }
        let port = try server.start()
        defer { server.stop() }
        let blocked = try LoopbackClient(port: port)
        defer { blocked.close() }
        blocked.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let other = try LoopbackClient(port: port)
        defer { other.close() }
        other.send("GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(other.readToEnd().hasSuffix("fast /other"), "served while the deferred work blocks")
        gate.signal()
        let responses = LoopbackClient.split(blocked.readToEnd())
        #expect(responses.count == 2)
        #expect(responses.first?.hasSuffix("slow done") == true)
        #expect(responses.last?.hasSuffix("fast /after") == true)
    }

    @Test("a stream sends its head without Content-Length, then what it yields whenever the server is woken; quiet streams get heartbeats; stop() closes them")
    func streamSendsOnWake() throws {
        let stream = PushedStream()
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.streamHeartbeatMilliseconds = 200
        let server = HTTPServer(configuration: configuration) { _, _ in
            .stream(head: HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream")]), stream)
        }
        let port = try server.start()
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /changes HTTP/1.1\r\nHost: x\r\n\r\n")
        let start = client.readUntil("first\n")
        #expect(start.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"))
        #expect(!start.contains("Content-Length"))
        stream.push("second\n")
        server.wake()
        #expect(client.readUntil("second\n").contains("second\n"))
        #expect(client.readUntil(": keep-alive\n\n").contains(": keep-alive"), "a quiet stream sends a heartbeat comment")
        server.stop()
        _ = client.readToEnd()  // returns only because the server closed the stream
    }
}
