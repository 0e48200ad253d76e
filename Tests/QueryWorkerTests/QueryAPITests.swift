import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Synchronization
import Testing

@Suite("QueryAPI: the v1 routes")
struct QueryAPITests {
    static let keysJSON = """
        {"keys":[
          {"key":"test-api-key-123","devices":["*"],"role":"auditor"},
          {"keySha256":"\(SHA256.hash(Array("reader-key".utf8)).hex)","devices":["dev-1"],"role":"reader"}
        ]}
        """

    final class Flag: Sendable {
        private let value = Atomic<Bool>(true)
        var isSet: Bool { value.load(ordering: .relaxed) }
        func set(_ newValue: Bool) { value.store(newValue, ordering: .relaxed) }
    }

    let store = ProjectionStore()
    let ready = Flag()
    var offset: Int64 = 0

    func api() throws -> QueryAPI {
        let ready = self.ready
        return QueryAPI(store: store, keys: KeyRing(try APIKeys(json: Array(Self.keysJSON.utf8))), isReady: { ready.isSet }, clock: { 0 })
    }

    mutating func incoming(_ device: String, _ chat: String, _ id: String) {
        store.apply(
            Event(eventId: "E\(offset)", deviceId: device, occurredAt: 100 + offset, chatId: chat,
                  payload: .messageCreated(MessageCreated(messageId: id, fromMe: false, kind: .text, preview: "hi"))),
            at: LogPosition(partition: 0, offset: offset))
        offset += 1
    }

    func get(_ api: QueryAPI, _ target: String, key: String? = "test-api-key-123", headers: [String] = [], method: String = "GET") -> HTTPResponse {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: x\r\n"
        if let key { text += "x-api-key: \(key)\r\n" }
        for header in headers { text += header + "\r\n" }
        guard case .request(let head, let body, _) = HTTPRequestParser().parse(Array((text + "\r\n").utf8)) else {
            return HTTPResponse(status: -1)
        }
        return api.handle(head, body)
    }

    /// A log in a new temporary directory: `messages` incoming messages of dev-1 on
    /// partition 0 (chat `c{i % chats}@c.us`), each applied to `store` at its position too.
    /// The caller removes the directory.
    func writeLog(messages: Int, chats: Int, maxSegmentBytes: Int = 128 << 20) throws -> (directory: String, partition: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-audit-\(UUID().uuidString)").path
        let partitionDirectory = EventLog(dataDirectory: directory).directory(topic: Self.topic, partition: 0)
        let writer = try PartitionWriter(
            directory: partitionDirectory, topic: Self.topic, partition: 0, options: .init(fsync: .never, maxSegmentBytes: maxSegmentBytes))
        var records: [LogRecord] = []
        for offset in 0..<messages {
            let event = Event(
                eventId: "E\(offset)", deviceId: "dev-1", occurredAt: 100 + Int64(offset), chatId: "c\(offset % chats)@c.us",
                payload: .messageCreated(MessageCreated(messageId: "M\(offset)", fromMe: false, kind: .text, preview: "hello")))
            records.append(LogRecord(offset: Int64(offset), key: Array("dev-1".utf8), value: EventEncoder.encode(event)))
            store.apply(event, at: LogPosition(partition: 0, offset: Int64(offset)))
        }
        try writer.append(records)
        try writer.sync()
        return (directory, partitionDirectory)
    }

    static let topic = "wa.device-events"

    /// The API with the auditor routes over the log in `directory`.
    func auditedAPI(_ directory: String) throws -> QueryAPI {
        QueryAPI(
            store: store, keys: KeyRing(try APIKeys(json: Array(Self.keysJSON.utf8))), audit: AuditLog(dataDirectory: directory, topic: Self.topic),
            isReady: { true }, clock: { 0 })
    }

    /// The API behind a real server on a free loopback port, wired as the commands wire it.
    func serve(_ api: QueryAPI, maxConnections: Int? = nil) throws -> (HTTPServer, UInt16) {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        if let maxConnections { configuration.maxConnections = maxConnections }
        let server = api.server(configuration: configuration)
        return (server, try server.start())
    }

