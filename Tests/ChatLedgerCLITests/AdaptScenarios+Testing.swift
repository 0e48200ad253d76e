#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaClient
import KafkaTestSupport
import LedgerSupport
import Synchronization
import Testing

/// The end-to-end checks every bridge format passes, as real processes on the mock cluster:
/// its simulated traffic through `adapt` → `ingest`, hostile records, and the stage
/// SIGKILLed while records arrive. Each format's suite calls them and adds what is its own.
enum AdaptScenarios {
    typealias T = AdaptTesting

    /// What `adaptThenIngest` leaves for format-specific checks.
    struct IngestRun {
        /// The event log's directory (the caller removes it).
        var data: String
        var metrics: String
        var adaptLog: String
        /// `export` of the first device, one line per event.
        var export: [Substring]
    }

    /// `produce --simulate --format F` (`count` records, `devices` × `chats`, `seed`) →
    /// `adapt` → `ingest`: every chat equals the state the records mean, every record was
    /// adapted and none was a dead letter, every event names its source, `verify` holds.
    /// `traffic` is the same simulation, not yet advanced (the meanings come from it).
    static func adaptThenIngest(_ traffic: any BridgeSimulation, devices: Int, chats: Int, seed: Int, count: Int) throws -> IngestRun {
        var traffic = traffic
        let format = traffic.format
        let cluster = try T.cluster(topics: traffic.topics)
        let data = IngestTesting.temporaryData("adapt-e2e-\(format)")
        let produced = try ChatLedgerProcess.run(
            ["produce", "--brokers", cluster.bootstrapServers, "--simulate", "--format", format, "--devices", String(devices), "--chats", String(chats),
             "--seed", String(seed), "--count", String(count)])
        #expect(produced.status == 0, "\(produced.standardError)")
        #expect(produced.standardOutput.contains(#""delivered":\#(count)"#), "\(produced.standardOutput)")
        let meanings = (0..<count).flatMap { _ in traffic.next().meaning }

        let adapt = try AdaptProcess(brokers: cluster.bootstrapServers, format: format, pattern: traffic.sourcePattern)
        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "adapt-e2e-ingest")
        defer { if ingest.process.isRunning { ingest.kill() } }
        try adapt.waitUntilAdapted(count)
        let metrics = try adapt.metrics()
        try IngestTesting.waitForLog(data: data, lastOffsets: try T.canonicalLastOffsets(cluster.bootstrapServers, partitions: 4))
        #expect(adapt.terminate() == 0, "SIGTERM: the stage commits and exits 0")
        #expect(ingest.terminate() == 0)

