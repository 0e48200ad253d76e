#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QueryWorker
import Testing

struct ClientError: Error {
    var description: String
}

/// A blocking loopback client; every read gives up after 10 s so a server bug fails the
/// test instead of hanging it.
struct LoopbackClient {
    let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw ClientError(description: "connect: errno \(errno)") }
    }

    func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = write(fd, &bytes, bytes.count)
    }

    /// Everything until the server closes the connection.
    func readToEnd() -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            received += chunk[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Reads until `count` whole responses (head plus Content-Length body) have arrived.
    func readResponses(_ count: Int) -> [String] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            let responses = Self.split(text)
            if responses.count >= count { return responses }
            let got = read(fd, &chunk, chunk.count)
            if got <= 0 { return responses }
            received += chunk[..<got]
        }
    }

    static func split(_ text: String) -> [String] {
        var responses: [String] = []
        var rest = Substring(text)
        while let headEnd = rest.range(of: "\r\n\r\n") {
            let head = rest[..<headEnd.lowerBound]
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let bodyStart = headEnd.upperBound
            guard rest.distance(from: bodyStart, to: rest.endIndex) >= length else { break }
            let end = rest.index(bodyStart, offsetBy: length)
            responses.append(String(rest[..<end]))
            rest = rest[end...]
        }
        return responses
    }

    func close() { Glibc.close(fd) }
}

@Suite("HTTPServer on loopback sockets")
struct HTTPServerTests {
    static func server(_ adjust: (inout HTTPServer.Configuration) -> Void = { _ in }) throws -> (HTTPServer, UInt16) {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        adjust(&configuration)
        let server = HTTPServer(configuration: configuration) { head, _ in
            HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array("you asked for \(head.target)".utf8))
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

    @Test("over the connection limit a client gets 503 and is closed; the others keep working")
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
        let third = try LoopbackClient(port: port)
        defer { third.close() }
        #expect(third.readToEnd().hasPrefix("HTTP/1.1 503"))
        first.send("GET /still HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(first.readResponses(1).first?.hasSuffix("/still") == true)
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