    /// A server over `dev-1` with one message in chat `a@c.us`, and a client connected to it
    /// (stop and close both); `test` goes on applying events to the same store.
    mutating func servedWithOneMessage() throws -> (server: HTTPServer, port: UInt16, client: LoopbackClient) {
        incoming("dev-1", "a@c.us", "M1")
        let (server, port) = try serve(try api())
        return (server, port, try LoopbackClient(port: port))
    }

    func header(_ response: HTTPResponse, _ name: String) -> String? { response.headers.first { $0.name == name }?.value }
    func json(_ response: HTTPResponse) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
    }

    @Test("health and readiness answer without a key")
    func healthAndReadiness() throws {
        let api = try api()
        #expect(get(api, "/healthz", key: nil).status == 200)
        #expect(get(api, "/readyz", key: nil).status == 200)
        ready.set(false)
        #expect(get(api, "/readyz", key: nil).status == 503)
    }

    @Test("a missing or unknown key is 401; a device outside the key's scope is 404, like a route that does not exist")
    func authentication() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        test.incoming("dev-2", "b@c.us", "M2")
        let api = try test.api()
        #expect(get(api, "/api/v1/devices/dev-1/chats", key: nil).status == 401)
        #expect(get(api, "/api/v1/devices/dev-1/chats", key: "nope").status == 401)
        #expect(get(api, "/api/v1/devices/dev-1/chats", key: "reader-key").status == 200)
        let outside = get(api, "/api/v1/devices/dev-2/chats", key: "reader-key")
        #expect(outside.status == 404)
        #expect(outside.body == get(api, "/api/v1/no/such/route", key: "reader-key").body)
        #expect(get(api, "/api/v1/devices/dev-2/chats").status == 200, "the auditor key reads every device")
    }

    @Test("auditor routes: 403 for a reader; 501 for an auditor when the server has no log to read")
    func auditorRoutes() throws {
        let api = try api()
        #expect(get(api, "/api/v1/devices/dev-1/chats?asOf=1", key: "reader-key").status == 403)
        #expect(get(api, "/api/v1/devices/dev-1/events", key: "reader-key").status == 403)
        #expect(get(api, "/api/v1/devices/dev-1/chats?asOf=1").status == 501)
    }

    @Test("auditor routes answer 500 log_unreadable, as a JSON error, when the log under them is damaged; the live list still answers")
    func auditorRoutesOnDamagedLog() throws {
        let (directory, partitionDirectory) = try writeLog(messages: 100, chats: 5, maxSegmentBytes: 4_000)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // One byte flipped in the middle of the first (sealed) segment: its CRC no longer holds.
        let segments = try FileManager.default.contentsOfDirectory(atPath: partitionDirectory).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(segments.count > 1)
        let first = URL(fileURLWithPath: partitionDirectory + "/" + segments[0])
        var bytes = try Data(contentsOf: first)
        bytes[bytes.count / 2] ^= 0x04
        try bytes.write(to: first)

        let api = try auditedAPI(directory)
        for target in ["/api/v1/devices/dev-1/chats?asOf=9999999999999", "/api/v1/devices/dev-1/events"] {
            let response = get(api, target)
            #expect(response.status == 500, "\(target)")
            let error = try json(response)["error"] as? [String: Any]
            #expect(error?["code"] as? String == "log_unreadable", "\(target)")
            #expect((error?["message"] as? String)?.contains(segments[0]) == true, "the message names the damaged file")
        }
        #expect(get(api, "/api/v1/devices/dev-1/chats").status == 200, "the live projection still serves")
    }

    @Test("device responses carry ETag and X-Ledger-Position (SPEC): the events route (never 304: its lines include records the version does not count) and an asOf list (the position the replay folded it to); a device without events has no position (replay --at-offset names none for it)")
    func positionOnEveryDeviceResponse() throws {
        let (directory, _) = try writeLog(messages: 3, chats: 1)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let api = try auditedAPI(directory)
        let answers: [(route: String, etag: String, why: String)] = [
            ("/api/v1/devices/dev-1/events", "\"3\"", "the page holds at least what they name"),
            ("/api/v1/devices/dev-1/chats?asOf=9999999999999", "\"3\"", "the replay folded the device's three events, offsets 0 to 2"),
        ]
        for (route, etag, why) in answers {
            let answer = get(api, route)
            #expect(answer.status == 200, "\(route)")
            #expect(header(answer, "ETag") == etag, "\(route)")
            #expect(header(answer, "X-Ledger-Position") == "0:2", "\(route): \(why)")
        }
        #expect(get(api, "/api/v1/devices/dev-1/events", headers: [#"If-None-Match: "3""#]).status == 200)
        let empty = get(api, "/api/v1/devices/nobody/chats")
        #expect(empty.status == 200 && header(empty, "ETag") == "\"0\"")
        #expect(header(empty, "X-Ledger-Position") == nil, "no partition is the device's own: no position a replay could be asked at")
    }

    @Test("events?chat= finds a contact's events under either of its ids (a LID's messages before contact.aliased linked it to the phone id), as the chat routes find the chat")
    func eventsOfAChatUnderEitherId() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-audit-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = try PartitionWriter(
            directory: EventLog(dataDirectory: directory).directory(topic: Self.topic, partition: 0), topic: Self.topic, partition: 0,
            options: .init(fsync: .never))
        func message(_ id: String, _ chat: String) -> EventPayload {
            .messageCreated(MessageCreated(messageId: id, fromMe: false, kind: .text, preview: "hi"))
        }
        let events: [(chat: String, payload: EventPayload)] = [
            ("111@lid", message("M0", "111@lid")),
            ("491700000001@c.us", .contactAliased(ContactAliased(alias: "111@lid"))),
            ("491700000001@c.us", message("M1", "491700000001@c.us")),
            ("222@c.us", message("M2", "222@c.us")),
        ]
        var records: [LogRecord] = []
        for (offset, item) in events.enumerated() {
            let event = Event(eventId: "E\(offset)", deviceId: "dev-1", occurredAt: 100 + Int64(offset), chatId: item.chat, payload: item.payload)
            records.append(LogRecord(offset: Int64(offset), key: Array("dev-1".utf8), value: EventEncoder.encode(event)))
            store.apply(event, at: LogPosition(partition: 0, offset: Int64(offset)))
        }
        try writer.append(records)
        try writer.sync()
        let api = try auditedAPI(directory)
        for chat in ["491700000001%40c.us", "111%40lid"] {
            let lines = try json(get(api, "/api/v1/devices/dev-1/events?chat=\(chat)"))["events"] as? [[String: Any]] ?? []
            #expect(lines.compactMap { $0["offset"] as? Int } == [0, 1, 2], "\(chat): the LID's message, the alias, the phone id's message")
        }
        let other = try json(get(api, "/api/v1/devices/dev-1/events?chat=222%40c.us"))["events"] as? [[String: Any]] ?? []
        #expect(other.compactMap { $0["offset"] as? Int } == [3])
        // Without a projection (export --chat): the log's contact.aliased events say the same.
        let audit = AuditLog(dataDirectory: directory, topic: Self.topic)
        #expect(try audit.chatAliases(of: "491700000001@c.us", deviceId: "dev-1") == ["111@lid"])
        #expect(try audit.chatAliases(of: "111@lid", deviceId: nil) == ["491700000001@c.us"])
        #expect(try audit.chatAliases(of: "111@lid", deviceId: "dev-2").isEmpty, "aliases are a device's")
    }

    @Test("ETag is the device version; If-None-Match with it is 304; an event makes it 200 again; X-Ledger-Position follows")
    func etagAndPosition() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        let api = try test.api()
        let first = get(api, "/api/v1/devices/dev-1/chats")
        #expect(header(first, "ETag") == "\"1\"")
        #expect(header(first, "X-Ledger-Position") == "0:0")
        #expect(get(api, "/api/v1/devices/dev-1/chats", headers: ["If-None-Match: \"1\""]).status == 304)
        test.incoming("dev-1", "a@c.us", "M2")
        let second = get(api, "/api/v1/devices/dev-1/chats", headers: ["If-None-Match: \"1\""])
        #expect(second.status == 200)
        #expect(header(second, "ETag") == "\"2\"")
        #expect(header(second, "X-Ledger-Position") == "0:1")
    }

    @Test("a mute running out changes isMuted without a new version: the ETag gains .N, so If-None-Match with the tag from before is 200, not 304 (list and chat)")
    func muteRunningOutIsNotNotModified() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        test.store.apply(
            Event(eventId: "mute", deviceId: "dev-1", occurredAt: 200, chatId: "a@c.us", payload: .chatMuted(muteUntil: 5_000)),
            at: LogPosition(partition: 0, offset: 1))
        let now = Mutex<Int64>(1_000)
        let api = QueryAPI(
            store: test.store, keys: KeyRing(try APIKeys(json: Array(Self.keysJSON.utf8))), isReady: { true }, clock: { now.withLock { $0 } })
        for route in ["/api/v1/devices/dev-1/chats", "/api/v1/devices/dev-1/chats/a%40c.us"] {
            now.withLock { $0 = 1_000 }
            let muted = get(api, route)
            #expect(header(muted, "ETag") == "\"2\"", "\(route): the device version while the mute holds")
            #expect(get(api, route, headers: ["If-None-Match: \"2\""]).status == 304, "\(route)")
            now.withLock { $0 = 5_000 }
            let expired = get(api, route, headers: ["If-None-Match: \"2\""])
            #expect(expired.status == 200, "\(route): the body changed (isMuted false)")
            #expect(header(expired, "ETag") == "\"2.1\"", "\(route)")
            #expect(String(decoding: expired.body, as: UTF8.self).contains(#""isMuted":false"#), "\(route)")
            #expect(get(api, route, headers: ["If-None-Match: \"2.1\""]).status == 304, "\(route): stable until the next change")
        }
    }

    @Test("a change stream ends when a reload of the keys revokes its key: event: revoked, then the connection closes; a stream whose key stays goes on")
    func revokedKeyEndsItsStream() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        let ring = KeyRing(try APIKeys(json: Array(#"{"keys":[{"key":"key-one-123","devices":["*"],"role":"reader"},{"key":"key-two-123","devices":["*"],"role":"reader"}]}"#.utf8)))
        let api = QueryAPI(store: test.store, keys: ring, isReady: { true }, clock: { 0 })
        let (server, port) = try serve(api)
        defer { server.stop() }
        var clients: [LoopbackClient] = []
        defer { for client in clients { client.close() } }
        for key in ["key-one-123", "key-two-123"] {
            let client = try LoopbackClient(port: port)
            client.send("GET /api/v1/devices/dev-1/changes HTTP/1.1\r\nHost: x\r\nx-api-key: \(key)\r\n\r\n")
            #expect(client.readUntil("event: version").contains("id: 1"), "\(key)")
            clients.append(client)
        }
        ring.replace(with: try APIKeys(json: Array(#"{"keys":[{"key":"key-two-123","devices":["*"],"role":"reader"}]}"#.utf8)))
        let (rest, closed) = clients[0].readUntilClosed()
        #expect(rest.contains("event: revoked") && closed, "\(rest)")
        test.incoming("dev-1", "a@c.us", "M2")
        server.wake()
        #expect(clients[1].readUntil("id: 2").contains("event: version"), "the other key's stream goes on")
    }

    @Test("one chat (percent-encoded id), unread totals, and 404 for a chat the device does not have")
    func chatAndUnread() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        test.incoming("dev-1", "a@c.us", "M2")
        let api = try test.api()
        let chat = get(api, "/api/v1/devices/dev-1/chats/a%40c.us")
        #expect(chat.status == 200)
        #expect(try json(chat)["unreadCount"] as? Int == 2)
        let missing = get(api, "/api/v1/devices/dev-1/chats/zz%40c.us")
        #expect(missing.status == 404)
        #expect(header(missing, "ETag") == "\"2\"" && header(missing, "X-Ledger-Position") == "0:1", "a device response's headers on a 404 too")
        let unread = get(api, "/api/v1/devices/dev-1/unread")
        #expect(try json(unread)["unreadMessages"] as? Int == 2)
        #expect(try json(unread)["unreadChats"] as? Int == 1)
    }

    @Test("bad requests are 400 with a JSON error; other methods 405 with Allow", arguments: [
        "/api/v1/devices/dev-1/chats?limit=0", "/api/v1/devices/dev-1/chats?limit=501", "/api/v1/devices/dev-1/chats?filter=x",
        "/api/v1/devices/dev-1/chats?color=red", "/api/v1/devices/dev-1/chats?cursor=forged",
        "/api/v1/devices/dev-1/chats?limit=1&limit=2", "/api/v1/devices/dev-1/chats?limit=%zz", "/api/v1/devices/dev%zz/chats", "/api/v1/devices/dev%+f/chats",
        "/api/v1/devices/dev-1/chats?minPosition=x",
    ])
    func badRequests(target: String) throws {
        let response = get(try api(), target)
        #expect(response.status == 400, "\(target)")
        #expect(try json(response)["error"] != nil)
    }

    @Test("methods other than GET and HEAD are 405 with Allow: GET, HEAD; HEAD answers as GET; a path no route has is 404 whatever the method")
    func methodNotAllowed() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        let api = try test.api()
        let response = get(api, "/api/v1/devices/dev-1/chats", method: "POST")
        #expect(response.status == 405)
        #expect(header(response, "Allow") == "GET, HEAD")
        let head = get(api, "/api/v1/devices/dev-1/chats", method: "HEAD")
        let full = get(api, "/api/v1/devices/dev-1/chats")
        #expect(head.status == 200)
        #expect(header(head, "ETag") == header(full, "ETag") && header(head, "X-Ledger-Position") == header(full, "X-Ledger-Position"))
        #expect(get(api, "/api/v1/devices/dev-1/changes", method: "HEAD").status == 200, "a stream's head, without the stream")
        for method in ["GET", "POST", "DELETE", "HEAD"] {
            for target in ["/zzz", "/api/v1/nothing", "/api/v1/devices/dev-1/chats/a%40c.us/bogus"] {
                let unknown = get(api, target, method: method)
                #expect(unknown.status == 404, "\(method) \(target)")
                #expect(header(unknown, "Allow") == nil, "\(method) \(target)")
            }
        }
    }

    @Test("on one connection: HEAD's Content-Length is GET's and no body follows; a 304 states no length; HEAD of the change stream is its head alone, without a length, and the connection closes")
    func headFraming() throws {
        var test = self
        let (server, _, client) = try test.servedWithOneMessage()
        defer { server.stop() }
        defer { client.close() }
        let fields = "Host: x\r\nx-api-key: test-api-key-123\r\n"
        client.send("HEAD /api/v1/devices/dev-1/chats HTTP/1.1\r\n" + fields + "\r\n")
        let head = client.readUntil("\r\n\r\n")
        client.send("GET /api/v1/devices/dev-1/chats HTTP/1.1\r\n" + fields + "\r\n")
        let full = try #require(client.readResponses(1).first)
        #expect(full.hasPrefix("HTTP/1.1 200"), "no stray body of the HEAD answer before it: \(full)")
        let parts = full.components(separatedBy: "\r\n\r\n")
        let body = parts.dropFirst().joined(separator: "\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200") && head.contains("Content-Length: \(body.utf8.count)\r\n"), "\(head)")
        let etag = try #require(parts[0].split(separator: "\r\n").first { $0.hasPrefix("ETag: ") }?.dropFirst(6))
        client.send("GET /api/v1/devices/dev-1/chats HTTP/1.1\r\n" + fields + "If-None-Match: \(etag)\r\n\r\n")
        let notModified = client.readUntil("\r\n\r\n")
        #expect(notModified.hasPrefix("HTTP/1.1 304") && !notModified.contains("Content-Length"), "\(notModified)")
        client.send("HEAD /api/v1/devices/dev-1/changes HTTP/1.1\r\n" + fields + "\r\n")
        let streamHead = client.readToEnd()
        #expect(streamHead.hasPrefix("HTTP/1.1 200") && streamHead.contains("Content-Type: text/event-stream"), "\(streamHead)")
        #expect(!streamHead.contains("Content-Length") && streamHead.contains("Connection: close"), "\(streamHead)")
        #expect(streamHead.hasSuffix("\r\n\r\n") && !streamHead.contains("id: "), "the head alone, then the server closes")
    }

    @Test("If-None-Match is read as RFC 9110 reads it: a list, weak tags and * match the current version; other tags do not")
    func ifNoneMatchForms() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        let api = try test.api()
        for value in [#""1""#, #"W/"1""#, #""7", "1""#, #" "7" ,W/"1" "#, "*"] {
            #expect(get(api, "/api/v1/devices/dev-1/chats", headers: ["If-None-Match: \(value)"]).status == 304, "\(value)")
        }
        #expect(get(api, "/api/v1/devices/dev-1/chats", headers: [#"If-None-Match: "7""#, #"If-None-Match: "1""#]).status == 304, "over two lines")
        for value in [#""2""#, #""7", "11""#, "1", #"W/"10""#] {
            #expect(get(api, "/api/v1/devices/dev-1/chats", headers: ["If-None-Match: \(value)"]).status == 200, "\(value)")
        }
    }

    @Test("minPosition not yet applied is 503 with Retry-After; once applied, 200")
    func minPosition() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        let api = try test.api()
        let early = get(api, "/api/v1/devices/dev-1/chats?minPosition=0:1")
        #expect(early.status == 503)
        #expect(header(early, "Retry-After") == "1")
        test.incoming("dev-1", "a@c.us", "M2")
        #expect(get(api, "/api/v1/devices/dev-1/chats?minPosition=0:1").status == 200)
    }

    @Test("the stale-count scenario over a real socket: unreadCount 0, three messages, the next query says 3")
    func staleCountOverHTTP() throws {
        var test = self
        test.store.apply(
            Event(eventId: "own", deviceId: "dev-1", occurredAt: 1, chatId: "a@c.us",
                  payload: .messageCreated(MessageCreated(messageId: "O1", fromMe: true, kind: .text, preview: "hi"))),
            at: LogPosition(partition: 0, offset: 0))
        test.offset = 1
        let (server, port) = try test.serve(try test.api())
        defer { server.stop() }
        func unreadCount() throws -> Int? {
            let client = try LoopbackClient(port: port)
            defer { client.close() }
            client.send("GET /api/v1/devices/dev-1/chats HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\nConnection: close\r\n\r\n")
            let response = client.readToEnd()
            guard let start = response.range(of: "\r\n\r\n") else { return nil }
            let object = try JSONSerialization.jsonObject(with: Data(response[start.upperBound...].utf8)) as? [String: Any]
            return ((object?["chats"] as? [[String: Any]])?.first?["unreadCount"]) as? Int
        }
        #expect(try unreadCount() == 0)
        #expect(try unreadCount() == 0)
        #expect(test.store.cacheCounters.hits >= 1, "served from the cache")
        for index in 1...3 { test.incoming("dev-1", "a@c.us", "M\(index)") }
        #expect(try unreadCount() == 3)
    }

    @Test("a query with minPosition and wait is held until the position is applied, then answered; past its wait it gets 503")
    func minPositionWaits() throws {
        var test = self
        let (server, _, client) = try test.servedWithOneMessage()
        defer { server.stop() }
        defer { client.close() }
        client.send("GET /api/v1/devices/dev-1/chats?minPosition=0:1&wait=10000 HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\n\r\n")
        test.incoming("dev-1", "a@c.us", "M2")  // offset 1
        server.wake()
        let answered = try #require(client.readResponses(1).first)
        #expect(answered.hasPrefix("HTTP/1.1 200 OK"))
        #expect(answered.contains("X-Ledger-Position: 0:1"))
        #expect(answered.contains(#""unreadCount":2"#))

        client.send("GET /api/v1/devices/dev-1/unread?minPosition=0:99&wait=200 HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\n\r\n")
        let timedOut = try #require(client.readResponses(1).first)
        #expect(timedOut.hasPrefix("HTTP/1.1 503"))
        #expect(timedOut.contains("Retry-After: 1"))
        #expect(get(try test.api(), "/api/v1/devices/dev-1/chats?minPosition=0:0&wait=99999").status == 400)
    }

    @Test("change streams hold at most half the server's connections: the next is 503 too_many_streams with Retry-After, other requests and /healthz still get through, and a closed stream frees its place")
    func changesStreamsBounded() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        let (server, port) = try serve(try test.api(), maxConnections: 8)
        defer { server.stop() }
        func openStream() throws -> (LoopbackClient, String) {
            let client = try LoopbackClient(port: port)
            client.send("GET /api/v1/devices/dev-1/changes HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\n\r\n")
            return (client, client.readUntil("\r\n\r\n"))
        }
        var streams: [LoopbackClient] = []
        for _ in 0..<4 {
            let (client, head) = try openStream()
            #expect(head.hasPrefix("HTTP/1.1 200 OK"), "\(head)")
            streams.append(client)
        }
        let (refusedClient, refused) = try openStream()
        #expect(refused.hasPrefix("HTTP/1.1 503") && refused.contains("Retry-After: 1"), "half of 8 connections: \(refused)")
        refusedClient.close()
        // Other requests still get through, and /healthz.
        let other = try LoopbackClient(port: port)
        other.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(other.readUntil("\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        other.close()
        // A stream closed gives its place back.
        streams.removeFirst().close()
        try Polling.waitUntil("a closed stream's place is free again", seconds: 30) {
            let (client, head) = try openStream()
            defer { if head.hasPrefix("HTTP/1.1 200") { streams.append(client) } else { client.close() } }
            return head.hasPrefix("HTTP/1.1 200")
        }
        for client in streams { client.close() }
    }

    @Test("changes: an SSE stream that starts with the device's version and sends one event per version, also for versions one wake saw together")
    func changesStream() throws {
        var test = self
        let (server, port, client) = try test.servedWithOneMessage()
        defer { server.stop() }
        defer { client.close() }
        client.send("GET /api/v1/devices/dev-1/changes HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\n\r\n")
        let first = client.readUntil("\n\n")  // the head ends in CRLF CRLF, so this is the first event
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"))
        #expect(first.hasSuffix("id: 1\nevent: version\ndata: {\"deviceId\":\"dev-1\",\"version\":1,\"position\":\"0:0\"}\n\n"))
        #expect(first.contains("\r\nETag: \"1\"\r\n") && first.contains("\r\nX-Ledger-Position: 0:0\r\n"), "a device response's headers: \(first)")

        test.incoming("dev-2", "b@c.us", "M2")  // another device: no event
        test.incoming("dev-1", "a@c.us", "M3")
        server.wake()
        let next = client.readUntil("\n\n")
        #expect(next == "id: 2\nevent: version\ndata: {\"deviceId\":\"dev-1\",\"version\":2,\"position\":\"0:2\"}\n\n")

        // Reconnecting with Last-Event-ID at the current version: nothing until the next change.
        let again = try LoopbackClient(port: port)
        defer { again.close() }
        again.send("GET /api/v1/devices/dev-1/changes HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\nLast-Event-ID: 2\r\n\r\n")
        _ = again.readUntil("\r\n\r\n")
        test.incoming("dev-1", "a@c.us", "M4")
        server.wake()
        #expect(again.readUntil("\n\n").hasPrefix("id: 3\n"), "the first event after Last-Event-ID is the next version")

        // Three messages applied before the stream looks: three events, in order, each with
        // the position the device reflects at the look.
        for id in ["M5", "M6", "M7"] { test.incoming("dev-1", "a@c.us", id) }
        server.wake()
        let burst = again.readUntil(#""version":6,"position":"0:6"}"# + "\n\n")
        let expected = (4...6).map { #"id: \#($0)\#nevent: version\#ndata: {"deviceId":"dev-1","version":\#($0),"position":"0:6"}\#n\#n"# }
        #expect(burst == expected.joined(), "\(burst)")

        // 150 versions between two looks (a backlog): still one event each (SPEC §4).
        for index in 0..<150 { test.incoming("dev-1", "a@c.us", "B\(index)") }
        server.wake()
        let backlog = again.readUntil(#""version":156,"position":"0:156"}"# + "\n\n")
        #expect(backlog.components(separatedBy: "event: version").count - 1 == 150, "one event per version")
        #expect(get(try test.api(), "/api/v1/devices/dev-1/changes", key: nil).status == 401)
        #expect(get(try test.api(), "/api/v1/devices/dev-9/changes", key: "reader-key").status == 404)
    }

    @Test("/metrics: Prometheus text with cache counters, a request histogram by route template and status, and the requests refused before any route by status")
    func metrics() throws {
        var test = self
        test.incoming("dev-1", "a@c.us", "M1")
        let registry = MetricsRegistry()
        test.store.registerMetrics(in: registry)
        let api = QueryAPI(store: test.store, keys: KeyRing(try APIKeys(json: Array(Self.keysJSON.utf8))), metrics: registry, clock: { 0 })
        let (server, port) = try test.serve(api)
        defer { server.stop() }
        // Two requests the server refuses before any route: a malformed request line and a
        // header without a colon (400 each, the connection closed).
        for bad in ["GET\r\n\r\n", "GET / HTTP/1.1\r\nno colon here\r\n\r\n"] {
            let refused = try LoopbackClient(port: port)
            refused.send(bad)
            #expect(refused.readToEnd().hasPrefix("HTTP/1.1 400"))
            refused.close()
        }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        let chats = "GET /api/v1/devices/dev-1/chats HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\n\r\n"
        client.send(chats + chats + "GET /api/v1/devices/dev-1/chats/nope HTTP/1.1\r\nHost: x\r\nx-api-key: test-api-key-123\r\n\r\n")
        _ = client.readResponses(3)
        client.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let text = client.readToEnd()
        #expect(text.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
        #expect(text.contains("# TYPE chatledger_http_request_duration_seconds histogram"))
        #expect(text.contains(#"chatledger_http_request_duration_seconds_count{route="/api/v1/devices/{deviceId}/chats",status="200"} 2"#))
        #expect(text.contains(#"chatledger_http_request_duration_seconds_count{route="/api/v1/devices/{deviceId}/chats/{chatId}",status="404"} 1"#))
        #expect(text.contains(#"chatledger_http_request_duration_seconds_bucket{route="/api/v1/devices/{deviceId}/chats",status="200",le="+Inf"} 2"#))
        #expect(text.contains("chatledger_cache_hits_total 1\n"), "the second list GET was a hit")
        #expect(text.contains("chatledger_cache_misses_total 2\n"))
        #expect(text.contains(#"chatledger_projection_applied_offset{partition="0"} 0"#))
        #expect(!text.contains("dev-1"), "no per-device series")
        #expect(text.contains(#"chatledger_http_refused_total{status="400"} 2"#), "refusals before any route are counted")
    }
}
