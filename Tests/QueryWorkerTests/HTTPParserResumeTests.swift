@testable import QueryWorker
import Testing

/// The server's hot path: the parser resumes an incomplete head where its scan stopped
/// (a request trickling in is scanned once, not once per read), and routes are matched
/// on the path's bytes. Both must give exactly the answers of the plain versions.
@Suite("HTTP hot path: a resuming parser and routes matched on bytes")
struct HTTPParserResumeTests {
    let parser = HTTPRequestParser()

    static let requests = [
        "GET /api/v1/devices/dev-1/chats?limit=5 HTTP/1.1\r\nHost: x\r\nX-Api-Key:  secret \r\n\r\n",
        "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",
        "GET / HTTP/1.1\rHost: x\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET /" + String(repeating: "a", count: 9_000) + " HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 40_000),
        "GET / HTTP/1.1\r\nHost: x\r\n" + (0..<101).map { "X-\($0): 1\r\n" }.joined() + "\r\n",
    ]

    @Test("fed one byte at a time, after a pipelined request, with its progress carried: the outcome of the whole bytes", arguments: requests)
    func byteByByte(request: String) {
        let previous = Array("GET /before HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let bytes = Array(request.utf8)
        let whole = parser.parse(bytes)
        var received = previous
        var progress = HTTPRequestParser.Progress()
        var outcome = HTTPRequestParser.Outcome.incomplete
        for byte in bytes {
            received.append(byte)
            outcome = parser.parse(received, from: previous.count, progress: &progress)
            if outcome != .incomplete { break }
        }
        #expect(outcome == whole, "\(request.prefix(60))")
    }

    @Test("an incomplete head is not scanned again: the next parse starts where the last one stopped")
    func resumesWhereItStopped() {
        var bytes = Array("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1".utf8)
        var progress = HTTPRequestParser.Progress()
        #expect(parser.parse(bytes, from: 0, progress: &progress) == .incomplete)
        #expect(progress.scanned == bytes.count)
        // A bare LF in bytes already scanned would be refused by a scan from the start; a
        // resumed scan never looks at them again.
        bytes[14] = 0x20
        bytes += Array("\r\n\r\n".utf8)
        guard case .request(let head, _, let consumed) = parser.parse(bytes, from: 0, progress: &progress) else {
            Issue.record("not parsed after resuming")
            return
        }
        #expect(head.header("x-a") == "1" && consumed == bytes.count)
        // A CR as the last byte is looked at again once the next byte is in.
        var trailingCR = HTTPRequestParser.Progress()
        #expect(parser.parse(Array("GET / HTTP/1.1\r".utf8), from: 0, progress: &trailingCR) == .incomplete)
        #expect(trailingCR.scanned == 14)
        #expect(parser.parse(Array("GET / HTTP/1.1\rX".utf8), from: 0, progress: &trailingCR) == .failure(.init(400, "bare CR in the request head")))
    }

    static let paths = [
        "/", "//", "/healthz", "/readyz/", "//metrics", "/console.js", "/console.css", "/console", "/api", "/api/v1",
        "/api/v1/devices", "/api/v1/status", "/api/v1/other", "/api/v2/devices", "/api/v1/devices/dev-1",
        "/api/v1/devices/dev-1/chats", "/api/v1/devices/dev-1/chats/", "/api//v1/devices//dev-1/unread",
        "/api/v1/devices/dev-1/changes", "/api/v1/devices/dev-1/events", "/api/v1/devices/dev-1/nothing",
        "/api/v1/devices/dev-1/chats/a@c.us", "/api/v1/devices/dev-1/unread/a@c.us",
        "/api/v1/devices/dev-1/chats/a@c.us/read", "/api/v1/devices/dev-1/chats/a@c.us/mute",
        "/api/v1/devices/dev-1/chats/a@c.us/markUnread", "/api/v1/devices/dev-1/chats/a@c.us/archive",
        "/api/v1/devices/dev-1/chats/a@c.us/pin", "/api/v1/devices/dev-1/chats/a@c.us/delete",
        "/api/v1/devices/dev-1/chats/a@c.us/read/more", "/api/v1/devices/a-device-id-longer-than-fifteen/chats/x",
    ]

    @Test("a path matched on its bytes gets the route, device and chat that its decoded segments get", arguments: paths)
    func bytesMatchSegments(path: String) {
        let onBytes = APIRoute.match(unencodedPath: path[...])
        let onSegments = QueryAPI.pathSegments(path[...]).flatMap(APIRoute.match)
        #expect(onBytes?.route == onSegments?.route, "\(path)")
        #expect(onBytes?.deviceId == onSegments?.deviceId && onBytes?.chatId == onSegments?.chatId, "\(path)")
        #expect(QueryAPI.routeLabel(head(path)) == (onSegments?.route.template ?? "other"))
    }

    @Test("a percent-encoded path is decoded before it is matched: the same route as the plain path")
    func encodedPaths() {
        #expect(QueryAPI.match("/api/v1/devices/dev%2D1/chats/a%40c.us"[...]).match?.chatId == "a@c.us")
        #expect(QueryAPI.match("/%61pi/v1/devices/dev-1/unread"[...]).match?.route == .unread)
        #expect(QueryAPI.routeLabel(head("/api/v1/devices/d%65v/chats")) == "/api/v1/devices/{deviceId}/chats")
        if case .some(.some) = QueryAPI.match("/api/v1/devices/%zz/chats"[...]).segments { Issue.record("an invalid encoding decoded") }
    }

    private func head(_ path: String) -> HTTPRequestHead {
        HTTPRequestHead(method: "GET", target: path, version: .http11, headers: [], contentLength: 0, keepAlive: true)
    }
}
