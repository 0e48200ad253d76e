import ChatProjection
import EventLog
import Foundation

/// The v1 API of SPEC §4 over a `ProjectionStore`: answers one parsed request.
///
/// Device routes need `x-api-key`: unknown or missing → 401; a device outside the key's
/// scope → 404, exactly as a route that does not exist (existence is not revealed); an
/// auditor route with a reader key → 403. Responses come from the snapshot cache, carry
/// `ETag` (the device version) and `X-Ledger-Position`, and `If-None-Match` with the
/// current ETag answers 304. Query parameters are strict: unknown ones, bad values and
/// foreign cursors are 400.
public final class QueryAPI: Sendable {
    private let store: ProjectionStore
    private let keys: APIKeys
    private let clock: @Sendable () -> Int64
    private let isReady: @Sendable () -> Bool

    public init(
        store: ProjectionStore, keys: APIKeys, isReady: @escaping @Sendable () -> Bool = { true },
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.store = store
        self.keys = keys
        self.isReady = isReady
        self.clock = clock
    }

    /// The longest `wait` a request may ask for, in ms.
    public static let maxWaitMilliseconds = 30_000

    /// What a route decided: a response, or "not yet": `minPosition` is not applied, with
    /// the 503 to send if it stays so and how long the request asked to wait.
    private enum Answer {
        case response(HTTPResponse)
        case notYet(HTTPResponse, waitMilliseconds: Int)
    }

    /// Like `handle`, but a request whose `minPosition` is not applied yet and that asked to
    /// `wait` is parked by the server until it is (or `wait` ms pass: then 503).
    public func reply(_ head: HTTPRequestHead, _ body: [UInt8]) -> HTTPServer.Reply {
        switch route(head) {
        case .response(let response):
            return .response(response)
        case .notYet(let fallback, let wait):
            return wait > 0 ? .retry(deadline: .now + .milliseconds(wait), fallback: fallback) : .response(fallback)
        }
    }

    /// The response to one request, answering at once (an unmet `minPosition` is 503).
    public func handle(_ head: HTTPRequestHead, _ body: [UInt8]) -> HTTPResponse {
        switch route(head) {
        case .response(let response), .notYet(let response, _): return response
        }
    }

