import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport
import Synchronization

/// The v1 API of `schemas/openapi.yaml` over a `ProjectionStore`: answers one parsed request.
///
/// Device routes need `x-api-key`: unknown or missing → 401; a device outside the key's
/// scope → 404, exactly as a route that does not exist (existence is not revealed); an
/// auditor route with a reader key → 403. Responses come from the snapshot cache, carry
/// `ETag` (the device version) and `X-Ledger-Position`, and `If-None-Match` with the
/// current ETag answers 304. Query parameters are strict: unknown ones, bad values and
/// foreign cursors are 400. `/api/v1/devices` lists the devices a key may read and
/// `/api/v1/status` reports ingest progress (any valid key). `/` serves the console
/// (`ConsoleAssets`), which reads the API with the key a person types in. The write routes
/// (`POST …/chats/{chatId}/read|markUnread|archive|pin|mute`, `WriteRoutes`) turn requests
/// of keys that may write into events on Kafka, through `publisher`.
package final class QueryAPI: Sendable {
    private let store: ProjectionStore
    private let keys: KeyRing
    private let clock: @Sendable () -> Int64
    private let isReady: @Sendable () -> Bool
    private let source: @Sendable () -> SourceStatus
    private let metrics: MetricsRegistry?
    private let requestDurations: MetricsRegistry.Histogram?
    private let audit: AuditLog?
    private let writes: WriteRoutes
    private let gaps: GapRegister?
    private let cluster: ClusterRouter?

    /// The change streams open (`StreamSlots`).
    let streams = StreamSlots()

    /// - Parameters:
    ///   - metrics: served at `/metrics` (404 without), and where request durations go.
    ///   - audit: the log behind the auditor routes (`asOf`, `events`); without it they are 501.
    ///   - isReady: what `/readyz` and `/api/v1/status` report.
    ///   - source: where records come from and how far each partition reaches (the lag in
    ///     `/api/v1/status`); read on the loop thread, so it must not block.
    ///   - publisher: where the write routes send their events (the canonical topic); without
    ///     it they are 501.
    ///   - idempotencyCapacity: how many `Idempotency-Key`s the write routes remember.
    ///   - gaps: while it holds an unacknowledged gap, `/readyz` answers 503 `data lost`.
    ///   - cluster: cluster mode (SPEC §9): device routes owned by another instance are forwarded.
    package init(
        store: ProjectionStore, keys: KeyRing, metrics: MetricsRegistry? = nil, audit: AuditLog? = nil,
        publisher: (any EventPublisher)? = nil, idempotencyCapacity: Int = 100_000,
        isReady: @escaping @Sendable () -> Bool = { true },
        source: @escaping @Sendable () -> SourceStatus = { SourceStatus(kind: .log) },
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        gaps: GapRegister? = nil, cluster: ClusterRouter? = nil
    ) {
        self.gaps = gaps
        self.cluster = cluster
        self.store = store
        self.keys = keys
        self.metrics = metrics
        self.audit = audit
        self.isReady = isReady
        self.source = source
        self.clock = clock
        writes = WriteRoutes(store: store, publisher: publisher, clock: clock, idempotency: IdempotencyKeys(capacity: idempotencyCapacity))
        if let metrics { writes.counters.register(in: metrics) }
        requestDurations = metrics?.histogram(
            "chatledger_http_request_duration_seconds", help: "HTTP requests by route and status: count and time to answer.",
            labels: ["route", "status"], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
    }

    /// An HTTP server that answers with this API and records every response for `/metrics`.
    /// Change streams may hold at most half of one loop's connections (`StreamSlots`).
    package func server(configuration: HTTPServer.Configuration) -> HTTPServer {
        // Half of one loop's share of the connections: the server hands connections to its
        // loops in turn, so even streams all on one loop leave it room for other requests.
        let loops = max(1, min(HTTPServer.maxLoops, configuration.loops))
        streams.limit.store(max(1, (configuration.maxConnections + loops - 1) / loops / 2), ordering: .relaxed)
        let server = HTTPServer(configuration: configuration, observer: { [self] head, status, elapsed in
            observe(head, status: status, elapsed: elapsed)
        }) { [self] head, body in reply(head, body) }
        // A reload of the keys: change streams check their key (one revoked ends its streams).
        keys.onReplace { [weak server] in server?.wake() }
        let refusals = server.refusals
        metrics?.collect(
            "chatledger_http_refused_total",
            help: "Requests and connections the HTTP server refused before any route: malformed or oversize (400, 413, 414, 431, 501, 505), too slow (408), over the connection limit (503).",
            kind: .counter
        ) {
            refusals.byStatus.map { .init([("status", String($0.status))], Double($0.count)) }
        }
        return server
    }

    /// Records a response for `/metrics` (the server's observer).
    package func observe(_ head: HTTPRequestHead, status: HTTPStatus, elapsed: Duration) {
        guard let requestDurations else { return }
        let label = Self.routeLabel(head)
        requestDurations.observe(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds), [label, status.description])
    }

    /// The route template a request matched, as a metric label (never the raw path, which
    /// would make one series per device).
    static func routeLabel(_ head: HTTPRequestHead) -> String {
        match(head.path).match?.route.template ?? "other"
    }

    /// A request path's route (nil: none), and for a path with percent-encoding its decoded
    /// segments (nil there: an invalid encoding); matched once per request, and what both
    /// the cluster router and the API go by.
    typealias MatchedPath = (match: APIRoute.Match?, segments: [String]??)

    /// A path's route, matched on its bytes; a path with percent-encoding is decoded into
    /// `segments` first (nil there: an invalid encoding).
    static func match(_ path: Substring) -> MatchedPath {
        guard path.utf8.contains(UInt8(ascii: "%")) else { return (APIRoute.match(unencodedPath: path), nil) }
        let segments = pathSegments(path)
        return (segments.flatMap(APIRoute.match), .some(segments))
    }

    /// The longest `wait` a request may ask for, in ms.
    package static let maxWaitMilliseconds = 30_000

    /// What a route decided: a response, or "not yet": `minPosition` is not applied, with
    /// the 503 to send if it stays so and how long the request asked to wait.
    private enum Answer {
        case response(HTTPResponse)
        case notYet(HTTPResponse, waitMilliseconds: Int)
        /// Reads the log (an auditor route): run off the loop thread.
        case deferred(@Sendable () -> HTTPResponse)
        case stream(head: HTTPResponse, HTTPStream)
        /// A write route's answer, as the server takes it.
        case write(HTTPServer.Reply)
    }

    /// Like `handle`, but a request whose `minPosition` is not applied yet and that asked to
    /// `wait` is parked by the server until it is (or `wait` ms pass: then 503).
    package func reply(_ head: HTTPRequestHead, _ body: [UInt8]) -> HTTPServer.Reply {
        let path = Self.match(head.path)
        // A change stream, served here or relayed from its owner, holds a connection for as
        // long as the client likes: it needs one of the slots kept for streams (`StreamSlots`).
        var slot: StreamSlots.Slot?
        if path.match?.route.name == .changes, head.method == "GET" {
            slot = streams.take()
            guard slot != nil else {
                var refused = HTTPResponse.error(503, code: "too_many_streams", message: "the server holds as many change streams as it keeps room for")
                refused.headers.append(("Retry-After", "1"))
                return .response(refused)
            }
        }
        // Cluster mode (SPEC §9): a device route another instance owns is forwarded there
        // (ClusterRouter), which goes by the route matched here.
        let reply = cluster.map { cluster in cluster.reply(head, body, route: path.match) { localReply(head, body, path) } } ?? localReply(head, body, path)
        return slot.map { StreamSlots.holding($0, reply) } ?? reply
    }

    /// `reply`, answered by this instance.
    private func localReply(_ head: HTTPRequestHead, _ body: [UInt8], _ path: MatchedPath) -> HTTPServer.Reply {
        switch route(head, body, path) {
        case .response(let response):
            return .response(response)
        case .notYet(let fallback, let wait):
            return wait > 0 ? .retry(deadline: .now + .milliseconds(wait), fallback: fallback) : .response(fallback)
        case .deferred(let work):
            return .deferred(work)
        case .stream(let head, let stream):
            return .stream(head: head, stream)
        case .write(let reply):
            return reply
        }
    }

    /// The response to one request without a server: an unmet `minPosition` is 503 at once,
    /// and a write waits on the calling thread for Kafka, then answers with what is applied.
    package func handle(_ head: HTTPRequestHead, _ body: [UInt8]) -> HTTPResponse {
        switch route(head, body, Self.match(head.path)) {
        case .response(let response), .notYet(let response, _): return response
        case .deferred(let work): return work()
        case .stream(let head, let stream): return HTTPResponse(status: head.status, headers: head.headers, body: stream.poll())
        case .write(let reply): return Self.settle(reply)
        }
    }

    /// A reply resolved on the calling thread (for `handle`).
    private static func settle(_ reply: HTTPServer.Reply) -> HTTPResponse {
        switch reply {
        case .response(let response): return response
        case .retry(_, let fallback): return fallback
        case .awaiting(_, let fallback, let check): return check() ?? fallback
        case .deferred(let work): return work()
        case .stream(let head, let stream): return HTTPResponse(status: head.status, headers: head.headers, body: stream.poll())
        case .pending(let deadline, let fallback, let start):
            let next = Mutex<HTTPServer.Reply?>(nil)
            let done = DispatchSemaphore(value: 0)
            start { reply in
                next.withLock { $0 = reply }
                done.signal()
            }
            let timeout = DispatchTime.now() + .milliseconds(max(0, Int((deadline - .now) / .milliseconds(1))))
            guard done.wait(timeout: timeout) == .success, let reply = next.withLock({ $0 }) else { return fallback }
            return settle(reply)
        }
    }

    /// Every request's way in: the method and path, then who may call the route (its
    /// `access` in `APIRoute`, checked here only), then the route. `path` is the request
    /// path's `match`.
    private func route(_ head: HTTPRequestHead, _ body: [UInt8], _ path: MatchedPath) -> Answer {
        let (match, decoded) = path
        // A path no route has is 404 whatever the method. HEAD is GET without the body (the
        // server leaves it out), as RFC 9110 asks of every GET route.
        let method = match?.route.method ?? head.method
        guard head.method == method || (head.method == "HEAD" && method == "GET") else {
            let allowed = method == "GET" ? "GET, HEAD" : method
            var response = HTTPResponse.error(405, code: "method_not_allowed", message: "this route takes \(allowed)")
            response.headers.append(("Allow", allowed))
            return .response(response)
        }
        if case .some(nil) = decoded {
            return .response(.error(400, code: "bad_path", message: "the path has an invalid percent-encoding"))
        }
        guard match == nil || method != "GET" || body.isEmpty else {
            return .response(.error(400, code: "unexpected_body", message: "GET takes no request body"))
        }
        guard let match else {
            // Under a device, an unknown route is told apart from a device out of scope only
            // with a valid key: without one it is 401 like every device route.
            let segments = (decoded ?? Self.pathSegments(head.path)) ?? []
            let underDevice = segments.count >= 4 && segments[0...2] == ["api", "v1", "devices"]
            if underDevice, case .failure(let refusal) = authenticate(head) { return .response(refusal.response) }
            return .response(.error(404, code: "not_found", message: "no such route"))
        }
        let grant: APIKeys.Grant
        switch authorize(head, match) {
        case .failure(let refusal): return .response(refusal.response)
        case .success(nil): return .response(openRoute(head, match.route))
        case .success(let granted?): grant = granted
        }
        let parameters: [String: String]
        do {
            parameters = try Self.queryParameters(head.query)
        } catch {
            return .response(error.response)
        }
        switch match.route.name {
        case .write(let action):
            // WriteRoutes checks its parameters itself and counts each refusal by reason.
            return .write(
                writes.answer(head, body, grant: grant, deviceId: match.deviceId ?? "", chatId: match.chatId ?? "", action: action, query: parameters))
        default:
            if let unknown = match.route.unknownParameter(parameters) { return .response(unknown) }
        }
        switch match.route.name {
        case .devices:
            return deviceList(grant, parameters)
        case .status:
            return .response(status(grant))
        case .chats, .chat, .unread, .changes, .events:
            return deviceRoute(head, match, grant, parameters)
        case .console, .consoleScript, .consoleStyles, .healthz, .readyz, .metrics, .write:
            return .response(.error(404, code: "not_found", message: "no such route"))  // answered above
        }
    }

    /// Who may call the route, as its `APIRoute.access` says: nil for an open route, else
    /// the grant of the request's key. Refused: 401 without a valid key; 400 for a device
    /// or chat id longer than any event carries; 404 for a device outside the key's scope
    /// (exactly as a route that does not exist); 403 for a key without the route's role
    /// or without write permission.
    private func authorize(_ head: HTTPRequestHead, _ match: APIRoute.Match) -> Result<APIKeys.Grant?, Refusal> {
        if match.route.access == .open { return .success(nil) }
        let grant: APIKeys.Grant
        switch authenticate(head) {
        case .success(let granted): grant = granted
        case .failure(let refusal): return .failure(refusal)
        }
        if let deviceId = match.deviceId {
            if let tooLong = Self.overlongIdentifier(deviceId: deviceId, chatId: match.chatId) { return .failure(Refusal(response: tooLong)) }
            guard grant.mayRead(deviceId) else { return .failure(Refusal(response: .error(404, code: "not_found", message: "no such route"))) }
        }
        switch match.route.access {
        case .auditor where grant.role != .auditor:
            return .failure(Refusal(response: .error(403, code: "forbidden", message: "this route needs the auditor role")))
        case .writer where !grant.mayWrite:
            return .failure(
                Refusal(response: .error(403, code: "forbidden", message: "this key may not write (its keys-file entry needs \"write\": true)")))
        default:
            return .success(grant)
        }
    }

    /// The routes that need no key.
    private func openRoute(_ head: HTTPRequestHead, _ route: APIRoute) -> HTTPResponse {
        switch route.name {
        case .console:
            return ConsoleAssets.page.response(head)
        case .consoleScript:
            return ConsoleAssets.script.response(head)
        case .consoleStyles:
            return ConsoleAssets.styles.response(head)
        case .healthz:
            return Self.json(200, #"{"status":"ok"}"#)
        case .readyz:
            if let lost = gaps?.unacknowledged, !lost.isEmpty { return Self.dataLost(lost) }
            return isReady() ? Self.json(200, #"{"status":"ready"}"#) : Self.json(503, #"{"status":"catching up"}"#)
        case .metrics:
            guard let metrics else { return .error(404, code: "not_found", message: "no such route") }
            let body = Array(metrics.render().utf8)
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: body)
        case .devices, .status, .chats, .chat, .unread, .changes, .events, .write:
            return .error(404, code: "not_found", message: "no such route")  // not open: never asked here
        }
    }

    /// The grant of the request's `x-api-key`, or the 401 to answer.
    private func authenticate(_ head: HTTPRequestHead) -> Result<APIKeys.Grant, Refusal> {
        guard let presented = head.header("x-api-key"), let grant = keys.authenticate(presented) else {
            return .failure(Refusal(response: .error(401, code: "unauthorized", message: "a valid x-api-key header is required")))
        }
        return .success(grant)
    }

    /// `GET /api/v1/devices?limit=&cursor=`: the devices the key may read, with summaries.
    private func deviceList(_ grant: APIKeys.Grant, _ parameters: [String: String]) -> Answer {
        var query = DeviceListQuery(cursor: parameters["cursor"])
        if let text = parameters["limit"] {
            guard let limit = Int(text), (1...DeviceListQuery.maxLimit).contains(limit) else {
                return .response(.error(400, code: "bad_parameter", message: "limit must be 1...\(DeviceListQuery.maxLimit)"))
            }
            query.limit = limit
        }
        do {
            // Cluster mode: the devices of the partitions this instance owns (see `ClusterRouter.ownedPartitions`).
            let page = try store.devicePage(scope: grant.devices, partitions: cluster?.ownedPartitions, query: query)
            return .response(HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-cache")], body: page.json))
        } catch {
            return .response(.error(400, code: "bad_cursor", message: "cursor is not one this server gave out"))
        }
    }

    /// `GET /api/v1/status`: readiness, per-partition progress and counts, for any valid key.
    private func status(_ grant: APIKeys.Grant) -> HTTPResponse {
        // Read piece by piece: a copy of the whole state alive while events are applied
        // would make the applier copy its tables.
        let report = ServiceStatus(
            ready: isReady(), role: grant.role, source: source(), appliedOffsets: store.appliedOffsets, devices: store.deviceCount,
            counts: store.counts, lost: gaps?.unacknowledged ?? [])
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-cache")], body: report.json)
    }

    /// The routes under `/api/v1/devices/{deviceId}`, for a key `route` has let through.
    private func deviceRoute(_ head: HTTPRequestHead, _ match: APIRoute.Match, _ grant: APIKeys.Grant, _ parameters: [String: String]) -> Answer {
        let deviceId = match.deviceId ?? ""
        let now = clock()
        switch match.route.name {
        case .chats:
            if parameters["asOf"] != nil, grant.role != .auditor {
                return .response(.error(403, code: "forbidden", message: "asOf needs the auditor role"))
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
                    return .response(.error(400, code: "bad_parameter", message: "filter must be all, unread, archived, groups or inbox"))
                }
                query.filter = filter
            }
            query.cursor = parameters["cursor"]
            // minPosition holds an asOf list too: once the position is applied, the log holds it.
            if let unmet = minPositionUnmet(parameters) { return unmet }
            if let asOf = parameters["asOf"] { return pointInTime(deviceId: deviceId, asOf: asOf, query: query, now: now) }
            do {
                return .response(respond(head, deviceId: deviceId, try store.chatList(deviceId, query: query, now: now)))
            } catch {
                return .response(.error(400, code: "bad_cursor", message: "cursor is not one this server gave out"))
            }
        case .chat:
            if let unmet = minPositionUnmet(parameters) { return unmet }
            // The version before the lookup: a 404 must not carry the tag of a state that has the chat.
            let (version, position) = (store.version(of: deviceId), store.position(of: deviceId))
            guard let chat = store.chat(deviceId, chatId: match.chatId ?? "", now: now) else {
                // Still a device response: its version and position say what was looked at.
                var missing = HTTPResponse.error(404, code: "not_found", message: "no such chat")
                missing.headers += Self.deviceHeaders(etag: Self.etag(version), position: position, json: false)
                return .response(missing)
            }
            return .response(respond(head, deviceId: deviceId, chat))
        case .unread:
            if let unmet = minPositionUnmet(parameters) { return unmet }
            return .response(respond(head, deviceId: deviceId, store.unread(deviceId, now: now)))
        case .changes:
            // The device's headers as at the stream's start (its first event carries the same version).
            var headers: [(name: String, value: String)] = [("Content-Type", "text/event-stream")]
            headers += Self.deviceHeaders(etag: Self.etag(store.version(of: deviceId)), position: store.position(of: deviceId), json: false)
            var streamHead = HTTPResponse(status: 200, headers: headers)
            if head.method == "HEAD" {
                streamHead.bodyRunsToClose = true
                return .response(streamHead)
            }
            // A key revoked (or narrowed) by a reload of the keys file ends its streams too.
            let (keys, presented) = (keys, head.header("x-api-key") ?? "")
            let stream = DeviceChangeStream(
                store: store, deviceId: deviceId, lastEventId: head.header("last-event-id"),
                keyGeneration: { keys.generation }, stillAllowed: { keys.authenticate(presented)?.mayRead(deviceId) ?? false })
            return .stream(head: streamHead, stream)
        case .events:
            return events(deviceId: deviceId, parameters)
        default:
            return .response(.error(404, code: "not_found", message: "no such route"))
        }
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
        guard let position = Self.logPosition(text) else {
            return .response(.error(400, code: "bad_parameter", message: "minPosition must be P:O (a partition of at most 9 digits, an offset of at most 18)"))
        }
        // A partition the source does not have will never reach the position: say so now
        // rather than after `wait`. Only Kafka's list of partitions is complete; before it is
        // known (and for a log another process writes) every partition may still come.
        let source = source()
        if source.kind == .kafka, !source.endOffsets.isEmpty, source.endOffsets[position.partition] == nil,
            store.appliedOffset(partition: position.partition) == nil
        {
            return .response(.error(400, code: "unknown_partition", message: "partition \(position.partition) does not exist"))
        }
        if let applied = store.appliedOffset(partition: position.partition), applied >= position.offset { return nil }
        var response = HTTPResponse.error(503, code: "not_yet", message: "position \(text) is not applied yet")
        response.headers.append(("Retry-After", "1"))
        return .notYet(response, waitMilliseconds: wait)
    }

    private func respond(_ head: HTTPRequestHead, deviceId: String, _ view: RenderedView) -> HTTPResponse {
        let etag = view.entityTag
        let notModified = head.ifNoneMatch(etag)
        let headers = Self.deviceHeaders(etag: etag, position: view.position, json: !notModified)
        return notModified ? HTTPResponse(status: 304, headers: headers) : HTTPResponse(status: 200, headers: headers, body: view.bytes)
    }

    /// A device version as an entity tag.
    private static func etag(_ version: UInt64) -> String { "\"\(version)\"" }

    /// What every device response carries: `Content-Type` (for a JSON body), `ETag`,
    /// `Cache-Control`, and `X-Ledger-Position` when the device has one.
    private static func deviceHeaders(etag: String, position: LogPosition?, json: Bool) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(4)
        if json { headers.append(("Content-Type", "application/json")) }
        headers.append(("ETag", etag))
        headers.append(("Cache-Control", "no-cache"))
        if let position { headers.append(("X-Ledger-Position", position.description)) }
        return headers
    }

    // MARK: - Auditor routes

    /// The largest page of `/events`.
    package static let maxEventsPage = 1_000

    /// `chats?asOf=TIME`: the list replayed from the log up to TIME (Kafka timestamps, as
    /// `chatledger replay --as-of`), on a worker thread.
    private func pointInTime(deviceId: String, asOf text: String, query: ChatListQuery, now: Int64) -> Answer {
        guard let audit else { return .response(.error(501, code: "not_implemented", message: "this server has no log to replay")) }
        guard let asOf = TimeArgument.milliseconds(text) else {
            return .response(.error(400, code: "bad_parameter", message: "asOf must be ISO 8601 or epoch ms"))
        }
        let partitions = partitions(of: deviceId)
        return .deferred {
            do {
                let (device, position) = try audit.pointInTime(deviceId, asOf: asOf, partitions: partitions)
                let view = try ChatListRenderer.chatList(device, deviceId: deviceId, query: query, now: now)
                // The version the device had then, and the position the replay folded it to.
                return HTTPResponse(
                    status: 200, headers: Self.deviceHeaders(etag: view.entityTag, position: position, json: true), body: view.bytes)
            } catch is ChatListRenderer.InvalidCursor {
                return .error(400, code: "bad_cursor", message: "cursor is not one this server gave out")
            } catch let error as AuditLog.BeforeRetainedLog {
                // Retention removed the log before that time (its oldest checkpoint is the base).
                return .error(410, code: "before_retained_log", message: error.description)
            } catch {
                return .error(500, code: "log_unreadable", message: "the log could not be read: \(error)")
            }
        }
    }

    /// `events`: the device's events as received, with their coordinates (the lines of
    /// `chatledger export --with-position`), paged by `cursor`, filtered by `chat`, `from`,
    /// `to` (occurredAt); on a worker thread.
    ///
    /// Carries the device's `ETag` and `X-Ledger-Position` like every device response (the
    /// page holds at least what they name), but is never 304: its lines include records the
    /// version does not count (repeats, ignored chats and types).
    private func events(deviceId: String, _ parameters: [String: String]) -> Answer {
        guard let audit else { return .response(.error(501, code: "not_implemented", message: "this server has no log to read")) }
        var filter = AuditLog.EventFilter(deviceId: deviceId, chatId: parameters["chat"])
        // A contact's events under its other id (a LID beside the phone id) are the chat's too.
        if let chatId = filter.chatId { filter.chatAliases = store.otherIds(deviceId, ofChat: chatId) }
        for (name, bound) in [("from", \AuditLog.EventFilter.from), ("to", \AuditLog.EventFilter.to)] {
            guard let text = parameters[name] else { continue }
            guard let value = TimeArgument.milliseconds(text) else {
                return .response(.error(400, code: "bad_parameter", message: "\(name) must be ISO 8601 or epoch ms"))
            }
            filter[keyPath: bound] = value
        }
        var limit = 100
        if let text = parameters["limit"] {
            guard let value = Int(text), (1...Self.maxEventsPage).contains(value) else {
                return .response(.error(400, code: "bad_parameter", message: "limit must be 1...\(Self.maxEventsPage)"))
            }
            limit = value
        }
        var cursor: LogPosition?
        if let text = parameters["cursor"] {
            guard let position = Self.logPosition(text) else { return .response(.error(400, code: "bad_cursor", message: "cursor must be P:O")) }
            cursor = position
        }
        filter.partitions = partitions(of: deviceId)
        let headers = Self.deviceHeaders(etag: Self.etag(store.version(of: deviceId)), position: store.position(of: deviceId), json: true)
        return .deferred { [filter, cursor, limit, headers] in
            var body = Array(#"{"events":["#.utf8)
            var count = 0
            do {
                let next = try audit.events(filter, from: cursor) { line in
                    guard count < limit else { return false }
                    if count > 0 { body.append(UInt8(ascii: ",")) }
                    body += line
                    count += 1
                    return true
                }
                body += Array(#"],"nextCursor":"#.utf8) + Array((next.map { "\"\($0)\"" } ?? "null").utf8) + [UInt8(ascii: "}")]
                return HTTPResponse(status: 200, headers: headers, body: body)
            } catch {
                return .error(500, code: "log_unreadable", message: "the log could not be read: \(error)")
            }
        }
    }

    /// The partitions an audit of a device reads: the one its events arrive on (the Kafka
    /// key is the deviceId); none for a device without events.
    private func partitions(of deviceId: String) -> [Int32] {
        store.position(of: deviceId).map { [$0.partition] } ?? []
    }

    // MARK: - Parsing

    /// `/readyz` while the log has gaps no operator has acknowledged: 503, with each range.
    static func dataLost(_ gaps: [LogGap]) -> HTTPResponse {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("status", "data lost")
        writeLostRanges(gaps, &writer)
        writer.field("acknowledge", "chatledger acknowledge-loss --data DIR")
        writer.endObject()
        return HTTPResponse(status: 503, headers: [("Content-Type", "application/json")], body: writer.bytes)
    }

    /// `"lost":[{topic, partition, firstOffset, lastOffset, records, detectedAt}…]`, in
    /// `/readyz` and `/api/v1/status`.
    static func writeLostRanges(_ gaps: [LogGap], _ writer: inout JSONWriter) {
        writer.key("lost")
        writer.beginArray()
        for gap in gaps {
            writer.beginObject()
            writer.field("topic", gap.topic)
            writer.field("partition", Int64(gap.partition))
            writer.field("firstOffset", gap.firstLostOffset)
            writer.field("lastOffset", gap.lastLostOffset)
            writer.field("records", gap.lostRecords)
            writer.field("detectedAt", gap.detectedAt)
            writer.endObject()
        }
        writer.endArray()
    }

    static func json(_ status: HTTPStatus, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(text.utf8))
    }

    /// The longest device id, in characters (as `schemas/event.v1.schema.json` and the API document say).
    static let maxDeviceIdLength = 128
    /// The longest chat id, in characters.
    static let maxChatIdLength = 256

    /// The 400 for a device or chat id longer than any event can carry; nil when both fit.
    static func overlongIdentifier(deviceId: String, chatId: String? = nil) -> HTTPResponse? {
        if deviceId.unicodeScalars.count > maxDeviceIdLength {
            return .error(400, code: "bad_parameter", message: "deviceId is longer than \(maxDeviceIdLength) characters")
        }
        if let chatId, chatId.unicodeScalars.count > maxChatIdLength {
            return .error(400, code: "bad_parameter", message: "chatId is longer than \(maxChatIdLength) characters")
        }
        return nil
    }

    /// `P:O` exactly as the API document's pattern: 1–9 digits, a colon, 1–18 digits (so
    /// both always fit; no sign, no spaces).
    static func logPosition(_ text: String) -> LogPosition? {
        var partition: Int64 = 0
        var offset: Int64 = 0
        var digits = 0
        var seenColon = false
        for byte in text.utf8 {
            if byte == UInt8(ascii: ":") {
                guard !seenColon, (1...9).contains(digits) else { return nil }
                seenColon = true
                digits = 0
            } else if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                digits += 1
                guard digits <= (seenColon ? 18 : 9) else { return nil }  // so neither can overflow
                let value = Int64(byte - UInt8(ascii: "0"))
                if seenColon { offset = offset * 10 + value } else { partition = partition * 10 + value }
            } else {
                return nil
            }
        }
        guard seenColon, digits > 0 else { return nil }
        return LogPosition(partition: Int32(partition), offset: offset)
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
            // `name=` (an empty form field) is the parameter left out, as a browser sends it.
            guard !value.isEmpty else { continue }
            guard parameters[name] == nil else {
                throw Refusal(response: .error(400, code: "bad_query", message: "query parameter \(name) given twice"))
            }
            parameters[name] = value
        }
        return parameters
    }

    static func percentDecode(_ text: Substring, plusIsSpace: Bool = false) -> String? {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || plusIsSpace && $0 == UInt8(ascii: "+") }) else {
            return String(text)  // nothing to decode
        }
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                guard first < utf8.endIndex, utf8.index(after: first) < utf8.endIndex,
                    let high = hexValue(utf8[first]), let low = hexValue(utf8[utf8.index(after: first)])
                else { return nil }
                bytes.append(high << 4 | low)
                index = utf8.index(first, offsetBy: 2)
            } else {
                bytes.append(plusIsSpace && byte == UInt8(ascii: "+") ? 0x20 : byte)
                index = utf8.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// A hex digit's value (no sign, unlike `UInt8(_:radix:)`, which reads `%+f` as 15).
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// `GET …/changes`: one Server-Sent Event per device version, starting with the current
/// version (unless `Last-Event-ID` already names it). Versions applied between two looks
/// each get their event, in order, all with the log position the device reflects at the
/// look (a refetch returns that state). A jump of more than `maxSpelledOut` versions (a
/// long backlog, or an erasure, which moves the version to its log offset) is one event
/// for the newest.
final class DeviceChangeStream: HTTPStream {
    static let maxSpelledOut: UInt64 = 10_000

    private let store: ProjectionStore
    private let deviceId: String
    private let lastSent: Mutex<UInt64?>
    private let keyGeneration: @Sendable () -> Int
    private let stillAllowed: @Sendable () -> Bool
    /// The key generation last checked, and whether the stream ended (its key no longer reads the device).
    private let keyCheck: Mutex<(generation: Int, revoked: Bool)>

    /// - Parameters:
    ///   - keyGeneration: the key ring's generation; when it moves, `stillAllowed` is asked
    ///     again (once per reload, not per poll: it hashes the key).
    ///   - stillAllowed: whether the stream's key still reads the device.
    init(
        store: ProjectionStore, deviceId: String, lastEventId: String?, keyGeneration: @escaping @Sendable () -> Int = { 0 },
        stillAllowed: @escaping @Sendable () -> Bool = { true }
    ) {
        self.store = store
        self.deviceId = deviceId
        self.lastSent = Mutex(lastEventId.flatMap { UInt64($0) })
        self.keyGeneration = keyGeneration
        self.stillAllowed = stillAllowed
        keyCheck = Mutex((keyGeneration(), false))
    }

    /// The stream's last event when its key was revoked; the connection then closes.
    static let revokedEvent = Array("event: revoked\ndata: {\"reason\":\"the key no longer reads this device\"}\n\n".utf8)

    var isFinished: Bool { keyCheck.withLock { $0.revoked } }

    func poll() -> [UInt8] {
        let generation = keyGeneration()
        let revokedNow = keyCheck.withLock { check -> Bool in
            guard !check.revoked, check.generation != generation else { return false }
            check.generation = generation
            check.revoked = !stillAllowed()
            return check.revoked
        }
        if revokedNow { return Self.revokedEvent }
        if isFinished { return [] }
        let version = store.version(of: deviceId)
        let previous: UInt64?? = lastSent.withLock { last in
            defer { last = version }
            return last == version ? .none : .some(last)
        }
        guard case .some(let last) = previous else { return [] }
        let first = last.flatMap { $0 < version && version - $0 <= Self.maxSpelledOut ? $0 + 1 : nil } ?? version
        let position = store.position(of: deviceId)
        var out: [UInt8] = []
        for spelled in first...version {
            var data = JSONWriter()
            data.beginObject()
            data.field("deviceId", deviceId)
            data.field("version", Int64(spelled))
            data.key("position")
            if let position { data.string(position.description) } else { data.null() }
            data.endObject()
            out += Array("id: \(spelled)\nevent: version\ndata: ".utf8) + data.bytes + Array("\n\n".utf8)
        }
        return out
    }
}

/// How many change streams are open, against a limit (half of one loop's share of the
/// server's connections, `server(configuration:)`). A stream holds its connection for as
/// long as its client keeps it, and connections over the server's limit get 503: without
/// this bound, one reader key opening streams could take every connection and leave none
/// for other requests, `/healthz` included. Over the limit a new stream gets 503
/// `too_many_streams` with `Retry-After`.
final class StreamSlots: Sendable {
    let open = Atomic<Int>(0)
    let limit = Atomic<Int>(512)

    /// A place taken; it is given back when the stream holding it is released.
    final class Slot: Sendable {
        private let slots: StreamSlots

        fileprivate init(_ slots: StreamSlots) { self.slots = slots }

        deinit { slots.open.subtract(1, ordering: .relaxed) }
    }

    /// `reply` with `slot` kept for as long as the stream it is (or comes to be, for a
    /// relay) lasts; any other answer lets the slot go.
    static func holding(_ slot: Slot, _ reply: HTTPServer.Reply) -> HTTPServer.Reply {
        switch reply {
        case .stream(let head, let stream):
            return .stream(head: head, SlottedStream(stream, slot: slot))
        case .pending(let deadline, let fallback, let start):
            return .pending(deadline: deadline, fallback: fallback) { complete in
                start { next in complete(holding(slot, next)) }
            }
        default:
            return reply
        }
    }

    /// A stream with the slot it holds.
    private final class SlottedStream: HTTPStream {
        private let inner: any HTTPStream
        private let slot: Slot

        init(_ inner: any HTTPStream, slot: Slot) {
            self.inner = inner
            self.slot = slot
        }

        func poll() -> [UInt8] { inner.poll() }
        var isFinished: Bool { inner.isFinished }
    }

    /// A slot, or nil when `limit` streams are open.
    func take() -> Slot? {
        let limit = limit.load(ordering: .relaxed)
        var current = open.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return Slot(self) }
            current = original
        }
        return nil
    }
}
