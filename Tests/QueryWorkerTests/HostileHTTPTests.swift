#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KafkaTestSupport
import QueryWorker
import Testing

/// The hostile-HTTP corpus over real loopback sockets: each request gets the right status
/// (or the connection is closed), and a normal kept-alive client is served after every one.
@Suite("Hostile HTTP over real sockets")
struct HostileHTTPTests {
    static let tenThousandHeaders = "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Many: v\r\n", count: 10_000) + "\r\n"

    static let corpus: [(name: String, request: String, status: String)] = [
        ("10,000 headers", tenThousandHeaders, "431"),
        ("an oversize request line", "GET /" + String(repeating: "a", count: 20_000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
        ("oversize headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 40_000) + "\r\n\r\n", "431"),
        ("Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
        ("duplicate Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", "400"),
        ("negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400"),
        ("overflowing Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 184467440737095516160\r\n\r\n", "400"),
        ("a body over the limit", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", "413"),
        ("bare LF", "GET / HTTP/1.1\nHost: x\n\n", "400"),
        ("NUL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\u{0}b\r\n\r\n", "400"),
        ("whitespace before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400"),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n\r\n", "400"),
        ("no Host", "GET / HTTP/1.1\r\n\r\n", "400"),
        ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"),
        ("chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "501"),
        ("binary garbage", "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\u{fc}\u{3}\u{3}\r\n\r\n", "400"),
    ]

    static func server(_ adjust: (inout HTTPServer.Configuration) -> Void = { _ in }) throws -> (HTTPServer, UInt16) {
        try HTTPServerTests.server(adjust)
    }

    /// A normal request on a kept-alive connection is answered.
    static func normalClientServed(_ normal: LoopbackClient) -> Bool {
        normal.send("GET /normal HTTP/1.1\r\nHost: x\r\n\r\n")
        return normal.readResponses(1).first?.hasSuffix("you asked for /normal") == true
    }

    @Test("each hostile request gets its status and the connection closes; a normal client is served after every one")
    func corpusOverSockets() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let normal = try LoopbackClient(port: port)
        defer { normal.close() }
        for entry in Self.corpus {
            let client = try LoopbackClient(port: port)
            defer { client.close() }
            client.send(entry.request)
            let response = client.readToEnd()  // returns only once the server closes
            #expect(response.hasPrefix("HTTP/1.1 \(entry.status) "), "\(entry.name): \(response.prefix(60))")
            #expect(response.contains("Connection: close"), "\(entry.name)")
            #expect(response.contains(#"{"error":{"code":"#), "\(entry.name): a JSON error")
            #expect(Self.normalClientServed(normal), "after \(entry.name)")
        }
    }

    @Test("slowloris: a head trickled a byte at a time gets 408 once the header timeout passes, however steady the trickle")
    func slowloris() throws {
        let (server, port) = try Self.server { $0.headerTimeoutMilliseconds = 300 }
        defer { server.stop() }
        let normal = try LoopbackClient(port: port)
        defer { normal.close() }
        let slow = try LoopbackClient(port: port)
        defer { slow.close() }
        let head = Array("GET / HTTP/1.1\r\nHost: x\r\nX-Drip: " + String(repeating: "d", count: 200))
        var sent = 0
        var pollEntry = pollfd(fd: slow.fd, events: Int16(POLLIN), revents: 0)
        // One byte every 20 ms (the trickle's pace, not synchronisation) until the server answers.
        while sent < head.count, poll(&pollEntry, 1, 20) == 0 {
            slow.send(String(head[sent]))
            sent += 1
        }
        #expect(sent < head.count, "the server answered before the trickle ended")
        #expect(slow.readToEnd().hasPrefix("HTTP/1.1 408 "))
        #expect(Self.normalClientServed(normal))
    }

    @Test("pipelined valid and invalid requests: the valid ones before the bad one are answered in order, the bad one gets 400, nothing after it")
    func pipelinedMix() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\nHost : x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        let responses = LoopbackClient.split(client.readToEnd())
        #expect(responses.count == 3)
        #expect(responses[0].hasSuffix("/one") && responses[1].hasSuffix("/two"))
        #expect(responses[2].hasPrefix("HTTP/1.1 400 "))
    }

    @Test("half-closed connections: a whole request then FIN is answered and closed; a partial request then FIN is closed without a crash")
    func halfClosed() throws {
        let (server, port) = try Self.server()
        defer { server.stop() }
        let whole = try LoopbackClient(port: port)
        defer { whole.close() }
        whole.send("GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        shutdown(whole.fd, Int32(SHUT_WR))
        #expect(whole.readToEnd().hasSuffix("you asked for /whole"))
        let partial = try LoopbackClient(port: port)
        defer { partial.close() }
        partial.send("GET /part")
        shutdown(partial.fd, Int32(SHUT_WR))
        #expect(partial.readToEnd().isEmpty)
        let normal = try LoopbackClient(port: port)
        defer { normal.close() }
        #expect(Self.normalClientServed(normal))
    }

    @Test("5,000 idle connections are held without starving a normal client")
    func fiveThousandIdle() throws {
        let (server, port) = try Self.server { $0.maxConnections = 6_000 }
        defer { server.stop() }
        var idle: [LoopbackClient] = []
        defer { for client in idle { client.close() } }
        for _ in 0..<5_000 { idle.append(try LoopbackClient(port: port)) }
        let normal = try LoopbackClient(port: port)
        defer { normal.close() }
        #expect(Self.normalClientServed(normal))
        // The idle ones are still open and usable.
        #expect(Self.normalClientServed(idle[0]) && Self.normalClientServed(idle[4_999]))
    }
}
