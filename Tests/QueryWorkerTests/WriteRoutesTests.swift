import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Synchronization
import Testing

/// The write routes (SPEC §7) over a real loopback server, with a publisher standing in for
/// Kafka (the real producer and broker are in `ChatLedgerCLITests/WriteAPITests`).
@Suite("Write routes: POST …/chats/{chatId}/read|markUnread|archive|pin|mute")
struct WriteRoutesTests {
    static let keysJSON = """
        {"keys":[
          {"id":"crm-agents","key":"writer-key","devices":["dev-1"],"role":"reader","write":true},
          {"keySha256":"\(SHA256.hash(Array("hashed-writer".utf8)).hex)","devices":["*"],"role":"auditor","write":true},
          {"key":"reader-key","devices":["dev-1"],"role":"reader"},
          {"key":"auditor-key","devices":["*"],"role":"auditor","write":false}
        ]}
        """
    static let chat = "/api/v1/devices/dev-1/chats/anna%40c.us"

    let store = ProjectionStore()
    let metrics = MetricsRegistry()

    init() {
        for (offset, id) in ["M1", "M2", "M3"].enumerated() {
            store.apply(
                Event(eventId: "E\(id)", deviceId: "dev-1", occurredAt: 100 + Int64(offset), chatId: "anna@c.us",
                      payload: .messageCreated(MessageCreated(messageId: id, fromMe: false, kind: .text, preview: "hi \(id)"))),
                at: LogPosition(partition: 0, offset: Int64(offset)))
        }
        store.apply(
            Event(eventId: "EB", deviceId: "dev-2", occurredAt: 100, chatId: "bob@c.us",
                  payload: .messageCreated(MessageCreated(messageId: "B1", fromMe: false, kind: .text, preview: "hey"))),
            at: LogPosition(partition: 0, offset: 3))
    }

    /// A server answering with the API over `publisher`; stop it when done.
    func serve(_ publisher: (any EventPublisher)?) throws -> (HTTPServer, UInt16) {
        let api = QueryAPI(store: store, keys: KeyRing(try APIKeys(json: Array(Self.keysJSON.utf8))), metrics: metrics, publisher: publisher)
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let server = api.server(configuration: configuration)
        return (server, try server.start())
    }

    func post(_ port: UInt16, _ target: String, key: String? = "writer-key", body: String = "", contentType: String? = "application/json", headers: [String] = []) throws -> WireResponse {
        try WireResponse.exchange(port, "POST", target, key: key, body: Array(body.utf8), contentType: contentType, headers: headers)
    }

    func unreadCount() -> Int? {
        store.chat("dev-1", chatId: "anna@c.us", now: 0).flatMap { view in
            (try? JSONSerialization.jsonObject(with: Data(view.bytes)) as? [String: Any])?["unreadCount"] as? Int
        }
    }

