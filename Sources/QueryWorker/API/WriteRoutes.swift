import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport
import Synchronization

/// The write routes (README, "The write API"; `schemas/openapi.yaml`): `POST /api/v1/devices/{deviceId}/chats/{chatId}/ACTION`.
///
/// Each request becomes one canonical event (`chat.read`, `chat.markedUnread`,
/// `chat.archived`, `chat.pinned`, `chat.muted`) on the canonical topic, keyed by the device
/// id, with `source: {"format":"api","keyId":…}`; it reaches the projection the way every
/// bridge event does (Kafka → log → fold). Nothing is produced for a request that is
/// refused: a key without `"write": true` (403), a bad query, header or body (400, 413,
/// 422), a chat the projection does not hold (404). Kafka is asked off the loop thread
/// (`HTTPServer.Reply.pending`): 202 with the record's position once it is acknowledged,
/// or 503 when it is not within the delivery timeout. `?wait=MS` then holds the request
/// until the projection has applied that position and answers 200 with the chat.
final class WriteRoutes: Sendable {
    /// What a write route does, by its last path segment.
    enum Action: String, CaseIterable, Sendable {
        case read, markUnread, archive, pin, mute

        var eventType: EventType {
            switch self {
            case .read: return .chatRead
            case .markUnread: return .chatMarkedUnread
            case .archive: return .chatArchived
            case .pin: return .chatPinned
            case .mute: return .chatMuted
            }
        }

        /// The payload of a request without a body, where its type allows one.
        var payloadWithoutBody: EventPayload? {
            switch self {
            case .read: return .chatRead(ChatRead())
            case .markUnread: return .chatMarkedUnread
            case .archive, .pin, .mute: return nil
            }
        }

        var bodyExample: String {
            switch self {
            case .read: return #"{"upToMessageId": "…"} (or no body)"#
            case .markUnread: return "{} (or no body)"
            case .archive: return #"{"archived": true|false}"#
            case .pin: return #"{"pinned": true|false}"#
            case .mute: return #"{"muteUntil": -1|0|epoch ms}"#
            }
        }
    }

    /// The largest request body, in bytes (the largest valid one is a few hundred).
    static let maxBodyBytes = 4_096
    /// The longest `Idempotency-Key`, in bytes.
    static let maxIdempotencyKeyBytes = 255
    /// How long past the delivery timeout the server waits for Kafka's answer before it
    /// answers 503 itself (librdkafka checks its timeouts about once a second).
    static let deliveryGrace = Duration.seconds(2)

    private let store: ProjectionStore
    private let publisher: (any EventPublisher)?
    private let clock: @Sendable () -> Int64
    private let idempotency: IdempotencyKeys
    let counters = WriteCounters()
    private let parser = EventParser()

    init(store: ProjectionStore, publisher: (any EventPublisher)?, clock: @escaping @Sendable () -> Int64, idempotency: IdempotencyKeys) {
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.idempotency = idempotency
    }

