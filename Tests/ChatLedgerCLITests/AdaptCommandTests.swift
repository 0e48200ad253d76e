#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import ChatEvents
import ChatLedgerCLI
import ChatProjection
import EventLog
import Foundation
import KafkaClient
import KafkaTestSupport
import LedgerSupport
import Synchronization
import Testing

@Suite("chatledger adapt: Evolution API's Kafka events through the stage, as real processes", .serialized)
struct AdaptCommandTests: DemoKeyRequests {
    typealias T = AdaptTesting

    @Test("several instances, one topic per event type: produce --simulate --format evolution → adapt → ingest; every chat equals the state the records mean, export shows each event's source, verify holds")
    func adaptThenIngest() throws {
        let traffic = EvolutionTraffic(EvolutionTraffic.Configuration(instances: 3, chatsPerInstance: 12, seed: 77))
        let run = try AdaptScenarios.adaptThenIngest(traffic, devices: 3, chats: 12, seed: 77, count: 2_500)
        defer { try? FileManager.default.removeItem(atPath: run.data) }
        #expect(run.metrics.contains(#"chatledger_adapt_lag_records{format="evolution",topic="evolution.inst-1.messages.upsert",partition="0"} 0"#))
        #expect(run.metrics.contains(#"chatledger_adapt_skipped_total{format="evolution",reason="ignored_event"}"#))
        #expect(run.export.allSatisfy { $0.contains(#""source":{"format":"evolution","topic":"evolution.inst-1."#) }, "every event names its bridge record")
        #expect(!run.export.contains { $0.contains(traffic.apiKey) }, "the apikey is nowhere in the log")
        #expect(!run.adaptLog.contains(traffic.apiKey), "nor in a log line")
    }

    @Test("the seed's scenario in Evolution's format: unread 0, three messages.upsert arrive, the next GET (at the position the stage wrote them) says 3")
    func seedScenario() throws {
        let cluster = try T.cluster(canonicalPartitions: 2, topics: ["evolution.seed.messages.upsert"])
        let data = IngestTesting.temporaryData("adapt-seed")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ServerProcess([
            "run", "--brokers", cluster.bootstrapServers, "--http", "127.0.0.1:0", "--data", data, "--adapt", "evolution:^evolution\\.seed\\..*",
        ])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        let topic = "evolution.seed.messages.upsert"
        let anna = "491701234567@s.whatsapp.net"
        try producer.send(topic: topic, key: Array("seed".utf8), value: T.upsert(instance: "seed", remoteJid: anna, id: "OWN1", fromMe: true, text: "hi Anna", at: 1_767_000_000, apikey: "k-123456789"))
        try producer.flush(timeoutMilliseconds: 10_000)
        let first = try waitForCanonical(cluster.bootstrapServers, events: 1)
        let before = try get(run.port, "/api/v1/devices/seed/chats?minPosition=\(first)&wait=20000")
        #expect(before.status == 200)
        #expect(unreadCount(before.body) == 0)

        for index in 1...3 {
            try producer.send(topic: topic, key: Array("seed".utf8), value: T.upsert(instance: "seed", remoteJid: anna, id: "IN\(index)", fromMe: false, text: "msg \(index)", at: 1_767_000_000 + Int64(index), apikey: "k-123456789"))
        }
        try producer.flush(timeoutMilliseconds: 10_000)
        let last = try waitForCanonical(cluster.bootstrapServers, events: 4)
        let after = try get(run.port, "/api/v1/devices/seed/chats?minPosition=\(last)&wait=20000")
        #expect(after.status == 200)
        #expect(unreadCount(after.body) == 3, "the very next query")
        #expect((after.body["chats"] as? [[String: Any]])?.first?["id"] as? String == "491701234567@c.us")
        #expect(run.terminate() == 0)
    }

