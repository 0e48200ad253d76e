/// The API's routes: each one's template (also its metrics label), method, query parameters
/// and who may call it. The one place that knows them; `QueryAPI.route` dispatches on
/// `match`, answers another method with 405, enforces `access` and refuses unknown
/// parameters from `parameters`, and `/metrics` labels a request with `template`.
struct APIRoute: Equatable, Sendable {
    /// Which route.
    enum Name: Equatable, Sendable {
        case console, consoleScript, consoleStyles, healthz, readyz, metrics
        case devices, status
        case chats, chat, unread, changes, events
        case write(WriteRoutes.Action)
    }

    /// Who may call a route. Under a device, every kind of key also needs the device in
    /// its scope (else 404, as a route that does not exist).
    enum Access: Equatable, Sendable {
        /// No key needed.
        case open
        /// Any valid key.
        case key
        /// A key with the auditor role (else 403).
        case auditor
        /// A key whose entry says `"write": true` (else 403).
        case writer
    }

    var name: Name
    /// The path with its variables in braces, as `schemas/openapi.yaml` writes it.
    var template: String
    /// The query parameters the route takes; any other is 400 `unknown_parameter`.
    var parameters: Set<String>
    var access: Access
    /// The method the route serves (others are 405 with `Allow`).
    var method: String { if case .write = name { "POST" } else { "GET" } }

    /// A request's route and the path variables it named.
    struct Match {
        var route: APIRoute
        var deviceId: String?
        var chatId: String?
    }

    static let console = APIRoute(name: .console, template: "/", parameters: [], access: .open)
    static let consoleScript = APIRoute(name: .consoleScript, template: "/console.js", parameters: [], access: .open)
    static let consoleStyles = APIRoute(name: .consoleStyles, template: "/console.css", parameters: [], access: .open)
    static let healthz = APIRoute(name: .healthz, template: "/healthz", parameters: [], access: .open)
    static let readyz = APIRoute(name: .readyz, template: "/readyz", parameters: [], access: .open)
    static let metrics = APIRoute(name: .metrics, template: "/metrics", parameters: [], access: .open)
    static let devices = APIRoute(name: .devices, template: "/api/v1/devices", parameters: ["limit", "cursor"], access: .key)
    static let status = APIRoute(name: .status, template: "/api/v1/status", parameters: [], access: .key)
    static let chats = APIRoute(
        name: .chats, template: "/api/v1/devices/{deviceId}/chats",
        parameters: ["limit", "cursor", "filter", "asOf", "minPosition", "wait"], access: .key)
    static let chat = APIRoute(
        name: .chat, template: "/api/v1/devices/{deviceId}/chats/{chatId}", parameters: ["minPosition", "wait"], access: .key)
    static let unread = APIRoute(
        name: .unread, template: "/api/v1/devices/{deviceId}/unread", parameters: ["minPosition", "wait"], access: .key)
    static let changes = APIRoute(name: .changes, template: "/api/v1/devices/{deviceId}/changes", parameters: [], access: .key)
    static let events = APIRoute(
        name: .events, template: "/api/v1/devices/{deviceId}/events", parameters: ["chat", "from", "to", "limit", "cursor"],
        access: .auditor)

    static func write(_ action: WriteRoutes.Action) -> APIRoute {
        APIRoute(
            name: .write(action), template: "/api/v1/devices/{deviceId}/chats/{chatId}/" + action.rawValue, parameters: ["wait"],
            access: .writer)
    }

    /// The route of percent-decoded path segments; nil for a path no route has.
    static func match(_ segments: [String]) -> Match? {
        var path = DecodedSegments(segments: segments)
        return match(&path)
    }

    /// The route of a path without percent-encoding, matched on its bytes: no segment is
    /// copied, and only the device and chat ids become Strings. nil for a path no route has.
    /// (A path with `%` is decoded first: `QueryAPI.pathSegments`, then `match(_:)`.)
    static func match(unencodedPath path: Substring) -> Match? {
        var path = path
        return path.withUTF8 { bytes in
            var segments = RawSegments(bytes: bytes)
            return match(&segments)
        }
    }

