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
}
