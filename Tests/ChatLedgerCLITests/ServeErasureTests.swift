import ChatEvents
import ChatLedgerCLI
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// `serve` following a log that a separate `ingest` redacts: after a device, chat or
/// contact erasure, serve answers what ingest's own state holds (what a serve started
/// afresh from ingest's checkpoint answers).
@Suite("serve after an erasure")
struct ServeErasureTests {
    static let topic = "wa.device-events"

    /// One GET with the test key (and `If-None-Match: ifNoneMatch` if given): status, ETag and body.
    func get(_ port: UInt16, _ target: String, ifNoneMatch: String? = nil) throws -> (status: Int, etag: String?, body: String) {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        let condition = ifNoneMatch.map { "If-None-Match: \($0)\r\n" } ?? ""
        client.send("GET \(target) HTTP/1.1\r\nHost: x\r\nx-api-key: erase-key\r\n\(condition)Connection: close\r\n\r\n")
        let response = client.readToEnd()
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? -1
        guard let split = response.range(of: "\r\n\r\n") else { return (status, nil, "") }
        let etag = response[..<split.lowerBound].split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("etag:") }.map { $0.dropFirst(5).trimmingCharacters(in: .whitespaces) }
        return (status, etag, String(response[split.upperBound...]))
    }

    func message(_ device: String, chat: String, index: Int) -> Event {
        Event(eventId: "\(device)-\(index)", deviceId: device, occurredAt: 1_000 + Int64(index), chatId: chat,
              payload: .messageCreated(MessageCreated(messageId: "\(device)-m\(index)", fromMe: false, kind: .text, preview: "\(device) says \(index)")))
    }

    /// What a device's routes answer on a server: the chat list and the unread totals (status, ETag, body).
    func views(_ port: UInt16, _ device: String) throws -> [String] {
        try ["/chats", "/unread"].map { route in
            let answer = try get(port, "/api/v1/devices/\(device)\(route)")
            return "\(route) \(answer.status) \(answer.etag ?? "-") \(answer.body)"
        }
    }

    @Test("after a chat, a contact and a device erasure applied by a separate ingest, and as many new events as they removed, the serve following the log answers every device route (ETag included) as a serve started from ingest's state does, and the ETags of the erased devices moved above every one before: If-None-Match with an ETag from before is 200")
    func serveEqualsIngestAfterErasures() throws {
        let cluster = try MockCluster(topics: [(Self.topic, 1)])
        let data = IngestTesting.temporaryData("serve-erase")
        let keys = data + ".keys"
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: keys)
        }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let devices = ["dev-chat", "dev-contact", "dev-gone", "dev-stays"]
        let deviceList = devices.map { "\"\($0)\"" }.joined(separator: ",")
        try Data(#"{"keys":[{"key":"erase-key","devices":[\#(deviceList)],"role":"reader"}]}"#.utf8).write(to: URL(fileURLWithPath: keys))

        let phone = "491701234567@c.us", lid = "140913951141911@lid", other = "491709999999@c.us", group = "120363000000001@g.us"
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        func send(_ event: Event) throws {
            try producer.send(topic: Self.topic, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event))
        }
        for device in devices {
            try send(Event(eventId: "\(device)-alias", deviceId: device, occurredAt: 1_000, chatId: phone,
                           payload: .contactAliased(ContactAliased(alias: lid))))
            for index in 1...30 { try send(message(device, chat: [phone, lid, other, group][index % 4], index: index)) }
        }
        try producer.flush(timeoutMilliseconds: 30_000)

        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "serve-erase")
        defer { _ = ingest.terminate() }
        let serve = try ServerProcess(["serve", "--data", data, "--http", "127.0.0.1:0", "--keys", keys])
        let consumer = try PlainConsumer(bootstrapServers: cluster.bootstrapServers)
        func waitForServe(_ port: UInt16) throws {
            let last = try consumer.watermarks(topic: Self.topic, partition: 0).high - 1
            #expect(try get(port, "/api/v1/devices/dev-stays/unread?minPosition=0:\(last)&wait=30000").status == 200)
        }
        try waitForServe(serve.port)
        var before: [String: String?] = [:]
        for device in devices { before[device] = try get(serve.port, "/api/v1/devices/\(device)/chats").etag }
        #expect(before.values.allSatisfy { $0 != nil })

        for arguments in [["--device", "dev-chat", "--chat", other], ["--device", "dev-contact", "--contact", lid], ["--device", "dev-gone"]] {
            let erase = try ChatLedgerProcess.run(["erase", "--brokers", cluster.bootstrapServers] + arguments + ["--reason", "ticket 12"])
            #expect(erase.status == 0, "\(erase.standardError)")
        }
        // As many new events as each erasure removed (8 messages of `other`; 15 of the contact
        // under both ids): a version counting the events the log still holds would be back at
        // the one handed out before, for other content.
        for index in 31...38 { try send(message("dev-chat", chat: phone, index: index)) }
        for index in 31...45 { try send(message("dev-contact", chat: other, index: index)) }
        try producer.flush(timeoutMilliseconds: 30_000)
        try waitForServe(serve.port)
        let live = try devices.map { try views(serve.port, $0) }
        let liveList = try get(serve.port, "/api/v1/devices").body

        // Ingest's state: what it wrote at its clean stop, loaded by a serve started afresh.
        let last = try consumer.watermarks(topic: Self.topic, partition: 0).high - 1
        try IngestTesting.waitForLog(data: data, lastOffsets: [0: last])
        #expect(ingest.terminate() == 0)
        #expect(ingest.standardError.contains("erasure applied"))
        let fresh = try ServerProcess(["serve", "--data", data, "--http", "127.0.0.1:0", "--keys", keys])
        try waitForServe(fresh.port)
        for (index, device) in devices.enumerated() {
            let ingested = try views(fresh.port, device)
            #expect(live[index] == ingested, "\(device): the live serve answers as ingest's state does: \(live[index]) against \(ingested)")
        }
        #expect(liveList == (try get(fresh.port, "/api/v1/devices").body))

        // What each erasure left: the chat gone, the contact's chat gone under both ids, the device gone.
        let chatList = live[0][0], contactList = live[1][0], goneList = live[2][0]
        #expect(!chatList.contains(other) && chatList.contains(phone), "\(chatList)")
        #expect(!contactList.contains(phone) && !contactList.contains(lid) && contactList.contains(other), "\(contactList)")
        #expect(goneList.contains(#""version":0,"chats":[]"#), "a device without state: \(goneList)")
        for device in ["dev-chat", "dev-contact"] {
            let now = try get(serve.port, "/api/v1/devices/\(device)/chats")
            #expect(now.etag != nil && now.etag != before[device] ?? nil, "\(device): the ETag moved, so a cached list is not reused")
            let version = { (etag: String??) in etag.flatMap { $0 }.flatMap { UInt64($0.trimmingCharacters(in: ["\""])) } }
            #expect((version(now.etag) ?? 0) > (version(before[device]) ?? .max), "\(device): the version only grows: \(now.etag ?? "-") after \(before[device].flatMap { $0 } ?? "-")")
            let cached = try get(serve.port, "/api/v1/devices/\(device)/chats", ifNoneMatch: before[device] ?? nil)
            #expect(cached.status == 200, "\(device): a list cached before the erasure is not confirmed as current")
        }
        #expect(try get(serve.port, "/api/v1/devices/dev-stays/chats").etag == before["dev-stays"] ?? nil, "an untouched device keeps its version")
        #expect(serve.terminate() == 0)
        #expect(fresh.terminate() == 0)
    }
}
