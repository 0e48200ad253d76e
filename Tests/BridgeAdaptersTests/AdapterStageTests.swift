import BridgeAdapters
import ChatEvents
import ChatProjection
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

@Suite("Adapter stage against the mock cluster")
struct AdapterStageTests {
    @Test("several instances, one topic per event, a backlog of 3,000 records: every chat equals the state the records mean")
    func backlogMatchesMeaning() throws {
        var traffic = EvolutionTraffic(.init(instances: 3, chatsPerInstance: 15, seed: 42))
        let cluster = try StageTesting.cluster(for: traffic)
        let meanings = try StageTesting.produce(&traffic, count: 3_000, to: cluster.bootstrapServers)
        let stage = RunningStage(brokers: cluster.bootstrapServers)
        try stage.waitForRecords(3_000)
        let statistics = stage.stage.statistics
        try stage.stop()

        let actual = try StageTesting.foldCanonicalTopic(cluster.bootstrapServers)
        let expected = try StageTesting.rendered(StageTesting.fold(meanings), devices: traffic.deviceIds)
        let rendered = try StageTesting.rendered(actual.state, devices: traffic.deviceIds)
        #expect(StageTesting.difference(expected, rendered) == nil, "\(StageTesting.difference(expected, rendered) ?? "")")
        #expect(expected.values.allSatisfy { $0.contains(#""unreadCount":"#) })
        #expect(statistics.deadLetters == 0, "\(statistics.deadLettersByReason)")
        #expect(statistics.skippedByReason["ignored_event", default: 0] > 100, "noise is counted: \(statistics.skippedByReason)")
        #expect(statistics.skippedByReason["status_deleted_is_not_a_delete", default: 0] > 0, "the ≤ 2.3.6 trap occurs and is skipped")
        #expect(statistics.eventsByType["contact.aliased", default: 0] > 0)
        #expect(actual.events.allSatisfy { $0.source?.format == "evolution" }, "every event names its source")
        #expect(!actual.values.contains { String(decoding: $0, as: UTF8.self).contains(traffic.apiKey) }, "the apikey never reaches the canonical topic")
        // LID contacts: receipts named the chat by its LID; they landed in the phone chat.
        #expect(!actual.events.contains { $0.type == "message.status" && WhatsAppID.domain(of: $0.chatId ?? "") == .lid })
    }

    @Test("the assignment changes (a new topic) while bursts of records are being adapted: what was not handed on is read again, every chat equals the state the records mean")
    func assignmentWhileAdaptingLosesNothing() throws {
        // The rebalance callbacks run inside a poll, which the stage makes while a burst is
        // being adapted: the batch in flight is finished, what was handed on is committed, and
        // what was not (queued, held) is read again after the partitions come back. librdkafka
        // 2.0.2 revokes and reassigns every partition when a new topic matches, even under the
        // cooperative protocol, so this pins the revoke path; `AdaptWorkersTests` pins that a
        // callback's flush keeps the batch in flight.
        var traffic = EvolutionTraffic(.init(instances: 3, chatsPerInstance: 15, seed: 5))
        let cluster = try StageTesting.cluster(for: traffic)
        // Few enough that the mock keeps every event (it drops a partition's oldest past 5 MB),
        // even when the rebalance has the stage read some records twice.
        let (maxBursts, burstsAfter, burstSize) = (60, 3, 250)
        var records: [EvolutionTraffic.Record] = []
        for _ in 0..<((maxBursts + burstsAfter) * burstSize) { records.append(traffic.next()) }
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        var produced = 0
        func produceBurst() throws {
            for record in records[produced..<(produced + burstSize)] {
                try producer.send(topic: record.topic, key: record.key, value: record.value)
            }
            try producer.flush(timeoutMilliseconds: 30_000)
            produced += burstSize
        }
        try produceBurst()
        let stage = RunningStage(
            brokers: cluster.bootstrapServers, group: "stage-assign-while-adapting",
            kafka: [
                ("partition.assignment.strategy", "cooperative-sticky"), ("topic.metadata.refresh.interval.ms", "200"),
                // The mock coordinator waits up to the session timeout for a member to rejoin.
                ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"),
            ])
        try StageTesting.waitUntil("the stage reads the first burst") { stage.stage.statistics.records > 0 }
        // A new topic the pattern matches: found at the next metadata refresh and assigned
        // (the mock takes several seconds to settle the group), while bursts keep coming
        // until it is and for a few more after.
        let lateTopic = "evolution.global.late.topic"
        try cluster.createTopic(lateTopic, partitions: 1)
        let lateAssigned = { stage.stage.statistics.lag.keys.contains { $0.topic == lateTopic } }
        var burstsAfterAssignment = 0
        while burstsAfterAssignment < burstsAfter {
            if produced == maxBursts * burstSize {
                // A slow machine: the rest comes once the group has settled.
                try StageTesting.waitUntil("the new topic is assigned", seconds: 120, lateAssigned)
            }
            try produceBurst()
            if lateAssigned() { burstsAfterAssignment += 1 }
            usleep(400_000)  // pacing the bridge's bursts, not waiting for the stage
        }
        try stage.waitForRecords(produced)
        try stage.stop()

        let actual = try StageTesting.foldCanonicalTopic(cluster.bootstrapServers)
        let expected = try StageTesting.rendered(StageTesting.fold(records.prefix(produced).flatMap(\.meaning)), devices: traffic.deviceIds)
        let rendered = try StageTesting.rendered(actual.state, devices: traffic.deviceIds)
        #expect(StageTesting.difference(expected, rendered) == nil, "\(StageTesting.difference(expected, rendered) ?? "")")
    }