    /// The answer to a POST on a write route, by a key `QueryAPI` has let through (valid,
    /// with `deviceId` in its scope, allowed to write).
    func answer(
        _ head: HTTPRequestHead, _ body: [UInt8], grant: APIKeys.Grant, deviceId: String, chatId: String, action: Action,
        query: [String: String], arrived: ContinuousClock.Instant = .now
    ) -> HTTPServer.Reply {
        guard let publisher else {
            return .response(
                .error(501, code: "not_implemented", message: "writes need Kafka: this server was started without --brokers"))
        }
        // MARK: Request
        if let unknown = query.keys.first(where: { $0 != "wait" }) {
            return refuse(400, "unknown_parameter", "unknown query parameter \(unknown)")
        }
        var wait = 0
        if let text = query["wait"] {
            guard let value = Int(text), (0...QueryAPI.maxWaitMilliseconds).contains(value) else {
                return refuse(400, "bad_parameter", "wait must be 0...\(QueryAPI.maxWaitMilliseconds) ms")
            }
            wait = value
        }
        let idempotencyKeys = head.headers.filter { $0.name == "idempotency-key" }
        guard idempotencyKeys.count <= 1 else { return refuse(400, "bad_idempotency_key", "Idempotency-Key given twice") }
        let idempotencyKey = idempotencyKeys.first?.value
        if let idempotencyKey {
            guard (1...Self.maxIdempotencyKeyBytes).contains(idempotencyKey.utf8.count),
                idempotencyKey.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
            else {
                return refuse(
                    400, "bad_idempotency_key", "Idempotency-Key must be 1 to \(Self.maxIdempotencyKeyBytes) visible ASCII characters")
            }
        }

        // MARK: Body
        let payload: EventPayload
        if body.isEmpty {
            guard let empty = action.payloadWithoutBody else {
                return refuse(400, "missing_body", "this route needs a JSON body: \(action.bodyExample)")
            }
            payload = empty
        } else {
            // The body is read as JSON whatever `Content-Type` says (`curl -d` and Python's
            // urllib send a form type by default): SPEC's body is JSON, and the parser's rules
            // refuse anything else (400).
            do {
                payload = try parser.parseData(body, type: action.eventType, maxBytes: Self.maxBodyBytes)
            } catch {
                let field = error.path.isEmpty ? "body" : error.path
                let status: HTTPStatus = error.code == .tooLarge ? .contentTooLarge : 400
                return refuse(status, error.code.description, "\(field): \(error.message); expected \(action.bodyExample)")
            }
        }

        // MARK: Event
        let now = clock()
        guard store.hasChat(deviceId, chatId: chatId) else {
            return .response(.error(404, code: "not_found", message: "no such chat"))
        }
        let eventId =
            idempotencyKey.map {
                Self.eventId(keyId: grant.keyId, idempotencyKey: $0, deviceId: deviceId, chatId: chatId, payload: payload)
            } ?? Self.randomEventId()
        let event = Event(
            eventId: eventId, deviceId: deviceId, occurredAt: now, chatId: chatId, payload: payload, source: .api(keyId: grant.keyId))
        let value = EventEncoder.encode(event)
        // What the projection will parse: anything it would dead-letter is refused here.
        do {
            _ = try parser.parse(value, kafkaKey: Array(deviceId.utf8))
        } catch {
            return refuse(400, error.code.description, "\(error.path): \(error.message)")
        }
        let written = Written(deviceId: deviceId, chatId: chatId, eventId: eventId, type: action.eventType, wait: wait, arrived: arrived)

        // MARK: Idempotency
        let rememberedAs = idempotencyKey.map { grant.keyId + "\u{0}" + $0 }
        if let rememberedAs {
            switch idempotency.claim(rememberedAs, eventId: eventId) {
            case .fresh:
                break
            case .inFlight:
                var response = HTTPResponse.error(
                    409, code: "idempotency_conflict", message: "a request with this Idempotency-Key is still being written")
                response.headers.append(("Retry-After", "1"))
                return .response(response)
            case .written(let position):
                counters.replayed()
                return after(written, at: position, replayed: true)
            case .reused:
                return refuse(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
            }
        }

        // MARK: Produce
        // Sent by the server itself if Kafka's answer is overdue (it should never be).
        var unavailable = HTTPResponse.error(
            503, code: "kafka_unavailable",
            message: "Kafka did not acknowledge the event in time; it may still be written; retry with the same Idempotency-Key")
        unavailable.headers.append(("Retry-After", "1"))
        return .pending(deadline: .now + publisher.deliveryTimeout + Self.deliveryGrace, fallback: unavailable) { [self] complete in
            publisher.publish(key: Array(deviceId.utf8), value: value) { [self] outcome in
                switch outcome {
                case .written(let position):
                    if let rememberedAs { idempotency.written(rememberedAs, at: position) }
                    counters.produced(action.eventType)
                    complete(after(written, at: position, replayed: false))
                case .failed(let reason, let possiblyWritten):
                    if let rememberedAs { idempotency.release(rememberedAs) }
                    counters.failed()
                    Logger(label: "write").warning(
                        "event not acknowledged by Kafka", ["eventId": eventId, "reason": reason, "possiblyWritten": possiblyWritten])
                    var response = HTTPResponse.error(
                        503, code: "kafka_unavailable",
                        message: "Kafka did not acknowledge the event (\(reason)); "
                            + (possiblyWritten
                                ? "it may still be written; retry with the same Idempotency-Key" : "nothing was written; retry"))
                    response.headers.append(("Retry-After", "1"))
                    complete(.response(response))
                }
            }
        }
    }

    /// What a request whose event was written is answered: 202 at once, or with `wait` the
    /// chat once the projection has applied the position (503 `not_yet` if not in time).
    private struct Written: Sendable {
        var deviceId: String
        var chatId: String
        var eventId: String
        var type: EventType
        var wait: Int
        var arrived: ContinuousClock.Instant
    }

    private func after(_ written: Written, at position: LogPosition, replayed: Bool) -> HTTPServer.Reply {
        var headers: [(name: String, value: String)] = [("X-Ledger-Position", position.description), ("Cache-Control", "no-cache")]
        if replayed { headers.append(("Idempotent-Replayed", "true")) }
        guard written.wait > 0 else {
            var body = JSONWriter()
            body.beginObject()
            body.field("eventId", written.eventId)
            body.field("type", written.type.rawValue)
            body.field("position", position.description)
            body.endObject()
            return .response(HTTPResponse(status: 202, headers: [("Content-Type", "application/json")] + headers, body: body.bytes))
        }
        var notYet = HTTPResponse.error(
            503, code: "not_yet",
            message: "the event is written at \(position) but not applied within \(written.wait) ms; read it with minPosition")
        notYet.headers += [("Retry-After", "1")] + headers
        let (store, clock) = (store, clock)
        return .awaiting(deadline: written.arrived + .milliseconds(written.wait), fallback: notYet) {
            guard let applied = store.appliedOffset(partition: position.partition), applied >= position.offset else { return nil }
            guard let view = store.chat(written.deviceId, chatId: written.chatId, now: clock()) else {
                return .error(404, code: "not_found", message: "the chat is no longer in the list")
            }
            var answer = [("Content-Type", "application/json"), ("ETag", view.entityTag), ("Cache-Control", "no-cache")]
            answer.append(("X-Ledger-Position", (view.position ?? position).description))
            if replayed { answer.append(("Idempotent-Replayed", "true")) }
            return HTTPResponse(status: 200, headers: answer, body: view.bytes)
        }
    }

    /// A refused request: counted by reason, nothing produced.
    private func refuse(_ status: HTTPStatus, _ reason: String, _ message: String) -> HTTPServer.Reply {
        counters.rejected(reason)
        return .response(.error(status, code: reason, message: message))
    }

    /// The event id of a request with an `Idempotency-Key`: a digest of the key's id, the
    /// idempotency key and what the request asks (device, chat, type, data), so a retry makes
    /// the same id and a different request under the same key a different one.
    static func eventId(keyId: String, idempotencyKey: String, deviceId: String, chatId: String, payload: EventPayload) -> String {
        let data = EventEncoder.encode(Event(eventId: "-", deviceId: deviceId, occurredAt: 0, chatId: chatId, payload: payload))
        var input = Array("chatledger-write-v1".utf8)
        for part in [Array(keyId.utf8), Array(idempotencyKey.utf8), data] {
            input += withUnsafeBytes(of: UInt32(part.count).bigEndian, Array.init)
            input += part
        }
        return "api-" + SHA256.hash(input).hex.prefix(32)
    }

    /// The event id of a request without one: 128 random bits.
    static func randomEventId() -> String {
        var generator = SystemRandomNumberGenerator()
        return "api-" + String(format: "%016llx%016llx", generator.next() as UInt64, generator.next() as UInt64)
    }
}

/// The write API's counters for `/metrics`.
final class WriteCounters: Sendable {
    private struct Counts {
        var produced: [String: Int] = Dictionary(uniqueKeysWithValues: WriteRoutes.Action.allCases.map { ($0.eventType.rawValue, 0) })
        var rejected: [String: Int] = [:]
        var failed = 0
        var replayed = 0
    }