        let expected = try T.rendered(T.fold(meanings), devices: traffic.deviceIds)
        let actual = try T.rendered(T.foldLog(data), devices: traffic.deviceIds)
        #expect(T.difference(expected, actual) == nil, "\(format): \(T.difference(expected, actual) ?? "")")
        #expect(metrics.contains(#"chatledger_adapt_records_total{format="\#(format)"} \#(count)"#))
        #expect(!metrics.contains("chatledger_adapt_dead_letters_total{"), "no dead letters from well-formed traffic")
        #expect(try LogVerifier.verify(EventLog(dataDirectory: data)).isClean)
        let export = try ChatLedgerProcess.run(["export", "--data", data, "--device", traffic.deviceIds[0]])
        #expect(export.status == 0)
        let lines = export.standardOutput.split(separator: "\n")
        #expect(lines.count > 100)
        #expect(lines.allSatisfy { $0.contains(#""source":{"format":"\#(format)","topic":""#) }, "every event names its bridge record")
        return IngestRun(data: data, metrics: metrics, adaptLog: adapt.standardError, export: lines)
    }

    /// Hostile records on `topic` between two valid ones (`valid("V1")`, `valid("V2")`):
    /// each with a reason is a dead letter (counted by reason, its coordinates, at most 64 KiB,
    /// logged), those without one are skipped; the partition keeps moving; `secret` (when
    /// given) is in no dead letter, canonical event or log line. Returns the canonical
    /// events' JSON texts.
    static func hostileRecords(
        cluster: MockCluster, format: String, topic: String, pattern: String, key: String, valid: (String) -> [UInt8],
        hostile: [(value: [UInt8]?, reason: String?)], secret: String? = nil
    ) throws -> (canonical: [String], metrics: String) {
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers, configuration: KafkaConfiguration(["message.max.bytes": "10000000"]))
        try producer.send(topic: topic, key: Array(key.utf8), value: valid("V1"))
        for item in hostile { try producer.send(topic: topic, key: Array(key.utf8), value: item.value) }
        try producer.send(topic: topic, key: Array(key.utf8), value: valid("V2"))
        try producer.flush(timeoutMilliseconds: 30_000)
        #expect(producer.report.delivered == hostile.count + 2)

        let adapt = try AdaptProcess(brokers: cluster.bootstrapServers, format: format, pattern: pattern)
        try adapt.waitUntilAdapted(hostile.count + 2)
        let metrics = try adapt.metrics()
        #expect(adapt.terminate() == 0, "nothing in a record stops the stage")
        var expected: [String: Int] = [:]
        for item in hostile { if let reason = item.reason { expected[reason, default: 0] += 1 } }
        for (reason, count) in expected {
            #expect(metrics.contains(#"chatledger_adapt_dead_letters_total{format="\#(format)",reason="\#(reason)"} \#(count)"#), "\(reason): \(metrics)")
        }
        let letters = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: T.deadLetterTopic, partitions: 1)
        #expect(letters.count == expected.values.reduce(0, +))
        var reasons: [String: Int] = [:]
        for letter in letters {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(letter.value)) as? [String: Any])
            reasons[object["reason"] as? String ?? "?", default: 0] += 1
            #expect(object["topic"] as? String == topic)
            #expect((object["offset"] as? Int).map { $0 >= 1 && $0 <= hostile.count } == true, "coordinates of the source record")
            #expect(letter.value.count < 70_000, "at most 64 KiB of a record is kept")
            if let secret { #expect(!String(decoding: letter.value, as: UTF8.self).contains(secret), "no secret in a dead letter") }
        }
        #expect(reasons == expected)
        let events = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: T.canonicalTopic, partitions: 4)
        let texts = events.map { String(decoding: $0.value, as: UTF8.self) }
        #expect(texts.contains { $0.contains(#""messageId":"V1""#) })
        #expect(texts.contains { $0.contains(#""messageId":"V2""#) }, "the partition kept moving past every bad record")
        if let secret { #expect(!adapt.standardError.contains(secret), "no secret in a log line") }
        #expect(adapt.standardError.contains("dead letter"), "each dead letter is logged (reason, coordinates)")
        return (texts, metrics)
    }

    final class SentCount: Sendable {
        let value = Atomic<Int>(0)
        let delivered = Atomic<Int>(0)
    }

    /// `count` records of `traffic` published at ~50 records/s while `adapt` is SIGKILLed 20
    /// times (each restart resuming from the offsets the killed one committed), then a last
    /// stage catches up: the chat lists equal the reference folded from the records'
    /// meanings, and events read again after kills were ignored as repeats.
    /// `latestKill`: the longest a stage runs before it is killed (microseconds).
    static func crashWhileRecordsArrive(_ traffic: any BridgeSimulation, count total: Int, latestKill: UInt32 = 2_500_000) throws {
        var traffic = traffic
        let format = traffic.format
        let cluster = try T.cluster(topics: traffic.topics)
        let data = IngestTesting.temporaryData("adapt-crash-\(format)")
        defer { try? FileManager.default.removeItem(atPath: data) }
        var records: [EvolutionTraffic.Record] = []
        for _ in 0..<total { records.append(traffic.next()) }
        let meanings = records.flatMap(\.meaning)

        // The bridge keeps publishing, at ~50 records/s, on its own thread.
        let brokers = cluster.bootstrapServers
        let sent = SentCount()
        let feeding = Semaphore()
        let toSend = records.map { ($0.topic, $0.key, $0.value) }
        LedgerThread {
            defer { feeding.signal() }
            guard let producer = try? KafkaProducer(bootstrapServers: brokers) else { return }
            for (index, record) in toSend.enumerated() {
                try? producer.send(topic: record.0, key: record.1, value: record.2)
                sent.value.store(index + 1, ordering: .releasing)
                if index % 5 == 4 { usleep(100_000) }
            }
            try? producer.flush(timeoutMilliseconds: 60_000)
            sent.delivered.store(producer.report.delivered, ordering: .releasing)
        }.start()

        let ingest = try IngestProcess(brokers: brokers, data: data, group: "adapt-crash-ingest")
        defer { if ingest.process.isRunning { ingest.kill() } }
        // Each restart resumes from the offsets the killed stage committed, in a group of its
        // own (see GroupOffsets: the mock can keep a killed member's group rebalancing).
        let partitions = traffic.topics.map { ($0, Int32(0)) }
        var random = SystemRandomNumberGenerator()
        let sentBeforeKills = sent.value.load(ordering: .acquiring)
        var resumed = 0
        for kill in 0..<20 {
            if kill > 0 {
                resumed += try GroupOffsets.copy(brokers: brokers, from: "adapt-crash-\(kill - 1)", to: "adapt-crash-\(kill)", partitions: partitions) > 0 ? 1 : 0
            }
            let adapt = try AdaptProcess(brokers: brokers, format: format, pattern: traffic.sourcePattern, group: "adapt-crash-\(kill)")
            try adapt.waitUntilAssigned()
            if kill % 2 == 0 {
                // Every other stage is killed once it has committed progress, so restarts from
                // committed offsets are shown whatever the machine's load; the others at any moment.
                try T.waitUntil("stage \(kill) has committed offsets") {
                    try GroupOffsets.committedCount(brokers: brokers, group: "adapt-crash-\(kill)", partitions: partitions) > 0
                }
            }
            usleep(UInt32.random(in: 200_000...max(200_000, latestKill), using: &random))  // the kill moment; not a synchronisation
            adapt.kill()
        }
        #expect(sent.value.load(ordering: .acquiring) > sentBeforeKills, "records kept arriving during the kills")
        #expect(resumed >= 10, "most restarts resumed from offsets the killed stage had committed")
        feeding.wait()
        #expect(sent.delivered.load(ordering: .acquiring) == total, "the bridge's records all reached the broker")
        try GroupOffsets.copy(brokers: brokers, from: "adapt-crash-19", to: "adapt-crash-last", partitions: partitions)
        let last = try AdaptProcess(brokers: brokers, format: format, pattern: traffic.sourcePattern, group: "adapt-crash-last")
        try last.waitUntilAssigned()
        try last.waitUntilCaughtUp(seconds: 180)
        let statistics = try last.metrics()
        #expect(last.terminate() == 0)
        try IngestTesting.waitForLog(data: data, lastOffsets: try T.canonicalLastOffsets(brokers, partitions: 4))
        #expect(ingest.terminate() == 0)

        // Chat lists compared without `version` (events applied): a sender-view edit whose
        // message was adapted before a kill is dropped after it, while its 2.3.7 twin in
        // messages.update applies the same edit; the chats are the state.
        let state = try T.foldLog(data)
        let expected = try T.rendered(T.fold(meanings), devices: traffic.deviceIds, withVersion: false)
        let actual = try T.rendered(state, devices: traffic.deviceIds, withVersion: false)
        #expect(T.difference(expected, actual) == nil, "\(format): \(T.difference(expected, actual) ?? "")")
        if T.difference(expected, actual) != nil { try explainDifference(brokers: brokers, meanings: meanings) }
        #expect(state.counts.duplicate > 0, "records were read again after kills, and their events ignored as repeats")
        #expect(statistics.contains(#"chatledger_adapt_records_total{format="\#(format)"}"#))
    }

    /// Records what a failed comparison needs: receipts and revokes that reached the log
    /// before their message did (with their sources), and meanings never produced.
    static func explainDifference(brokers: String, meanings: [Event]) throws {
        var created: [String: Int64] = [:]
        var early: [String] = []
        let canonical = try PlainConsumer(bootstrapServers: brokers).readAll(topic: T.canonicalTopic, partitions: 4)
        for message in canonical.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            guard let event = try? EventParser().parse(message.value) else { continue }
            let source = event.source.map { "\($0)" } ?? ""
            switch event.payload {
            case .messageCreated(let m): if created[m.messageId] == nil { created[m.messageId] = message.offset }
            case .messageStatus(let status) where created[status.messageIds[0]] == nil:
                early.append("status \(status.messageIds[0]) at \(message.partition):\(message.offset) from \(source)")
            case .messageRevoked(let revoke) where created[revoke.messageId] == nil:
                early.append("revoke \(revoke.messageId) at \(message.partition):\(message.offset) from \(source)")
            default: break
            }
        }
        func signature(_ event: Event) -> String? {
            switch event.payload {
            case .messageCreated(let m): return "created \(m.messageId)"
            case .messageStatus(let status): return "status \(status.messageIds[0]) \(status.status) \(status.selfDevice ?? false)"
            case .messageRevoked(let revoke): return "revoked \(revoke.messageId)"
            case .messageEdited(let edit): return "edited \(edit.messageId)"
            default: return nil
            }
        }
        let produced = Set(canonical.compactMap { (try? EventParser().parse($0.value)).flatMap(signature) })
        let missing = meanings.compactMap(signature).filter { !produced.contains($0) }
        Issue.record("meanings never produced: \(missing.count): \(missing.prefix(8))")
        Issue.record("acts on messages not yet created: \(early.count): \(early.prefix(5).joined(separator: "; ")); created later: \(early.prefix(5).compactMap { line in created[String(line.split(separator: " ")[1])].map { "\($0)" } })")
    }
}
