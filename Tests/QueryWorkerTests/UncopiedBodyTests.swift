#if canImport(Glibc)
import Glibc
#endif
import KafkaTestSupport
import QueryWorker
import Testing

/// A large response body is sent from the bytes the handler answered with, behind a head
/// in the connection's buffer, with one `sendmsg` for both: it must arrive whole and in
/// order when the socket takes it in pieces, and when smaller responses are pipelined after it.
@Suite("HTTPServer: large bodies sent without a copy")
struct UncopiedBodyTests {
    /// 6 MiB: more than a loopback socket takes at once, so writes are cut short and resumed.
    static let big: [UInt8] = (0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 13) }

    private func serve() throws -> (HTTPServer, UInt16) {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let server = HTTPServer(configuration: configuration) { head, _ in
            head.target == "/big"
                ? .response(HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream")], body: Self.big))
                : .response(HTTPResponse(status: 200, body: Array("small \(head.target)".utf8)))
        }
        return (server, try server.start())
    }

    /// The bodies of `count` responses read from `fd`, framed by Content-Length.
    private func bodies(_ fd: Int32, _ count: Int) -> [[UInt8]] {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var bodies: [[UInt8]] = []
        var start = 0
        while bodies.count < count {
            if let headEnd = Self.find(Array("\r\n\r\n".utf8), in: buffer, from: start) {
                let head = String(decoding: buffer[start..<headEnd], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("Content-Length: ") }.flatMap { Int($0.dropFirst(16)) } ?? 0
                if buffer.count >= headEnd + 4 + length {
                    bodies.append(Array(buffer[(headEnd + 4)..<(headEnd + 4 + length)]))
                    start = headEnd + 4 + length
                    continue
                }
            }
            let got = read(fd, &chunk, chunk.count)
            guard got > 0 else { break }
            buffer += chunk[..<got]
        }
        return bodies
    }

    /// Where `needle` starts in the first KiB after `start` (a response head is shorter).
    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        let last = min(haystack.count, start + 1024) - needle.count
        guard last >= start else { return nil }
        for index in start...last where haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        return nil
    }

    @Test("a body larger than the socket takes arrives whole, alone and pipelined between small responses")
    func largeBodiesArriveWhole() throws {
        let (server, port) = try serve()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        let alone = bodies(client.fd, 1)
        #expect(alone.count == 1 && alone.first == Self.big, "the big body alone")
        client.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        let pipelined = bodies(client.fd, 4)
        #expect(pipelined.count == 4)
        #expect(pipelined.first == Self.big && pipelined.dropFirst(2).first == Self.big, "both big bodies, whole")
        #expect(pipelined.dropFirst().first == Array("small /a".utf8) && pipelined.last == Array("small /b".utf8), "the small ones in order")
    }
}
