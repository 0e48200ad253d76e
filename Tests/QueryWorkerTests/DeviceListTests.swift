import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Testing

/// `GET /api/v1/devices` and `GET /api/v1/status` over real loopback sockets.
@Suite("QueryAPI: the device list and the status route")
struct DeviceListTests {
    static let keysJSON = """
        {"keys":[
          {"key":"auditor-key","devices":["*"],"role":"auditor"},
          {"key":"dev-a-key","devices":["dev-a","dev-never-seen"],"role":"reader"}
        ]}
        """

    let store = ProjectionStore()

    final class Counter: @unchecked Sendable {
        // SAFETY: only the test's thread touches it.
        var offset: Int64 = 0
    }
    let counter = Counter()

    func apply(_ device: String, _ chat: String, _ payload: EventPayload, at time: Int64 = 1_000, partition: Int32 = 0, eventId: String? = nil) {
        let offset = counter.offset
        counter.offset += 1
        store.apply(
            Event(eventId: eventId ?? "E\(offset)", deviceId: device, occurredAt: time, chatId: chat, payload: payload),
            at: LogPosition(partition: partition, offset: offset))
    }

    func incoming(_ device: String, _ chat: String, _ id: String, at time: Int64 = 1_000, partition: Int32 = 0) {
        apply(device, chat, .messageCreated(MessageCreated(messageId: id, fromMe: false, kind: .text, preview: "hi")), at: time, partition: partition)
    }

    /// A real server on a free loopback port; `source` is what `run` would report.
    func serve(source: @escaping @Sendable () -> SourceStatus = { SourceStatus(kind: .log) }, ready: Bool = true) throws -> (HTTPServer, UInt16) {
        let api = QueryAPI(
            store: store, keys: KeyRing(try APIKeys(json: Array(Self.keysJSON.utf8))), isReady: { ready }, source: source, clock: { 0 })
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let server = api.server(configuration: configuration)
        return (server, try server.start())
    }

