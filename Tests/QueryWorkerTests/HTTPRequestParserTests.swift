import QueryWorker
import Testing

@Suite("HTTPRequestParser, from byte fixtures")
struct HTTPRequestParserTests {
    let parser = HTTPRequestParser()

    func parse(_ text: String) -> HTTPRequestParser.Outcome { parser.parse(Array(text.utf8)) }

    func status(_ text: String) -> Int? {
        if case .failure(let error) = parse(text) { return error.status.rawValue }
        return nil
    }

    @Test("a GET with headers parses: method, target, path, query, lower-cased header names, keep-alive")
    func simpleGet() throws {
        let request = "GET /api/v1/devices/dev-1/chats?limit=5&filter=unread HTTP/1.1\r\nHost: x\r\nX-Api-Key:  secret \r\n\r\n"
        guard case .request(let head, let body, let consumed) = parse(request) else { Issue.record("not parsed"); return }
        #expect(head.method == "GET")
        #expect(head.path == "/api/v1/devices/dev-1/chats")
        #expect(head.query == "limit=5&filter=unread")
        #expect(head.header("x-api-key") == "secret")
        #expect(head.header("X-API-KEY") == "secret")
        #expect(head.keepAlive)
        #expect(body.isEmpty)
        #expect(consumed == request.utf8.count)
    }

    @Test("incomplete input asks for more, at every cut of a valid request")
    func incompleteAtEveryCut() {
        let request = Array("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".utf8)
        for cut in 0..<request.count {
            #expect(parser.parse(Array(request[..<cut])) == .incomplete, "cut at \(cut)")
        }
        guard case .request(_, let body, let consumed) = parser.parse(request) else { Issue.record("whole request not parsed"); return }
        #expect(body == Array("abc".utf8))
        #expect(consumed == request.count)
    }

    @Test("pipelined requests are parsed one after the other")
    func pipelining() {
        let two = Array("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        guard case .request(let first, _, let consumed) = parser.parse(two),
            case .request(let second, _, _) = parser.parse(Array(two[consumed...]))
        else { Issue.record("not parsed"); return }
        #expect(first.target == "/a")
        #expect(second.target == "/b")
    }

    @Test("connection persistence follows the version and the Connection header")
    func keepAlive() {
        func keepAlive(_ text: String) -> Bool? {
            if case .request(let head, _, _) = parse(text) { return head.keepAlive }
            return nil
        }
        #expect(keepAlive("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == false)
        #expect(keepAlive("GET / HTTP/1.0\r\n\r\n") == false)
        #expect(keepAlive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == true)
    }

    @Test("malformed or hostile requests get the right status", arguments: [
        ("GET / HTTP/1.1\nHost: x\n\n", 400, "bare LF"),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace before the colon"),
        ("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "obs-fold"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "CL and TE"),
        ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "TE alone"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400, "duplicate CL"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "negative CL"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400, "non-digit CL"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "overflowing CL"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, "body over the limit"),
        ("GET / HTTP/1.1\r\n\r\n", 400, "no Host in HTTP/1.1"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Hosts"),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "unsupported version"),
        ("GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400, "not HTTP"),
        ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "double space"),
        ("GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "absolute-form"),
        ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid method"),
        ("GET / HTTP/1.1\r\nHo\u{1}st: x\r\n\r\n", 400, "control in a name"),
        ("GET / HTTP/1.1\r\nHost: x\u{0}y\r\n\r\n", 400, "NUL in a value"),
        ("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", 400, "empty name"),
        ("GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400, "no colon"),
        ("GET / HTTP/1.1\rHost: x\r\n\r\n", 400, "bare CR"),
    ])
    func refused(text: String, expected: Int, what: String) {
        #expect(status(text) == expected, "\(what)")
    }

    @Test("limits: a long request line is 414, a large head or too many fields 431")
    func limits() {
        #expect(status("GET /" + String(repeating: "a", count: 9_000) + " HTTP/1.1\r\n") == 414)
        #expect(status("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 50_000)) == 431)
        let many = (0..<101).map { "X-\($0): 1\r\n" }.joined()
        #expect(status("GET / HTTP/1.1\r\nHost: x\r\n" + many + "\r\n") == 431)
    }

    @Test("random bytes never crash the parser and never parse as a request they are not")
    func randomBytes() {
        var state: UInt64 = 0x1234_5678
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            let count = Int(state % 64)
            for _ in 0..<count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(UInt8(truncatingIfNeeded: state >> 33))
            }
            state = state &* 6_364_136_223_846_793_005 &+ 1
            if case .request = parser.parse(bytes) { Issue.record("random bytes parsed as a request: \(bytes)") }
        }
    }
}