    @Test("a dead letter that does not name its secret (not JSON) is still scrubbed of the secrets earlier records carried")
    func deadLetterScrubbedOfKnownSecrets() throws {
        let topic = "evolution.sales.messages.upsert"
        let cluster = try StageTesting.cluster(canonicalPartitions: 1, topics: [topic])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        // An event the adapter skips still teaches the stage its record's apikey.
        try producer.send(topic: topic, key: Array("sales".utf8), value: Array(EvolutionHarness.envelope("some.future.event", "{}").utf8))
        try producer.send(topic: topic, key: Array("sales".utf8), value: Array("not json, but it leaks \(EvolutionHarness.secret) anyway".utf8))
        try producer.flush(timeoutMilliseconds: 30_000)
        let stage = RunningStage(brokers: cluster.bootstrapServers, pattern: "^evolution\\..*")
        try stage.waitForRecords(2)
        let statistics = stage.stage.statistics
        try stage.stop()

        #expect(statistics.deadLettersByReason.values.reduce(0, +) == 1, "\(statistics.deadLettersByReason)")
        let letters = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: StageTesting.deadLetterTopic, partitions: 1)
        #expect(letters.count == 1)
        let text = letters.map { String(decoding: $0.value, as: UTF8.self) }.joined()
        #expect(text.contains("leaks"), "the dead letter keeps the record: \(text)")
        #expect(!text.contains(EvolutionHarness.secret), "the earlier record's apikey is scrubbed from it")
    }

    @Test("records the broker dropped after the stage's last commit, before it read them (the mock keeps 5 MiB per partition), are never silent: counted, and one dead letter names the lost range")
    func sourceRecordsLostAreReported() throws {
        let topic = "evolution.sales.messages.upsert"
        let cluster = try StageTesting.cluster(canonicalPartitions: 1, topics: [topic])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        // Events the adapter skips: 10 small ones the stage reads and commits, then 1,600 of
        // ~4 KB that overflow the partition while it is stopped.
        func send(_ count: Int, padding: Int) throws {
            let pad = String(repeating: "x", count: padding)
            for _ in 0..<count {
                try producer.send(
                    topic: topic, key: Array("sales".utf8), value: Array(EvolutionHarness.envelope("some.future.event", #"{"pad":"\#(pad)"}"#).utf8))
            }
            try producer.flush(timeoutMilliseconds: 60_000)
        }
        try send(10, padding: 1)
        let first = RunningStage(brokers: cluster.bootstrapServers, pattern: "^evolution\\..*")
        try first.waitForRecords(10)
        try first.stop()  // commits offset 10
        #expect(first.stage.statistics.sourceRecordsLost == 0)
        try send(1_600, padding: 4_000)

        let stage = RunningStage(brokers: cluster.bootstrapServers, pattern: "^evolution\\..*")
        try StageTesting.waitUntil("the stage caught up") {
            let statistics = stage.stage.statistics
            return statistics.caughtUp && statistics.records + statistics.sourceRecordsLost == 1_600
        }
        let statistics = stage.stage.statistics
        try stage.stop()

        #expect(statistics.sourceRecordsLost > 0 && statistics.records < 1_600, "the mock dropped the oldest: \(statistics.sourceRecordsLost)")
        #expect(statistics.deadLettersByReason == ["source_records_lost": 1], "\(statistics.deadLettersByReason)")
        let letters = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: StageTesting.deadLetterTopic, partitions: 1)
        let text = letters.map { String(decoding: $0.value, as: UTF8.self) }.joined()
        #expect(letters.count == 1 && text.contains(#""reason":"source_records_lost""#) && text.contains(#""offset":10"#), "\(text)")
        #expect(text.contains("offsets 10...\(10 + statistics.sourceRecordsLost - 1) of \(topic)/0"), "\(text)")
    }

    @Test("a contact's edit names the account's own LID (key in the sender's view): the stage takes it for no alias, and deleting the account's own chat deletes no contact's chat")
    func ownLidInEditIsNoAlias() throws {
        let topics = ["upsert", "edited", "delete"].map { "evolution.sales.messages.\($0)" } + ["evolution.sales.chats.delete"]
        let cluster = try StageTesting.cluster(canonicalPartitions: StageTesting.canonicalPartitions, topics: topics)
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        let ownLid = "200000000002@lid"
        func send(_ event: String, _ data: String, at seconds: Int64) throws {
            try producer.send(
                topic: "evolution.sales.\(event)", key: Array("sales".utf8),
                value: Array(EvolutionHarness.envelope(event, data, timestamp: seconds * 1000).utf8))
            try producer.flush(timeoutMilliseconds: 30_000)
        }
        for (id, phone, at) in [("A1", "5511988887777", Int64(1_763_771_100)), ("B1", "5511977776666", 1_763_771_101)] {
            try send("messages.upsert", #"{"key":{"remoteJid":"\#(phone)@s.whatsapp.net","fromMe":false,"id":"\#(id)"},"message":{"conversation":"hi"},"messageTimestamp":\#(at)}"#, at: at)
        }
        for (id, at) in [("A1", Int64(1_763_771_102)), ("B1", 1_763_771_103)] {
            try send("messages.edited", #"{"key":{"remoteJid":"\#(ownLid)","fromMe":true,"id":"\#(id)"},"type":"MESSAGE_EDIT","editedMessage":{"conversation":"x"}}"#, at: at)
        }
        try send("chats.delete", #"["\#(ownLid)"]"#, at: 1_763_771_104)
        let stage = RunningStage(brokers: cluster.bootstrapServers, pattern: "^evolution\\..*")
        try stage.waitForRecords(5)
        try StageTesting.waitUntil("every event delivered") {
            let statistics = stage.stage.statistics
            return statistics.caughtUp && statistics.held == 0 && statistics.delivered >= statistics.events
        }
        try stage.stop()

        let folded = try StageTesting.foldCanonicalTopic(cluster.bootstrapServers)
        #expect(!folded.events.contains { $0.type == "contact.aliased" }, "the account's LID is no contact's alias: \(folded.events.map(\.type))")
        #expect(folded.events.filter { $0.type == "message.edited" }.map(\.chatId) == ["5511988887777@c.us", "5511977776666@c.us"])
        let chats = try #require(folded.state.devices["sales"]).chats
        #expect(chats.count == 2, "both contacts' chats are left")
    }
}