    /// One GET on its own connection: status, headers (lower-cased names) and the JSON body.
    func get(_ port: UInt16, _ target: String, key: String? = "auditor-key") throws -> (status: Int, headers: [String: String], json: [String: Any]) {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET \(target) HTTP/1.1\r\nHost: x\r\n" + (key.map { "x-api-key: \($0)\r\n" } ?? "") + "Connection: close\r\n\r\n")
        let response = client.readToEnd()
        let parts = response.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ")[1]) ?? -1
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2 { headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces) }
        }
        let body = parts.dropFirst().joined(separator: "\r\n\r\n")
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
        return (status, headers, json)
    }

    func ids(_ page: [String: Any]) -> [String] {
        (page["devices"] as? [[String: Any]] ?? []).compactMap { $0["deviceId"] as? String }
    }

    @Test("paging: every device exactly once, in byte order of the id, limit per page, an opaque cursor until the last page")
    func paging() throws {
        let devices = ["dev-b", "dev-a", "Dev-Z", "dev-10", "dev-2", "dev-ü", "dev a&b=c"]
        for (index, device) in devices.enumerated() { incoming(device, "c@c.us", "M\(index)") }
        let (server, port) = try serve()
        defer { server.stop() }
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let target = "/api/v1/devices?limit=3" + (cursor.map { "&cursor=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") } ?? "")
            let page = try get(port, target)
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "application/json")
            let batch = ids(page.json)
            #expect(batch.count == (pages < 2 ? 3 : 1), "page \(pages): \(batch)")
            seen += batch
            cursor = page.json["nextCursor"] as? String
            if let cursor { #expect(!devices.contains { cursor.contains($0) }, "the cursor does not spell out a device id") }
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        #expect(seen == devices.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        // The default page holds them all and says there is no next one.
        let all = try get(port, "/api/v1/devices")
        #expect(ids(all.json).count == devices.count)
        #expect(all.json["nextCursor"] is NSNull)
    }

    @Test("scoping: a key for dev-a lists dev-a only, never dev-b, and not devices of its scope that have no events")
    func scoping() throws {
        incoming("dev-a", "a@c.us", "M1")
        incoming("dev-b", "b@c.us", "M2")
        incoming("dev-c", "c@c.us", "M3")
        let (server, port) = try serve()
        defer { server.stop() }
        let page = try get(port, "/api/v1/devices", key: "dev-a-key")
        #expect(page.status == 200)
        #expect(ids(page.json) == ["dev-a"])
        #expect(page.json["nextCursor"] is NSNull)
        let one = try get(port, "/api/v1/devices?limit=1", key: "dev-a-key")
        #expect(ids(one.json) == ["dev-a"])
        #expect(one.json["nextCursor"] is NSNull, "no next page: the other devices are not the key's")
        // A cursor cannot widen the scope: starting before dev-b still lists only dev-a's successors in scope.
        let auditorFirst = try get(port, "/api/v1/devices?limit=1")
        let cursor = try #require(auditorFirst.json["nextCursor"] as? String)
        #expect(ids(try get(port, "/api/v1/devices?cursor=\(cursor)", key: "dev-a-key").json).isEmpty)
        #expect(ids(try get(port, "/api/v1/devices").json) == ["dev-a", "dev-b", "dev-c"])
    }

    @Test("a summary: version, position, chats, lastActivity, and unread totals equal to what /unread says (archived chats included, as filter=unread lists them)")
    func summary() throws {
        incoming("dev-a", "one@c.us", "M1", at: 5_000, partition: 3)
        incoming("dev-a", "one@c.us", "M2", at: 6_000, partition: 3)
        incoming("dev-a", "two@c.us", "M3", at: 7_000, partition: 3)
        apply("dev-a", "two@c.us", .chatArchived(archived: true), at: 8_000, partition: 3)
        incoming("dev-a", "three@c.us", "M4", at: 9_000, partition: 3)
        apply("dev-a", "three@c.us", .chatRead(ChatRead(upToMessageId: nil)), at: 9_500, partition: 3)
        apply("dev-a", "three@c.us", .chatMarkedUnread, at: 9_600, partition: 3)
        let (server, port) = try serve()
        defer { server.stop() }
        let device = try #require((try get(port, "/api/v1/devices").json["devices"] as? [[String: Any]])?.first)
        let unread = try get(port, "/api/v1/devices/dev-a/unread").json
        #expect(device["deviceId"] as? String == "dev-a")
        #expect(device["version"] as? Int == 7)
        #expect(device["position"] as? String == "3:6")
        #expect(device["chats"] as? Int == 3)
        #expect(device["unreadChats"] as? Int == unread["unreadChats"] as? Int)
        #expect(device["unreadMessages"] as? Int == unread["unreadMessages"] as? Int)
        #expect(device["unreadChats"] as? Int == 3, "one@c.us with 2, two@c.us (archived) with 1 and three@c.us marked unread")
        #expect(device["unreadMessages"] as? Int == 3)
        let unreadList = try get(port, "/api/v1/devices/dev-a/chats?filter=unread").json["chats"] as? [[String: Any]] ?? []
        #expect(unreadList.count == 3, "the totals are what filter=unread lists")
        #expect(device["lastActivity"] as? Int == 9_000)
    }

    @Test("bad requests: no key 401, unknown key 401, bad limit, forged cursor and unknown parameters 400")
    func badRequests() throws {
        incoming("dev-a", "a@c.us", "M1")
        let (server, port) = try serve()
        defer { server.stop() }
        #expect(try get(port, "/api/v1/devices", key: nil).status == 401)
        #expect(try get(port, "/api/v1/devices", key: "wrong").status == 401)
        for target in ["/api/v1/devices?limit=0", "/api/v1/devices?limit=501", "/api/v1/devices?limit=x",
                       "/api/v1/devices?cursor=forged", "/api/v1/devices?cursor=d_zz", "/api/v1/devices?cursor=d_f",
                       "/api/v1/devices?cursor=d_ff", "/api/v1/devices?colour=red"] {
            let response = try get(port, target)
            #expect(response.status == 400, "\(target)")
            #expect(response.json["error"] != nil, "\(target)")
        }
    }

    @Test("status: any valid key; readiness, per-partition applied offset, end and lag from the source, counts of the projection")
    func status() throws {
        for offset in 0..<5 { incoming("dev-a", "a@c.us", "M\(offset)") }
        apply("dev-a", "a@c.us", .chatMarkedUnread, eventId: "E0")  // offset 5: a redelivered event id
        store.fold(.deadLetter, at: LogPosition(partition: 0, offset: 6))  // a dead letter
        store.fold(.deadLetter, at: LogPosition(partition: 1, offset: 0))
        let (server, port) = try serve(source: { SourceStatus(kind: .kafka, endOffsets: [0: 12, 2: 4]) }, ready: false)
        defer { server.stop() }
        #expect(try get(port, "/api/v1/status", key: nil).status == 401)
        #expect(try get(port, "/api/v1/status?x=1").status == 400)
        let status = try get(port, "/api/v1/status", key: "dev-a-key")
        #expect(status.status == 200)
        #expect(status.json["ready"] as? Bool == false)
        #expect(status.json["status"] as? String == "catching up")
        #expect(status.json["role"] as? String == "reader")
        #expect(status.json["source"] as? String == "kafka")
        #expect(status.json["devices"] as? Int == 1)
        let counts = try #require(status.json["counts"] as? [String: Any])
        #expect(counts["applied"] as? Int == 5)
        #expect(counts["duplicates"] as? Int == 1)
        #expect(counts["deadLetters"] as? Int == 2)
        #expect(counts["unreadable"] as? Int == 0, "present, as /metrics has it")
        let partitions = try #require(status.json["partitions"] as? [[String: Any]])
        #expect(partitions.map { $0["partition"] as? Int } == [0, 1, 2])
        #expect(partitions[0]["appliedOffset"] as? Int == 6)
        #expect(partitions[0]["endOffset"] as? Int == 12)
        #expect(partitions[0]["lag"] as? Int == 5, "offsets 7...11 are on the broker, not applied")
        #expect(partitions[1]["endOffset"] is NSNull)
        #expect(partitions[1]["lag"] is NSNull, "no end known: no lag claimed")
        #expect(partitions[2]["appliedOffset"] is NSNull)
        #expect(partitions[2]["lag"] as? Int == 4)
    }
}