    @Test("LID and phone forms of one contact interleaved: one chat with the exact unread count; a LID-only record and finding the chat by its LID need the fold's merge")
    func lidAndPhoneInterleaved() throws {
        let instance = "lid"
        let topics = ["messages.upsert", "messages.update", "messages.delete"].map { "evolution.\(instance).\($0)" }
        let cluster = try T.cluster(canonicalPartitions: 2, topics: topics)
        let data = IngestTesting.temporaryData("adapt-lid")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ServerProcess(["run", "--brokers", cluster.bootstrapServers, "--http", "127.0.0.1:0", "--data", data, "--adapt", "evolution:^evolution\\.lid\\..*"])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        let phone = "491701234567@s.whatsapp.net", lid = "140913951141911@lid"
        func send(_ event: String, _ value: [UInt8]) throws {
            try producer.send(topic: "evolution.\(instance).\(event)", key: Array(instance.utf8), value: value)
            try producer.flush(timeoutMilliseconds: 10_000)  // in this order across topics
        }
        let key = "k-123456789"
        // 2.3.7 writes the phone id into upserts; receipts and deletes keep the LID.
        try send("messages.upsert", T.upsert(instance: instance, remoteJid: phone, alt: phone, id: "M1", fromMe: false, text: "one", at: 1_767_000_001, apikey: key))
        try send("messages.upsert", T.upsert(instance: instance, remoteJid: lid, alt: phone, id: "M2", fromMe: false, text: "two", at: 1_767_000_002, apikey: key))
        try send("messages.update", T.record("messages.update", instance: instance, data: #"{"keyId":"M1","remoteJid":"\#(lid)","fromMe":false,"status":"READ"}"#, apikey: key, timestamp: 1_767_000_003_000))
        try send("messages.upsert", T.upsert(instance: instance, remoteJid: phone, alt: phone, id: "M3", fromMe: false, text: "three", at: 1_767_000_004, apikey: key))
        try send("messages.delete", T.record("messages.delete", instance: instance, data: #"{"remoteJid":"\#(lid)","fromMe":false,"id":"M3","status":"DELETED"}"#, apikey: key, timestamp: 1_767_000_005_000))
        let position = try waitForCanonical(cluster.bootstrapServers, partitions: 2, where: { $0.contains(#""type":"message.revoked""#) })
        let list = try get(run.port, "/api/v1/devices/\(instance)/chats?minPosition=\(position)&wait=20000")
        let chats = list.body["chats"] as? [[String: Any]] ?? []
        #expect(chats.count == 1, "one chat, not one per id: \(chats)")
        #expect(chats.first?["id"] as? String == "491701234567@c.us")
        #expect(chats.first?["unreadCount"] as? Int == 1, "M1 read on the phone (named by LID), M3 revoked (named by LID): M2 is left")
        let aliases = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: T.canonicalTopic, partitions: 2)
            .filter { String(decoding: $0.value, as: UTF8.self).contains(#""type":"contact.aliased""#) }
        #expect(aliases.count >= 1, "the pair is recorded as contact.aliased")

        // A record naming the chat only by its LID (no phone id beside it, the message unknown):
        // the stage keeps the LID; only the fold, which knows the alias from the log, can merge.
        try send("messages.upsert", T.upsert(instance: instance, remoteJid: lid, id: "M4", fromMe: false, text: "four", at: 1_767_000_006, apikey: key))
        let later = try waitForCanonical(cluster.bootstrapServers, partitions: 2, where: { $0.contains(#""messageId":"M4""#) })
        let merged = try get(run.port, "/api/v1/devices/\(instance)/chats?minPosition=\(later)&wait=20000")
        let byLID = try get(run.port, "/api/v1/devices/\(instance)/chats/140913951141911%40lid")
        // The fold merges the LID's events into the phone chat (contact.aliased).
        let mergedChats = merged.body["chats"] as? [[String: Any]] ?? []
        #expect(mergedChats.count == 1, "still one chat: \(mergedChats)")
        #expect(mergedChats.first?["unreadCount"] as? Int == 2)
        #expect(byLID.status == 200, "the API finds the chat by its LID")
        #expect(byLID.body["id"] as? String == "491701234567@c.us", "the same chat, under its phone id")
        #expect(byLID.body["unreadCount"] as? Int == 2)
        #expect(run.terminate() == 0)
    }

    @Test("hostile records on the source topics: each a dead letter with its reason (counted, secret removed), unknown events counted and skipped, the partition keeps moving, no secret in any output")
    func hostileRecords() throws {
        let secret = "S3CR3T-1b2c3d4e5f60718293a4"
        let topic = "evolution.hostile.messages.upsert"
        let cluster = try T.cluster(topics: [topic])
        let valid = { (id: String) -> [UInt8] in T.upsert(instance: "hostile", remoteJid: "491701234567@s.whatsapp.net", id: id, fromMe: false, text: "fine", at: 1_767_000_000, apikey: secret) }
        let key = #""apikey":"\#(secret)""#
        let hostile: [(value: [UInt8]?, reason: String?)] = [
            (Array("not json, \(key)".utf8), "invalid_json"),
            (Array(#"{"event":"messages.upsert",\#(key),"instance":"hostile","data":{"key":{"remoteJid":"#.utf8), "invalid_json"),
            (Array(#"[{\#(key)}]"#.utf8), "wrong_type"),
            (Array(#"{"event":"messages.upsert",\#(key),"data":{}}"#.utf8), "missing_field"),
            (Array(#"{"event":"messages.upsert","instance":7,\#(key),"data":{}}"#.utf8), "wrong_type"),
            (T.record("messages.upsert", instance: "hostile", data: #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":"no","id":"X"}}"#, apikey: secret, timestamp: 1), "wrong_type"),
            (T.record("messages.upsert", instance: "hostile", data: #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","id":"\#(String(repeating: "9", count: 300))"},"message":{"conversation":"x"}}"#, apikey: secret, timestamp: 1), "invalid_value"),
            (Array((String(repeating: "[", count: 200) + String(repeating: "]", count: 200)).utf8), "too_deep"),
            (nil, "invalid_json"),
            ([], "invalid_json"),
            (Array(#"{"event":"messages.upsert",\#(key),"data":""#.utf8) + [UInt8](repeating: 0x41, count: 2_000_000), "invalid_json"),
            (T.record("labels.rainbow", instance: "hostile", data: "{}", apikey: secret, timestamp: 1), nil),  // unknown: skipped
            (T.record("messages.upsert", instance: "hostile", data: #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"BIG"},"message":{"imageMessage":{"caption":"\#(secret)"},"base64":"\#(String(repeating: "A", count: 1_500_000))"},"messageType":"imageMessage","messageTimestamp":1767000000}"#, apikey: secret, timestamp: 2), nil),
        ]
        let run = try AdaptScenarios.hostileRecords(
            cluster: cluster, format: "evolution", topic: topic, pattern: "^evolution\\.hostile\\..*", key: "hostile", valid: valid, hostile: hostile,
            secret: secret)
        #expect(run.canonical.contains { $0.contains(#""messageId":"BIG""#) && $0.contains(#""hasMedia":true"#) }, "a large media record is a message: the size limit applies to the event made")
        #expect(!run.canonical.contains { $0.contains(secret) }, "no secret on the canonical topic (not even in a caption)")
    }

    @Test("the broker refuses every canonical event: adapt exits 1 saying the deliveries failed, and commits no offset of the records they were made from")
    func undeliveredEventsEndTheProcess() throws {
        let topic = "evolution.refused.messages.upsert"
        let cluster = try T.cluster(topics: [topic])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        for index in 0..<3 {
            try producer.send(
                topic: topic, key: Array("refused".utf8),
                value: T.upsert(instance: "refused", remoteJid: "491701234567@s.whatsapp.net", id: "R\(index)", fromMe: false, text: "hi", at: 1_767_000_000 + Int64(index), apikey: "key-refused-0001"))
        }
        try producer.flush(timeoutMilliseconds: 30_000)
        #expect(producer.report.delivered == 3)
        // Kafka's TOPIC_AUTHORIZATION_FAILED (permanent) for every produce request from now on.
        cluster.failNextRequests(.produce, errors: Array(repeating: 29, count: 50))

        let adapt = try AdaptProcess(brokers: cluster.bootstrapServers, pattern: "^evolution\\.refused\\..*", group: "adapt-refused")
        try T.waitUntil("adapt has exited by itself", seconds: 90) { !adapt.process.isRunning }
        #expect(adapt.process.terminationStatus == 1, "a supervisor restarts it: \(adapt.standardError.suffix(2000))")
        #expect(
            adapt.standardError.split(separator: "\n").contains { $0.contains("command failed") && $0.contains("deliveries failed") },
            "one line says why: \(adapt.standardError.suffix(2000))")
        #expect(
            try GroupOffsets.committedCount(brokers: cluster.bootstrapServers, group: "adapt-refused", partitions: [(topic, 0)]) == 0,
            "the records whose events were refused are read again at the next start")
    }

    @Test("adapt SIGKILLed 20 times while records keep arriving: the final state equals the reference, and every repeated event was ignored")
    func crashWhileRecordsArrive() throws {
        // Every cross-topic dependency of this traffic goes by message id (receipts, deletes,
        // edits), which the stage orders whatever its restarts; chat deletes and API sends
        // (ordered by time only) and LIDs (merged by the fold, not yet) are left out.
        let configuration = EvolutionTraffic.Configuration(
            instances: 3, chatsPerInstance: 10, seed: 5, lidShare: 0, sendMessageShare: 0, chatDeleteShare: 0, legacyShare: 0)
        try AdaptScenarios.crashWhileRecordsArrive(EvolutionTraffic(configuration), count: 4_000)
    }

    @Test("usage errors: an unknown format, a bad pattern, --demo-format without --demo, --adapt without FORMAT:REGEX, --adapt-threads 0")
    func usageErrors() throws {
        for arguments in [
            ["adapt", "--format", "carrier-pigeon", "--brokers", "x:1", "--source-topics", "^a"],
            ["adapt", "--format", "evolution", "--brokers", "x:1", "--source-topics", "(unclosed"],
            ["run", "--demo-format", "evolution"],
            ["run", "--adapt", "evolution"],
            ["adapt", "--format", "evolution", "--brokers", "x:1", "--source-topics", "^a", "--adapt-threads", "0"],
            ["run", "--adapt", "evolution:^a", "--adapt-threads", "many"],
            ["produce", "--brokers", "x:1", "--file", "x.ndjson", "--format", "evolution"],
        ] {
            let run = try ChatLedgerProcess.run(arguments)
            #expect(run.status == 64, "\(arguments): \(run.standardError)")
        }
        let help = try ChatLedgerProcess.run(["adapt", "--help"])
        #expect(help.status == 0 && help.standardOutput.contains("--source-topics REGEX") && help.standardOutput.contains("--adapt-threads N"))
    }

    // MARK: - Helpers

    /// Waits until the canonical topic holds `events` events; the position (P:O) of the last.
    func waitForCanonical(_ brokers: String, partitions: Int = 2, events: Int) throws -> String {
        var position = ""
        try T.waitUntil("the stage has written \(events) events") {
            let messages = try PlainConsumer(bootstrapServers: brokers).readAll(topic: T.canonicalTopic, partitions: partitions)
            // One device: its events are in one partition, the newest at the highest offset.
            guard messages.count >= events, let last = messages.max(by: { $0.offset < $1.offset }) else { return false }
            position = "\(last.partition):\(last.offset)"
            return true
        }
        return position
    }

    /// Waits until the canonical topic holds an event whose JSON satisfies `match`; its position.
    func waitForCanonical(_ brokers: String, partitions: Int, where match: @escaping (String) -> Bool) throws -> String {
        var position = ""
        try T.waitUntil("the stage has written the event") {
            let messages = try PlainConsumer(bootstrapServers: brokers).readAll(topic: T.canonicalTopic, partitions: partitions)
            guard let hit = messages.first(where: { match(String(decoding: $0.value, as: UTF8.self)) }) else { return false }
            position = "\(hit.partition):\(hit.offset)"
            return true
        }
        return position
    }
}
