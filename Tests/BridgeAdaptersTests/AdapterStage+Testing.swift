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
import Testing

/// Produces simulated Evolution traffic to a mock cluster and folds what comes out.
enum StageTesting {
    static let canonicalTopic = "wa.device-events"
    static let canonicalPartitions = 4
    static let deadLetterTopic = "wa.adapt.dead-letters"

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// A mock cluster with the canonical and dead-letter topics and `traffic`'s topics
    /// (one partition each, as Evolution's broker-created topics have).
    static func cluster(for traffic: EvolutionTraffic) throws -> MockCluster {
        let cluster = try MockCluster(topics: [(canonicalTopic, canonicalPartitions), (deadLetterTopic, 1)])
        for topic in traffic.topics { try cluster.createTopic(topic, partitions: 1) }
        return cluster
    }

    /// Produces `count` records of `traffic`; returns their meanings, in order.
    @discardableResult
    static func produce(_ traffic: inout EvolutionTraffic, count: Int, to brokers: String) throws -> [Event] {
        let producer = try KafkaProducer(bootstrapServers: brokers)
        var meanings: [Event] = []
        for _ in 0..<count {
            let record = traffic.next()
            meanings.append(contentsOf: record.meaning)
            try producer.send(topic: record.topic, key: record.key, value: record.value)
        }
        try producer.flush(timeoutMilliseconds: 30_000)
        guard producer.report.failed == 0 else { throw Failure("\(producer.report.failed) records not delivered") }
        return meanings
    }

    /// Folds events in order (ids made unique) into a projection state.
    static func fold(_ events: [Event]) -> ProjectionState {
        var state = ProjectionState()
        for (index, var event) in events.enumerated() {
            event.eventId = "m-\(index)"
            state.apply(event, at: LogPosition(partition: 0, offset: Int64(index)))
        }
        return state
    }

    /// Reads the canonical topic and folds it as ingest would (per partition, in offset
    /// order; invalid values are failures here).
    static func foldCanonicalTopic(_ brokers: String) throws -> (state: ProjectionState, events: [Event], values: [[UInt8]]) {
        let messages = try PlainConsumer(bootstrapServers: brokers).readAll(topic: canonicalTopic, partitions: canonicalPartitions)
        var state = ProjectionState()
        var events: [Event] = []
        let parser = EventParser()
        for message in messages.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let event = try parser.parse(message.value, kafkaKey: message.key)
            events.append(event)
            state.apply(event, at: LogPosition(partition: message.partition, offset: message.offset))
        }
        return (state, events, messages.map(\.value))
    }

    /// Every device's chat list as the API renders it (up to 500 chats), at a fixed clock.
    static func rendered(_ state: ProjectionState, devices: [String]) throws -> [String: String] {
        var views: [String: String] = [:]
        for device in devices {
            let view = try ChatListRenderer.chatList(state.devices[device], deviceId: device, query: ChatListQuery(limit: 500), now: 1_900_000_000_000)
            views[device] = String(decoding: view.bytes, as: UTF8.self)
        }
        return views
    }

    /// The first difference between two renderings, for a readable failure.
    static func difference(_ expected: [String: String], _ actual: [String: String]) -> String? {
        for device in expected.keys.sorted() where expected[device] != actual[device] {
            let left = expected[device] ?? "", right = actual[device] ?? ""
            let common = zip(left, right).prefix { $0 == $1 }.count
            let start = left.index(left.startIndex, offsetBy: max(0, common - 200))
            let rightStart = right.index(right.startIndex, offsetBy: max(0, common - 200))
            return "\(device) differs at character \(common):\n expected …\(left[start...].prefix(500))\n actual   …\(right[rightStart...].prefix(500))"
        }
        return nil
    }

    /// Waits (polling the condition, bounded) until `condition` holds.
    static func waitUntil(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) throws {
        try Polling.waitUntil(what, seconds: seconds, condition)
    }
}

/// An adapter stage on its own thread, for in-process tests.
final class RunningStage: @unchecked Sendable {
    // SAFETY: `failure` is written by the stage thread before `done` is signalled and read
    // only after waiting for it.
    let stage = AdapterStage()
    private let done = Semaphore()
    private var failure: Error?

    init(brokers: String, pattern: String = "^evolution\\..*", group: String = "stage-test", hold: Int = 2_000) {
        let configuration = AdapterStage.Configuration(
            brokers: brokers, group: group, sourceTopics: [pattern], topic: StageTesting.canonicalTopic,
            deadLetterTopic: StageTesting.deadLetterTopic,
            kafka: KafkaConfiguration(["fetch.wait.max.ms": "5", "log_level": "3"]),
            holdMilliseconds: hold, commitEveryMilliseconds: 200)
        LedgerThread { [self] in
            do {
                try stage.run(adapter: EvolutionAdapter(), configuration: configuration)
            } catch {
                failure = error
            }
            done.signal()
        }.start()
    }

    /// Waits until the stage has consumed `records` and caught up with every source partition.
    func waitForRecords(_ records: Int, seconds: Double = 90) throws {
        try StageTesting.waitUntil("the stage has adapted \(records) records", seconds: seconds) {
            let statistics = stage.statistics
            return statistics.records >= records && statistics.caughtUp && statistics.held == 0
        }
    }

    /// Stops the stage and waits for its thread; rethrows what stopped it.
    func stop() throws {
        stage.stop()
        done.wait()
        if let failure { throw failure }
    }
}
