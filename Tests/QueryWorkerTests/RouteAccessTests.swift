import ChatEvents
import ChatProjection
import EventLog
import LedgerSupport
import QueryWorker
import Testing

/// Every route's method and access are enforced the same way, before the route itself
/// runs: another method is 405 with `Allow`; a route that needs a key is 401 without one,
/// 404 for a device outside the key's scope, 403 for a key without the route's role or
/// write permission; an open route needs nothing.
@Suite("QueryAPI: each route's method and access")
struct RouteAccessTests {
    enum Access: Sendable {
        case open, key, auditor, writer
    }

    /// One request per route of schemas/openapi.yaml, with the method and access it documents.
    static let routes: [(method: String, path: String, access: Access)] = [
        ("GET", "/", .open), ("GET", "/console.js", .open), ("GET", "/console.css", .open), ("GET", "/healthz", .open),
        ("GET", "/readyz", .open), ("GET", "/metrics", .open),
        ("GET", "/api/v1/devices", .key), ("GET", "/api/v1/status", .key),
        ("GET", "/api/v1/devices/dev-1/chats", .key), ("GET", "/api/v1/devices/dev-1/chats/a%40c.us", .key),
        ("GET", "/api/v1/devices/dev-1/unread", .key), ("GET", "/api/v1/devices/dev-1/changes", .key),
        ("GET", "/api/v1/devices/dev-1/events", .auditor),
        ("POST", "/api/v1/devices/dev-1/chats/a%40c.us/read", .writer), ("POST", "/api/v1/devices/dev-1/chats/a%40c.us/markUnread", .writer),
        ("POST", "/api/v1/devices/dev-1/chats/a%40c.us/archive", .writer), ("POST", "/api/v1/devices/dev-1/chats/a%40c.us/pin", .writer),
        ("POST", "/api/v1/devices/dev-1/chats/a%40c.us/mute", .writer),
    ]

    private func api() throws -> QueryAPI {
        let store = ProjectionStore()
        store.apply(
            Event(eventId: "E0", deviceId: "dev-1", occurredAt: 100, chatId: "a@c.us",
                  payload: .messageCreated(MessageCreated(messageId: "M1", fromMe: false, kind: .text, preview: "hi"))),
            at: LogPosition(partition: 0, offset: 0))
        return QueryAPI(store: store, keys: KeyRing(try APIKeys(json: Array(QueryAPITests.keysJSON.utf8))), metrics: MetricsRegistry(), clock: { 0 })
    }

    private func request(_ api: QueryAPI, _ method: String, _ path: String, key: String?) -> HTTPResponse {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: x\r\n"
        if let key { text += "x-api-key: \(key)\r\n" }
        guard case .request(let head, let body, _) = HTTPRequestParser().parse(Array((text + "\r\n").utf8)) else {
            return HTTPResponse(status: -1)
        }
        return api.handle(head, body)
    }

    private func errorCode(_ response: HTTPResponse) -> String? {
        let text = String(decoding: response.body, as: UTF8.self)
        guard let start = text.range(of: #""code":""#)?.upperBound, let end = text[start...].firstIndex(of: "\"") else { return nil }
        return String(text[start..<end])
    }

    @Test("another method is 405 with Allow naming the route's method, whatever the key", arguments: routes)
    func otherMethods(method: String, path: String, access: Access) throws {
        let api = try api()
        let other = method == "GET" ? "POST" : "GET"
        for key in [nil, "test-api-key-123", "reader-key"] {
            let response = request(api, other, path, key: key)
            #expect(response.status == 405, "\(other) \(path) with \(key ?? "no key")")
            #expect(response.headers.contains { $0.name == "Allow" && $0.value == (method == "GET" ? "GET, HEAD" : method) })
        }
    }

    @Test("the route's access decides: 401 without a key, 404 outside the scope, 403 without the role or write permission", arguments: routes)
    func access(method: String, path: String, access: Access) throws {
        let api = try api()
        let anonymous = request(api, method, path, key: nil)
        let auditor = request(api, method, path, key: "test-api-key-123")  // every device, auditor, may not write
        let reader = request(api, method, path, key: "reader-key")  // dev-1 only, reader, may not write
        switch access {
        case .open:
            #expect(![401, 403].contains(anonymous.status), "\(path) needs no key: \(anonymous.status)")
        case .key, .auditor, .writer:
            #expect(anonymous.status == 401 && errorCode(anonymous) == "unauthorized", "\(path) without a key")
            let outside = request(api, method, path.replacingOccurrences(of: "dev-1", with: "dev-2"), key: "reader-key")
            if path.contains("dev-1") { #expect(outside.status == 404, "\(path) outside the reader's scope") }
        }
        switch access {
        case .open, .key:
            #expect(![401, 403].contains(auditor.status) && ![401, 403].contains(reader.status), "\(path): \(auditor.status), \(reader.status)")
        case .auditor:
            #expect(![401, 403].contains(auditor.status), "\(path) for the auditor: \(auditor.status)")
            #expect(reader.status == 403 && errorCode(reader) == "forbidden", "\(path) for a reader")
        case .writer:
            #expect(auditor.status == 403 && errorCode(auditor) == "forbidden", "\(path) for a key that may not write")
            #expect(reader.status == 403 && errorCode(reader) == "forbidden", "\(path) for a key that may not write")
        }
    }
}