    /// The route table, over either kind of path: the one place a path becomes a route.
    private static func match<Path: PathSegments>(_ path: inout Path) -> Match? {
        guard let first = path.next() else { return Match(route: console) }
        guard let second = path.next() else {
            if path.segment(first, is: "healthz") { return Match(route: healthz) }
            if path.segment(first, is: "readyz") { return Match(route: readyz) }
            if path.segment(first, is: "metrics") { return Match(route: metrics) }
            if path.segment(first, is: "console.js") { return Match(route: consoleScript) }
            if path.segment(first, is: "console.css") { return Match(route: consoleStyles) }
            return nil
        }
        guard let third = path.next(), path.segment(first, is: "api"), path.segment(second, is: "v1") else { return nil }
        guard let device = path.next() else {
            if path.segment(third, is: "devices") { return Match(route: devices) }
            if path.segment(third, is: "status") { return Match(route: status) }
            return nil
        }
        guard path.segment(third, is: "devices"), let kind = path.next() else { return nil }
        let chat = path.next()
        let action = chat == nil ? nil : path.next()
        guard action == nil || path.next() == nil else { return nil }  // more than 7 segments
        switch (chat, action) {
        case (nil, _):
            let route: APIRoute
            if path.segment(kind, is: "chats") {
                route = chats
            } else if path.segment(kind, is: "unread") {
                route = unread
            } else if path.segment(kind, is: "changes") {
                route = changes
            } else if path.segment(kind, is: "events") {
                route = events
            } else {
                return nil
            }
            return Match(route: route, deviceId: path.text(device))
        case (let chat?, nil):
            return path.segment(kind, is: "chats") ? Match(route: self.chat, deviceId: path.text(device), chatId: path.text(chat)) : nil
        case (let chat?, let action?):
            guard path.segment(kind, is: "chats"), let action = WriteRoutes.Action(rawValue: path.text(action)) else { return nil }
            return Match(route: write(action), deviceId: path.text(device), chatId: path.text(chat))
        }
    }

    /// The 400 for the first query parameter the route does not take; nil when all are known.
    func unknownParameter(_ parameters: [String: String]) -> HTTPResponse? {
        guard let unknown = parameters.keys.sorted().first(where: { !self.parameters.contains($0) }) else { return nil }
        return .error(400, code: "unknown_parameter", message: "unknown query parameter \(unknown)")
    }
}

/// A path's segments, in order, as the route table reads them: a segment is compared with
/// a route's literal, and only the ones that name a device or a chat become Strings.
private protocol PathSegments {
    associatedtype Segment
    /// The next segment; nil after the last.
    mutating func next() -> Segment?
    /// Whether `segment` is exactly `literal`.
    func segment(_ segment: Segment, is literal: StaticString) -> Bool
    func text(_ segment: Segment) -> String
}

/// The segments of a path's bytes, without the empty ones (as `split` omits them): ranges,
/// nothing copied.
private struct RawSegments: PathSegments {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    mutating func next() -> Range<Int>? {
        while index < bytes.count, bytes[index] == UInt8(ascii: "/") { index += 1 }
        guard index < bytes.count else { return nil }
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "/") { index += 1 }
        return start..<index
    }

    func segment(_ segment: Range<Int>, is literal: StaticString) -> Bool {
        literal.withUTF8Buffer { literal in
            literal.count == segment.count && literal.elementsEqual(UnsafeBufferPointer(rebasing: bytes[segment]))
        }
    }

    func text(_ segment: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[segment]), as: UTF8.self) }
}

/// Segments already percent-decoded (`QueryAPI.pathSegments`), by index.
private struct DecodedSegments: PathSegments {
    let segments: [String]
    var index = 0

    mutating func next() -> Int? {
        guard index < segments.count else { return nil }
        defer { index += 1 }
        return index
    }

    func segment(_ segment: Int, is literal: StaticString) -> Bool {
        literal.withUTF8Buffer { $0.elementsEqual(segments[segment].utf8) }
    }

    func text(_ segment: Int) -> String { segments[segment] }
}