    @Test("each route produces its event type keyed by the device, with source api and the key's id (never the key), and answers 202 with the record's position")
    func eachRouteProducesItsEvent() throws {
        let publisher = FakePublisher(applyTo: store)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        let cases: [(String, String, EventPayload)] = [
            ("read", "", .chatRead(ChatRead())),
            ("read", #"{"upToMessageId":"M2"}"#, .chatRead(ChatRead(upToMessageId: "M2"))),
            ("markUnread", "", .chatMarkedUnread),
            ("markUnread", "{}", .chatMarkedUnread),
            ("archive", #"{"archived":true}"#, .chatArchived(archived: true)),
            ("pin", #"{"pinned":true}"#, .chatPinned(pinned: true)),
            ("mute", #"{"muteUntil":-1}"#, .chatMuted(muteUntil: -1)),
            ("mute", #"{ "muteUntil" : 0 }"#, .chatMuted(muteUntil: 0)),
            // JSON Schema's integer: a whole number written with a fraction or exponent.
            ("mute", #"{"muteUntil":4102444800000.0}"#, .chatMuted(muteUntil: 4_102_444_800_000)),
            ("mute", #"{"muteUntil":4.1025E12}"#, .chatMuted(muteUntil: 4_102_500_000_000)),
        ]
        for (index, (action, body, payload)) in cases.enumerated() {
            let response = try post(port, Self.chat + "/" + action, body: body)
            #expect(response.status == 202, "\(action) \(body): \(response.text)")
            #expect(response.headers["x-ledger-position"] == "0:\(100 + index)")
            #expect(response.json["position"] as? String == "0:\(100 + index)")
            let event = try #require(publisher.events.last)
            #expect(response.json["eventId"] as? String == event.eventId)
            #expect(response.json["type"] as? String == event.type)
            #expect(event.payload == payload, "\(action) \(body)")
            #expect(event.deviceId == "dev-1" && event.chatId == "anna@c.us")
            #expect(event.source == .api(keyId: "crm-agents"))
            #expect(event.eventId.hasPrefix("api-") && event.eventId.count == 36)
        }
        #expect(publisher.keys.allSatisfy { $0 == Array("dev-1".utf8) }, "keyed by the device id")
        #expect(!publisher.values.contains { String(decoding: $0, as: UTF8.self).contains("writer-key") }, "the key never reaches an event")
        #expect(Set(publisher.events.map(\.eventId)).count == cases.count, "without Idempotency-Key every request is its own event")

        // A key without an id is named by its digest's first 12 hex digits.
        let hashed = try post(port, "/api/v1/devices/dev-2/chats/bob%40c.us/pin", key: "hashed-writer", body: #"{"pinned":false}"#)
        #expect(hashed.status == 202)
        #expect(publisher.events.last?.source == .api(keyId: "sha256:" + SHA256.hash(Array("hashed-writer".utf8)).hex.prefix(12)))
    }

    @Test("401 without a valid key, 404 outside the key's scope (before its role is looked at), 403 for keys without write, 501 without Kafka; nothing produced")
    func rolesAndScope() throws {
        let publisher = FakePublisher(applyTo: store)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        #expect(try post(port, Self.chat + "/read", key: nil).status == 401)
        #expect(try post(port, Self.chat + "/read", key: "wrong").status == 401)
        let outside = try post(port, "/api/v1/devices/dev-2/chats/bob%40c.us/read", key: "writer-key")
        #expect(outside.status == 404)
        #expect(try post(port, "/api/v1/devices/dev-2/chats/bob%40c.us/read", key: "reader-key").status == 404, "scope first: no hint the device exists")
        let reader = try post(port, Self.chat + "/read", key: "reader-key")
        #expect(reader.status == 403)
        #expect(reader.errorCode == "forbidden")
        #expect(try post(port, Self.chat + "/archive", key: "auditor-key", body: #"{"archived":true}"#).status == 403, "auditors read, they do not write")
        #expect(try post(port, "/api/v1/devices/dev-1/chats/nobody%40c.us/read").status == 404, "a chat the device does not have")
        #expect(publisher.values.isEmpty)
        #expect(unreadCount() == 3)

        let (plain, plainPort) = try serve(nil)
        defer { plain.stop() }
        let unavailable = try post(plainPort, Self.chat + "/read")
        #expect(unavailable.status == 501)
        #expect(unavailable.text.contains("--brokers"))
        #expect(try post(plainPort, Self.chat + "/read", key: "reader-key").status == 403, "the role is still checked first")
    }

    @Test("methods: GET on a write route is 405 with Allow: POST; POST on a read route 405 with Allow: GET, HEAD; POST to no route 404; a GET with a body is 400")
    func methods() throws {
        let (server, port) = try serve(FakePublisher())
        defer { server.stop() }
        let get = try WireResponse.exchange(port, "GET", Self.chat + "/read", key: "writer-key")
        #expect(get.status == 405)
        #expect(get.headers["allow"] == "POST")
        let postElsewhere = try post(port, "/api/v1/devices/dev-1/chats")
        #expect(postElsewhere.status == 405)
        #expect(postElsewhere.headers["allow"] == "GET, HEAD")
        #expect(try post(port, Self.chat + "/delete").status == 404, "not a write action: no such route")
        let withBody = try WireResponse.exchange(port, "GET", "/api/v1/devices/dev-1/chats", key: "writer-key", body: Array("{}".utf8))
        #expect(withBody.status == 400)
        #expect(withBody.errorCode == "unexpected_body")
    }

    @Test("each bad request is refused (400, 413) with its reason, nothing produced, and counted in /metrics by reason", arguments: [
        ("archive", #"{"archived":true,"pinned":true}"#, "application/json", 400, "unknown_field"),
        ("archive", #"{"archived":"yes"}"#, "application/json", 400, "wrong_type"),
        ("archive", #"{"archived":null}"#, "application/json", 400, "wrong_type"),
        ("archive", #"{"archived":true,"archived":false}"#, "application/json", 400, "duplicate_key"),
        ("archive", #"{"archived":true}x"#, "application/json", 400, "invalid_json"),
        ("archive", #"{"archived":true},"source":{"format":"api","keyId":"someone"}"#, "application/json", 400, "invalid_json"),
        ("archive", "[true]", "application/json", 400, "wrong_type"),
        ("archive", "not json", "application/json", 400, "invalid_json"),
        ("archive", "", "application/json", 400, "missing_body"),
        ("archive", "{}", "application/json", 400, "missing_field"),
        ("pin", #"{"pinned":1}"#, "application/json", 400, "wrong_type"),
        ("mute", #"{"muteUntil":-2}"#, "application/json", 400, "invalid_value"),
        ("mute", #"{"muteUntil":1.5}"#, "application/json", 400, "wrong_type"),
        ("mute", #"{"muteUntil":1.25e1}"#, "application/json", 400, "wrong_type"),
        ("mute", #"{"muteUntil":1e19}"#, "application/json", 400, "invalid_value"),
        ("mute", #"{"muteUntil":49.}"#, "application/json", 400, "invalid_json"),
        ("mute", #"{"muteUntil":99999999999999999999}"#, "application/json", 400, "invalid_value"),
        ("read", #"{"upToMessageId":""}"#, "application/json", 400, "invalid_value"),
        ("read", "{\"upToMessageId\":\"\u{7F}" + String(repeating: "m", count: 200) + "\"}", "application/json", 400, "too_long"),
        ("read", #"{"upToMessageId":""# + String(repeating: "m", count: 5_000) + #""}"#, "application/json", 413, "too_large"),
        ("read", #"{"upToMessageId":"\ud800"}"#, "application/json", 400, "invalid_utf8"),
        ("read", "upToMessageId=M1", "application/x-www-form-urlencoded", 400, "invalid_json"),
        ("read?colour=red", "", "application/json", 400, "unknown_parameter"),
        ("read?wait=-1", "", "application/json", 400, "bad_parameter"),
        ("read?wait=30001", "", "application/json", 400, "bad_parameter"),
    ])
    func badRequests(action: String, body: String, contentType: String, status: Int, reason: String) throws {
        let publisher = FakePublisher(applyTo: store)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        let response = try post(port, Self.chat + "/" + action, body: body, contentType: contentType.isEmpty ? nil : contentType)
        #expect(response.status == status, "\(response.text)")
        #expect(response.errorCode == reason, "\(response.text)")
        #expect(publisher.values.isEmpty, "nothing produced")
        #expect(metrics.render().contains(#"chatledger_write_rejected_total{reason="\#(reason)"} 1"#))
        #expect(unreadCount() == 3)
    }

    @Test("a JSON body is read whatever Content-Type says (none, curl -d's form type, text/plain, JSON with a charset): SPEC's body is JSON", arguments: [
        "", "application/x-www-form-urlencoded", "text/plain", "application/json; charset=latin1",
    ])
    func jsonBodyWhateverContentType(contentType: String) throws {
        let publisher = FakePublisher(applyTo: store)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        let response = try post(
            port, Self.chat + "/archive", body: #"{"archived":true}"#, contentType: contentType.isEmpty ? nil : contentType)
        #expect(response.status == 202, "\(response.text)")
        #expect(publisher.values.count == 1, "one event produced")
    }

    @Test("bad Idempotency-Keys are refused; invalid UTF-8 in a body is refused")
    func badHeadersAndBytes() throws {
        let publisher = FakePublisher(applyTo: store)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        for header in ["Idempotency-Key: " + String(repeating: "k", count: 256), "Idempotency-Key: a b", "Idempotency-Key: é"] {
            #expect(try post(port, Self.chat + "/read", headers: [header]).errorCode == "bad_idempotency_key", "\(header)")
        }
        #expect(try post(port, Self.chat + "/read", headers: ["Idempotency-Key: a", "Idempotency-Key: b"]).errorCode == "bad_idempotency_key")
        let bytes = Array(#"{"upToMessageId":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)
        let response = try WireResponse.exchange(port, "POST", Self.chat + "/read", key: "writer-key", body: bytes)
        #expect(response.status == 400)
        #expect(response.errorCode == "invalid_utf8")
        #expect(publisher.values.isEmpty)
    }

    @Test("a retried POST with the same Idempotency-Key produces no second record: the same event id and position, marked as a replay; the same key for another request is 422; another API key's same Idempotency-Key is another event")
    func idempotentRetry() throws {
        let publisher = FakePublisher(applyTo: store)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        let first = try post(port, Self.chat + "/read", headers: ["Idempotency-Key: agent-7-read-1"])
        #expect(first.status == 202)
        #expect(first.headers["idempotent-replayed"] == nil)
        let retry = try post(port, Self.chat + "/read", body: "{ }", headers: ["Idempotency-Key: agent-7-read-1"])
        #expect(retry.status == 202, "an equal body in another spelling is the same request")
        #expect(retry.headers["idempotent-replayed"] == "true")
        #expect(retry.json["eventId"] as? String == first.json["eventId"] as? String)
        #expect(retry.headers["x-ledger-position"] == first.headers["x-ledger-position"])
        #expect(publisher.values.count == 1, "one record")

        let reused = try post(port, Self.chat + "/read", body: #"{"upToMessageId":"M1"}"#, headers: ["Idempotency-Key: agent-7-read-1"])
        #expect(reused.status == 422)
        #expect(reused.errorCode == "idempotency_key_reused")
        #expect(try post(port, Self.chat + "/markUnread", headers: ["Idempotency-Key: agent-7-read-1"]).status == 422)
        #expect(publisher.values.count == 1)

        // The id derives from the key's id and the Idempotency-Key (and what is asked), so
        // even a process that forgot the key makes the same id, which the fold ignores.
        let expected = try #require(publisher.events.first?.eventId)
        let again = try post(port, "/api/v1/devices/dev-1/chats/anna%40c.us/read", key: "hashed-writer", headers: ["Idempotency-Key: agent-7-read-1"])
        #expect(again.status == 202)
        #expect(publisher.values.count == 2)
        #expect(publisher.events.last?.eventId != expected, "another key's requests are its own")
        #expect(metrics.render().contains("chatledger_write_replays_total 1\n"))
        #expect(metrics.render().contains(#"chatledger_write_events_total{type="chat.read"} 2"#))
    }

    @Test("the event id of a retry survives a restart: a fresh API (no remembered keys) makes the same id, and the projection applies it once")
    func eventIdSurvivesRestart() throws {
        let first = FakePublisher(applyTo: store)
        let (server, port) = try serve(first)
        #expect(try post(port, Self.chat + "/archive", body: #"{"archived":true}"#, headers: ["Idempotency-Key: k-1"]).status == 202)
        server.stop()
        let second = FakePublisher(applyTo: store, firstOffset: 200)
        let (restarted, restartedPort) = try serve(second)
        defer { restarted.stop() }
        #expect(try post(restartedPort, Self.chat + "/archive", body: #"{"archived": true}"#, headers: ["Idempotency-Key: k-1"]).status == 202)
        #expect(first.events.map(\.eventId) == second.events.map(\.eventId))
        #expect(store.counts.duplicate == 1, "the second record changed nothing")
    }

    @Test("a concurrent retry while the first is still being written is 409; a retry after a failure produces again")
    func retryWhileInFlightAndAfterFailure() throws {
        let publisher = FakePublisher(mode: .hold)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        let firstDone = DispatchSemaphore(value: 0)
        let firstStatus = Mutex(0)
        LedgerThread {
            let response = try? self.post(port, Self.chat + "/read", headers: ["Idempotency-Key: k-2"])
            firstStatus.withLock { $0 = response?.status ?? -1 }
            firstDone.signal()
        }.start()
        #expect(publisher.waitForPublish())
        let concurrent = try post(port, Self.chat + "/read", headers: ["Idempotency-Key: k-2"])
        #expect(concurrent.status == 409)
        #expect(concurrent.headers["retry-after"] == "1")
        publisher.releaseHeld(applyingTo: store)
        #expect(firstDone.wait(timeout: .now() + 10) == .success)
        #expect(firstStatus.withLock { $0 } == 202)

        publisher.setMode(.fail(possiblyWritten: false))
        let failed = try post(port, Self.chat + "/pin", body: #"{"pinned":true}"#, headers: ["Idempotency-Key: k-3"])
        #expect(failed.status == 503)
        #expect(failed.errorCode == "kafka_unavailable")
        #expect(failed.headers["retry-after"] == "1")
        publisher.setMode(.write)
        #expect(try post(port, Self.chat + "/pin", body: #"{"pinned":true}"#, headers: ["Idempotency-Key: k-3"]).status == 202, "the failure was forgotten")
        #expect(publisher.values.count == 3)
        #expect(metrics.render().contains("chatledger_write_failures_total 1\n"))
    }

    @Test("?wait=MS holds the answer until the projection applied the event, then 200 with the chat; not applied in time is 503 not_yet with the position to read it at later")
    func waitForApplied() throws {
        let publisher = FakePublisher()  // written, applied only when this test says so (ingest's part)
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        let answered = DispatchSemaphore(value: 0)
        let result = Mutex<WireResponse?>(nil)
        LedgerThread {
            let response = try? self.post(port, Self.chat + "/read?wait=10000")
            result.withLock { $0 = response }
            answered.signal()
        }.start()
        #expect(publisher.waitForPublish())
        #expect(answered.wait(timeout: .now() + .milliseconds(100)) == .timedOut, "held while not applied")
        let event = try #require(publisher.events.first)
        store.apply(event, at: LogPosition(partition: 0, offset: 100))
        server.wake()  // what ingest does after each batch
        #expect(answered.wait(timeout: .now() + 10) == .success)
        let response = try #require(result.withLock { $0 })
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json["unreadCount"] as? Int == 0)
        #expect(response.json["id"] as? String == "anna@c.us")
        #expect(response.headers["x-ledger-position"] == "0:100")
        #expect(response.headers["etag"] != nil)
        #expect(unreadCount() == 0)

        let start = ContinuousClock.now
        let late = try post(port, Self.chat + "/markUnread?wait=200")
        #expect(late.status == 503)
        #expect(late.errorCode == "not_yet")
        #expect(late.headers["x-ledger-position"] == "0:101", "where to read it with minPosition")
        #expect(late.headers["retry-after"] == "1")
        #expect(ContinuousClock.now - start >= .milliseconds(200))
    }

    @Test("while Kafka holds a write, the loop answers other requests; a write Kafka never answers gets 503 by the server's own deadline")
    func kafkaHoldingDoesNotBlockTheLoop() throws {
        let publisher = FakePublisher(mode: .hold, deliveryTimeout: .milliseconds(100))
        let (server, port) = try serve(publisher)
        defer { server.stop() }
        let answered = DispatchSemaphore(value: 0)
        let result = Mutex<(WireResponse?, Duration)>((nil, .zero))
        LedgerThread {
            let start = ContinuousClock.now
            let response = try? self.post(port, Self.chat + "/read")
            result.withLock { $0 = (response, ContinuousClock.now - start) }
            answered.signal()
        }.start()
        #expect(publisher.waitForPublish())
        let start = ContinuousClock.now
        #expect(try WireResponse.exchange(port, "GET", "/healthz", key: nil).status == 200)
        #expect(try WireResponse.exchange(port, "GET", Self.chat, key: "writer-key").json["unreadCount"] as? Int == 3)
        #expect(ContinuousClock.now - start < .seconds(1), "answered while the write waits")
        #expect(answered.wait(timeout: .now() + 10) == .success)
        let (response, elapsed) = result.withLock { $0 }
        #expect(response?.status == 503)
        #expect(response?.errorCode == "kafka_unavailable")
        #expect(elapsed < .seconds(4), "the delivery timeout and its grace: \(elapsed)")
        publisher.releaseHeld()  // a late answer for a request already answered changes nothing
        #expect(try WireResponse.exchange(port, "GET", "/healthz", key: nil).status == 200)
    }

    @Test("3,000 damaged bodies: never a crash, always 202 (a valid body) or a refusal, and exactly one event per 202")
    func damagedBodies() throws {
        let publisher = FakePublisher()
        let api = QueryAPI(store: store, keys: KeyRing(try APIKeys(json: Array(Self.keysJSON.utf8))), publisher: publisher)
        let seeds: [(String, String)] = [
            ("archive", #"{"archived":true}"#), ("pin", #"{"pinned":false}"#), ("mute", #"{"muteUntil":1732500000000}"#),
            ("read", #"{"upToMessageId":"3EB0C767D097B7C7C030"}"#), ("markUnread", "{}"),
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random(_ bound: Int) -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state % UInt64(bound))
        }
        let alphabet = Array(#"{}[]":,\ 0123456789-.eEtruefalsnl"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC0, 0xE2, 0xF0, 0xFF]
        var accepted = 0
        for _ in 0..<3_000 {
            let (action, seed) = seeds[random(seeds.count)]
            var body = Array(seed.utf8)
            for _ in 0...random(3) {
                switch random(4) {
                case 0 where !body.isEmpty: body[random(body.count)] = alphabet[random(alphabet.count)]
                case 1: body.insert(alphabet[random(alphabet.count)], at: random(body.count + 1))
                case 2 where !body.isEmpty: body.remove(at: random(body.count))
                default: body = Array(body.prefix(random(body.count + 1)))
                }
            }
            var text = "POST \(Self.chat)/\(action) HTTP/1.1\r\nHost: x\r\nx-api-key: writer-key\r\nContent-Type: application/json\r\n"
            text += "Content-Length: \(body.count)\r\n\r\n"
            guard case .request(let head, let parsedBody, _) = HTTPRequestParser().parse(Array(text.utf8) + body) else {
                Issue.record("the request itself did not parse")
                continue
            }
            let response = api.handle(head, parsedBody)
            #expect([202, 400].contains(response.status), "\(String(decoding: body, as: UTF8.self)): \(response.status)")
            if response.status == 202 { accepted += 1 }
        }
        #expect(publisher.values.count == accepted, "one event per accepted request, none for a refused one")
        #expect(accepted > 0 && accepted < 3_000)
    }
}
