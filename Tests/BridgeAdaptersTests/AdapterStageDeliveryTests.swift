import BridgeAdapters
import ChatEvents
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

@Suite("Adapter stage: events the producer cannot deliver")
struct AdapterStageDeliveryTests {
    static let topic = "evolution.sales.messages.upsert"
    /// Each stage's group: a restart resumes from the offsets its predecessor committed, in
    /// a group of its own (see `GroupOffsets`: the mock keeps a gone member for a session).
    static func group(_ stage: Int) -> String { "stage-delivery-\(stage)" }
    /// Kafka's TOPIC_AUTHORIZATION_FAILED: a permanent produce error (no retry).
    static let refused: Int32 = 29

    /// A `messages.upsert` of message `id` in one chat.
    static func upsert(_ id: String, at seconds: Int64) -> [UInt8] {
        Array(EvolutionHarness.envelope(
            "messages.upsert",
            #"{"key":{"remoteJid":"5511988887777@s.whatsapp.net","fromMe":false,"id":"\#(id)"},"pushName":"Ana","status":"DELIVERY_ACK","message":{"conversation":"hi \#(id)"},"messageType":"conversation","messageTimestamp":\#(seconds),"instanceId":"i","source":"android"}"#,
            timestamp: seconds * 1000 + 1
        ).utf8)
    }

    /// Produces `ids` to the source topic (all delivered).
    static func produce(_ ids: Range<Int>, to brokers: String) throws {
        let producer = try KafkaProducer(bootstrapServers: brokers)
        for id in ids { try producer.send(topic: topic, key: Array("sales".utf8), value: upsert("M\(id)", at: 1_767_000_000 + Int64(id))) }
        try producer.flush(timeoutMilliseconds: 30_000)
        #expect(producer.report.delivered == ids.count)
    }

    /// The committed offset of the source partition of stage `stage`'s group, nil if none.
    static func committed(_ brokers: String, stage: Int) throws -> Int64? {
        try GroupOffsets.committed(brokers: brokers, group: group(stage), partitions: [(topic, 0)]).first?.offset
    }

    /// Stage `stage`, resuming from what stage `stage - 1` committed.
    static func restart(_ stage: Int, _ brokers: String) throws -> RunningStage {
        try GroupOffsets.copy(brokers: brokers, from: group(stage - 1), to: group(stage), partitions: [(topic, 0)])
        return RunningStage(brokers: brokers, group: group(stage))
    }

    /// Uses up the produce refusals still queued on the cluster (each failed request takes
    /// one), so that what follows is delivered; how many were left. A fresh producer each
    /// time: librdkafka refuses more messages for a topic the broker refused.
    static func drainRefusals(_ brokers: String) throws -> Int {
        for attempt in 0..<100 {
            let probe = try KafkaProducer(bootstrapServers: brokers, configuration: KafkaConfiguration(["enable.idempotence": "false", "linger.ms": "0"]))
            try probe.send(topic: "probe", key: [], value: [UInt8(attempt)])
            try probe.flush(timeoutMilliseconds: 30_000)
            if probe.report.delivered > 0 { return attempt }
        }
        throw StageTesting.Failure("produce requests still refused after 100 attempts")
    }

    @Test("the canonical topic refuses the events: run throws AdapterStageError, the source offset stays at the first undelivered record, and a restart adapts those records")
    func undeliveredEventsKeepTheirRecordsUncommitted() throws {
        let cluster = try MockCluster(topics: [(StageTesting.canonicalTopic, StageTesting.canonicalPartitions), (StageTesting.deadLetterTopic, 1), (Self.topic, 1), ("probe", 1)])
        let brokers = cluster.bootstrapServers

        // Five records adapted, delivered and committed.
        try Self.produce(0..<5, to: brokers)
        let first = RunningStage(brokers: brokers, group: Self.group(1))
        try first.waitForRecords(5)
        try first.stop()
        #expect(try Self.committed(brokers, stage: 1) == 5)

        // Five more, and from now on the broker refuses every produce request.
        try Self.produce(5..<10, to: brokers)
        cluster.failNextRequests(.produce, errors: Array(repeating: Self.refused, count: 20))
        let second = try Self.restart(2, brokers)
        let failure = try second.waitUntilEnded()
        let stageError = try #require(failure as? AdapterStageError, "the stage stops with AdapterStageError, not \(String(describing: failure))")
        #expect(stageError.description.contains("deliveries failed"), "\(stageError)")
        #expect(try Self.committed(brokers, stage: 2) == 5, "no offset past a record whose events were not delivered is committed")

        // The refusals over, a restart reads the five again and delivers their events.
        let refusalsLeft = try Self.drainRefusals(brokers)
        #expect(refusalsLeft < 20, "the failed stage used some of the refusals")
        let third = try Self.restart(3, brokers)
        try third.waitForRecords(5)
        try third.stop()
        #expect(try Self.committed(brokers, stage: 3) == 10)
        let delivered = try StageTesting.foldCanonicalTopic(brokers).events
        let created = Set(delivered.compactMap { event -> String? in
            if case .messageCreated(let message) = event.payload { return message.messageId }
            return nil
        })
        #expect(created == Set((0..<10).map { "M\($0)" }), "every record's event reached the canonical topic in the end")
    }
}