    private func route(_ head: HTTPRequestHead) -> Answer {
        guard head.method == "GET" else {
            var response = HTTPResponse.error(405, code: "method_not_allowed", message: "only GET is served")
            response.headers.append(("Allow", "GET"))
            return .response(response)
        }
        guard let segments = Self.pathSegments(head.path) else {
            return .response(.error(400, code: "bad_path", message: "the path has an invalid percent-encoding"))
        }
        switch segments {
        case ["healthz"]:
            return .response(Self.json(200, #"{"status":"ok"}"#))
        case ["readyz"]:
            return .response(isReady() ? Self.json(200, #"{"status":"ready"}"#) : Self.json(503, #"{"status":"catching up"}"#))
        case _ where segments.count >= 4 && segments[0...2] == ["api", "v1", "devices"]:
            return deviceRoute(head, deviceId: segments[3], rest: Array(segments[4...]))
        default:
            return .response(.error(404, code: "not_found", message: "no such route"))
        }
    }

    // MARK: - Device routes

    private func deviceRoute(_ head: HTTPRequestHead, deviceId: String, rest: [String]) -> Answer {
        guard let presented = head.header("x-api-key"), let grant = keys.authenticate(presented) else {
            return .response(.error(401, code: "unauthorized", message: "a valid x-api-key header is required"))
        }
        guard grant.mayRead(deviceId) else { return .response(.error(404, code: "not_found", message: "no such route")) }
        let parameters: [String: String]
        do {
            parameters = try Self.queryParameters(head.query)
        } catch {
            return .response(error.response)
        }
        let now = clock()
        if rest == ["chats"] {
            if parameters["asOf"] != nil {
                guard grant.role == .auditor else { return .response(.error(403, code: "forbidden", message: "asOf needs the auditor role")) }
                return .response(.error(501, code: "not_implemented", message: "point-in-time lists over HTTP are not built yet; use chatledger replay"))
            }
            if let unknown = parameters.keys.first(where: { !["limit", "cursor", "filter", "minPosition", "wait"].contains($0) }) {
                return .response(.error(400, code: "unknown_parameter", message: "unknown query parameter \(unknown)"))
            }
            var query = ChatListQuery()
            if let text = parameters["limit"] {
                guard let limit = Int(text), (1...ChatListQuery.maxLimit).contains(limit) else {
                    return .response(.error(400, code: "bad_parameter", message: "limit must be 1...\(ChatListQuery.maxLimit)"))
                }
                query.limit = limit
            }
            if let text = parameters["filter"] {
                guard let filter = ChatListFilter(rawValue: text) else {
                    return .response(.error(400, code: "bad_parameter", message: "filter must be all, unread, archived or groups"))
                }
                query.filter = filter
            }
            query.cursor = parameters["cursor"]
            if let unmet = minPositionUnmet(parameters) { return unmet }
            do {
                return .response(respond(head, deviceId: deviceId, try store.chatList(deviceId, query: query, now: now)))
            } catch {
                return .response(.error(400, code: "bad_cursor", message: "cursor is not one this server gave out"))
            }
        } else if rest.count == 2, rest[0] == "chats" {
            let chatId = rest[1]
            if let unknown = parameters.keys.first(where: { !["minPosition", "wait"].contains($0) }) {
                return .response(.error(400, code: "unknown_parameter", message: "unknown query parameter \(unknown)"))
            }
            if let unmet = minPositionUnmet(parameters) { return unmet }
            guard let chat = store.chat(deviceId, chatId: chatId, now: now) else {
                return .response(.error(404, code: "not_found", message: "no such chat"))
            }
            return .response(respond(head, deviceId: deviceId, chat))
        } else if rest == ["unread"] {
            if let unknown = parameters.keys.first(where: { !["minPosition", "wait"].contains($0) }) {
                return .response(.error(400, code: "unknown_parameter", message: "unknown query parameter \(unknown)"))
            }
            if let unmet = minPositionUnmet(parameters) { return unmet }
            return .response(respond(head, deviceId: deviceId, store.unread(deviceId, now: now)))
        } else if rest == ["events"] {
            guard grant.role == .auditor else { return .response(.error(403, code: "forbidden", message: "events need the auditor role")) }
            return .response(.error(501, code: "not_implemented", message: "the events route is not built yet; use chatledger export"))
        }
        return .response(.error(404, code: "not_found", message: "no such route"))
    }

    /// `minPosition=P:O`: answered only once partition P is applied through O; until then
    /// "not yet" (503 with `Retry-After`, which `reply` turns into a wait of up to `wait` ms).
    private func minPositionUnmet(_ parameters: [String: String]) -> Answer? {
        var wait = 0
        if let text = parameters["wait"] {
            guard let value = Int(text), (0...Self.maxWaitMilliseconds).contains(value) else {
                return .response(.error(400, code: "bad_parameter", message: "wait must be 0...\(Self.maxWaitMilliseconds) ms"))
            }
            wait = value
        }
        guard let text = parameters["minPosition"] else { return nil }
        guard let position = LogPosition(text) else {
            return .response(.error(400, code: "bad_parameter", message: "minPosition must be P:O"))
        }
        if let applied = store.appliedOffset(partition: position.partition), applied >= position.offset { return nil }
        var response = HTTPResponse.error(503, code: "not_yet", message: "position \(text) is not applied yet")
        response.headers.append(("Retry-After", "1"))
        return .notYet(response, waitMilliseconds: wait)
    }

    private func respond(_ head: HTTPRequestHead, deviceId: String, _ view: RenderedView) -> HTTPResponse {
        let etag = "\"\(view.version)\""
        var headers = [("ETag", etag), ("Cache-Control", "no-cache")]
        if let position = store.position(of: deviceId) { headers.append(("X-Ledger-Position", position.description)) }
        if head.header("if-none-match") == etag { return HTTPResponse(status: 304, headers: headers) }
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")] + headers, body: view.bytes)
    }

    // MARK: - Parsing

    static func json(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(text.utf8))
    }

    /// Path segments, percent-decoded; nil for invalid encodings.
    static func pathSegments(_ path: Substring) -> [String]? {
        var segments: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = percentDecode(raw) else { return nil }
            segments.append(decoded)
        }
        return segments
    }

    /// A request refused while parsing it, with the response that says why.
    struct Refusal: Error {
        var response: HTTPResponse
    }

    static func queryParameters(_ query: Substring) throws(Refusal) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecode(parts[0], plusIsSpace: true),
                let value = percentDecode(parts.count > 1 ? parts[1] : "", plusIsSpace: true)
            else { throw Refusal(response: .error(400, code: "bad_query", message: "invalid percent-encoding in the query")) }
            guard parameters[name] == nil else {
                throw Refusal(response: .error(400, code: "bad_query", message: "query parameter \(name) given twice"))
            }
            parameters[name] = value
        }
        return parameters
    }

    static func percentDecode(_ text: Substring, plusIsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                guard first < utf8.endIndex, utf8.index(after: first) < utf8.endIndex,
                    let value = UInt8(String(decoding: [utf8[first], utf8[utf8.index(after: first)]], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
                index = utf8.index(first, offsetBy: 2)
            } else {
                bytes.append(plusIsSpace && byte == UInt8(ascii: "+") ? 0x20 : byte)
                index = utf8.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
