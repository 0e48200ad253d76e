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
        switch segments.count {
        case 0: return Match(route: console)
        case 1:
            switch segments[0] {
            case "console.js": return Match(route: consoleScript)
            case "console.css": return Match(route: consoleStyles)
            case "healthz": return Match(route: healthz)
            case "readyz": return Match(route: readyz)
            case "metrics": return Match(route: metrics)
            default: return nil
            }
        case 3 where segments[0] == "api" && segments[1] == "v1":
            switch segments[2] {
            case "devices": return Match(route: devices)
            case "status": return Match(route: status)
            default: return nil
            }
        case 5...7 where segments[0] == "api" && segments[1] == "v1" && segments[2] == "devices":
            let deviceId = segments[3]
            switch (segments.count, segments[4]) {
            case (5, "chats"): return Match(route: chats, deviceId: deviceId)
            case (5, "unread"): return Match(route: unread, deviceId: deviceId)
            case (5, "changes"): return Match(route: changes, deviceId: deviceId)
            case (5, "events"): return Match(route: events, deviceId: deviceId)
            case (6, "chats"): return Match(route: chat, deviceId: deviceId, chatId: segments[5])
            case (7, "chats"):
                guard let action = WriteRoutes.Action(rawValue: segments[6]) else { return nil }
                return Match(route: write(action), deviceId: deviceId, chatId: segments[5])
            default: return nil
            }
        default: return nil
        }
    }

    /// The route of a path without percent-encoding, matched on its bytes: no segment is
    /// copied, and only the device and chat ids become Strings. nil for a path no route has.
    /// (A path with `%` is decoded first: `QueryAPI.pathSegments`, then `match(_:)`.)
    static func match(unencodedPath path: Substring) -> Match? {
        var path = path
        return path.withUTF8 { match(unencodedPath: $0) }
    }

    private static func match(unencodedPath bytes: UnsafeBufferPointer<UInt8>) -> Match? {
        func named(_ segment: Range<Int>, _ literal: StaticString) -> Bool {
            literal.withUTF8Buffer { literal in
                literal.count == segment.count && literal.elementsEqual(UnsafeBufferPointer(rebasing: bytes[segment]))
            }
        }
        func text(_ segment: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[segment]), as: UTF8.self) }
        var segments = PathSegments(bytes)
        guard let first = segments.next() else { return Match(route: console) }
        guard let second = segments.next() else {
            if named(first, "healthz") { return Match(route: healthz) }
            if named(first, "readyz") { return Match(route: readyz) }
            if named(first, "metrics") { return Match(route: metrics) }
            if named(first, "console.js") { return Match(route: consoleScript) }
            if named(first, "console.css") { return Match(route: consoleStyles) }
            return nil
        }
        guard let third = segments.next(), named(first, "api"), named(second, "v1") else { return nil }
        guard let device = segments.next() else {
            if named(third, "devices") { return Match(route: devices) }
            if named(third, "status") { return Match(route: status) }
            return nil
        }
        guard named(third, "devices"), let kind = segments.next() else { return nil }
        let chat = segments.next()
        let action = chat == nil ? nil : segments.next()
        guard action == nil || segments.next() == nil else { return nil }  // more than 7 segments
        switch (chat, action) {
        case (nil, _):
            let route: APIRoute
            if named(kind, "chats") {
                route = chats
            } else if named(kind, "unread") {
                route = unread
            } else if named(kind, "changes") {
                route = changes
            } else if named(kind, "events") {
                route = events
            } else {
                return nil
            }
            return Match(route: route, deviceId: text(device))
        case (let chat?, nil):
            return named(kind, "chats") ? Match(route: self.chat, deviceId: text(device), chatId: text(chat)) : nil
        case (let chat?, let action?):
            guard named(kind, "chats"), let action = WriteRoutes.Action(rawValue: text(action)) else { return nil }
            return Match(route: write(action), deviceId: text(device), chatId: text(chat))
        }
    }

    /// The segments of a path, in order, without the empty ones (as `split` omits them).
    private struct PathSegments {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func next() -> Range<Int>? {
            while index < bytes.count, bytes[index] == UInt8(ascii: "/") { index += 1 }
            guard index < bytes.count else { return nil }
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "/") { index += 1 }
            return start..<index
        }
    }

    /// The 400 for the first query parameter the route does not take; nil when all are known.
    func unknownParameter(_ parameters: [String: String]) -> HTTPResponse? {
        guard let unknown = parameters.keys.sorted().first(where: { !self.parameters.contains($0) }) else { return nil }
        return .error(400, code: "unknown_parameter", message: "unknown query parameter \(unknown)")
    }
}