    private let counts = Mutex(Counts())

    func produced(_ type: EventType) { counts.withLock { $0.produced[type.rawValue, default: 0] += 1 } }
    func rejected(_ reason: String) { counts.withLock { $0.rejected[reason, default: 0] += 1 } }
    func failed() { counts.withLock { $0.failed += 1 } }
    func replayed() { counts.withLock { $0.replayed += 1 } }

    /// Registers `chatledger_write_*`.
    func register(in registry: MetricsRegistry) {
        registry.collect(
            "chatledger_write_events_total", help: "Events the write API produced to Kafka (acknowledged), by type.", kind: .counter
        ) { [self] in counts.withLock { $0.produced }.sorted { $0.key < $1.key }.map { .init([("type", $0.key)], Double($0.value)) } }
        registry.collect(
            "chatledger_write_rejected_total",
            help: "Write requests refused for their query, headers or body (400, 413, 422), nothing produced, by reason.", kind: .counter
        ) { [self] in counts.withLock { $0.rejected }.sorted { $0.key < $1.key }.map { .init([("reason", $0.key)], Double($0.value)) } }
        registry.collect(
            "chatledger_write_failures_total", help: "Write requests Kafka did not acknowledge in time (503).", kind: .counter
        ) { [self] in [.init(Double(counts.withLock { $0.failed }))] }
        registry.collect(
            "chatledger_write_replays_total", help: "Retries answered from a remembered Idempotency-Key, nothing produced.", kind: .counter
        ) { [self] in [.init(Double(counts.withLock { $0.replayed }))] }
    }
}
