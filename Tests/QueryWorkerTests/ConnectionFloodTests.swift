#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Testing

/// Connection floods over real loopback sockets: at the limit an idle connection makes
/// room for a new one, and a client whose connection is closed after an error or a refusal
/// reads its response and a clean end, not a reset.
@Suite("HTTPServer under connection floods", .serialized)
struct ConnectionFloodTests {
    /// What a client read until the connection ended, and whether it ended in a reset.
    struct Ending {
        var text: String
        var reset: Bool
    }

    /// Reads until end of stream (or an error), telling a reset apart from a clean end.
    static func readToEnd(_ fd: Int32) -> Ending {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count > 0 {
                received += chunk[..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return Ending(text: String(decoding: received, as: UTF8.self), reset: count < 0 && errno == ECONNRESET)
            }
        }
    }

    /// Room for the flood's descriptors (client and server ends live in this process).
    static func raiseDescriptorLimit(to wanted: rlim_t) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < wanted else { return }
        limit.rlim_cur = min(wanted, limit.rlim_max)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    @Test("1,500 idle and slowloris connections against --max-connections 1024: a normal client is answered 200, the slowloris ones are not evicted")
    func floodLeavesRoom() throws {
        Self.raiseDescriptorLimit(to: 8_192)
        let (server, port) = try HTTPServerTests.server { $0.maxConnections = 1_024 }
        defer { server.stop() }
        // Slowloris first: they hold a request in progress, so they must not be the ones evicted.
        var flood: [LoopbackClient] = []
        defer { for client in flood { client.close() } }
        for _ in 0..<500 {
            let client = try LoopbackClient(port: port)
            client.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Drip: ")
            flood.append(client)
        }
        for _ in 0..<1_000 { flood.append(try LoopbackClient(port: port)) }

        let normal = try LoopbackClient(port: port)  // reads time out after 10 s: a generous bound, not a timing claim
        defer { normal.close() }
        normal.send("GET /normal HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = normal.readResponses(1).first ?? ""
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(response.prefix(80))")
        #expect(response.hasSuffix("you asked for /normal"))

        // The first slowloris connection is still open: nothing to read, no end of stream.
        var first = pollfd(fd: flood[0].fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&first, 1, 0) == 0, "a connection with a request in progress was closed to make room")
    }

    @Test("when every connection is busy, a refused client reads its 503 and a clean end, not a reset")
    func refusalIsHeard() throws {
        let parked = Semaphore()
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.maxConnections = 4
        let server = HTTPServer(configuration: configuration) { head, _ in
            guard head.path == "/park" else { return .response(HTTPResponse(status: 200)) }
            parked.signal()  // once per request: `awaiting` asks `check`, not the handler, again
            return .awaiting(deadline: .now + .seconds(60), fallback: HTTPResponse(status: 503), check: { nil })
        }
        let port = try server.start()
        defer { server.stop() }
        var busy: [LoopbackClient] = []
        defer { for client in busy { client.close() } }
        for _ in 0..<4 {
            let client = try LoopbackClient(port: port)
            client.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append(client)
            parked.wait()  // the server holds its request: not a connection to reuse
        }
        let refused = try LoopbackClient(port: port)
        defer { refused.close() }
        refused.send("GET /refused HTTP/1.1\r\nHost: x\r\n\r\n")
        let ending = Self.readToEnd(refused.fd)
        #expect(ending.text.hasPrefix("HTTP/1.1 503 "), "\(ending.text.prefix(80))")
        #expect(ending.text.contains("too_many_connections"))
        #expect(!ending.reset)
    }

    @Test("a body over the limit gets 413 while the client is still sending it: the response is read whole, then a clean end")
    func oversizeBodyIsHeard() throws {
        let (server, port) = try HTTPServerTests.server()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        // Keep sending after the server has answered: without a lingering close, these bytes
        // arriving at a closed socket make the kernel reset the connection.
        let piece = [UInt8](repeating: UInt8(ascii: "b"), count: 16 * 1024)
        for _ in 0..<20 {
            guard piece.withUnsafeBytes({ send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 else { break }
        }
        let ending = Self.readToEnd(client.fd)
        #expect(ending.text.hasPrefix("HTTP/1.1 413 "), "\(ending.text.prefix(80))")
        #expect(ending.text.contains(#"{"error":"#))
        #expect(!ending.reset)
    }
}
