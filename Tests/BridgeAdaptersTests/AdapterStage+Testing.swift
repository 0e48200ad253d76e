#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import BridgeTestSupport
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaClient
import KafkaTestSupport
import LedgerSupport
import Synchronization
import Testing

/// Produces simulated Evolution traffic to a mock cluster and folds what comes out (the
/// topics, the cluster and the reference: `StageTestingSupport`).
enum StageTesting: StageTestingSupport {
    static let canonicalPartitions = 4

    /// A mock cluster with the canonical and dead-letter topics and `traffic`'s topics.
    static func cluster(for traffic: EvolutionTraffic) throws -> MockCluster {
        try cluster(canonicalPartitions: canonicalPartitions, topics: traffic.topics)
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

    /// Waits (polling the condition, bounded) until `condition` holds.
    static func waitUntil(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) throws {
        try Polling.waitUntil(what, seconds: seconds, condition)
    }
}

/// An adapter stage on its own thread, for in-process tests.
final class RunningStage: @unchecked Sendable {
    // SAFETY: `failure` is written by the stage thread before `done` is signalled (and
    // `ended` set) and read only after waiting for it.
    let stage = AdapterStage()
    private let done = Semaphore()
    private let ended = Atomic<Bool>(false)
    private var failure: Error?

    /// - Parameter kafka: librdkafka properties beside the test defaults (or replacing them).
    init(brokers: String, pattern: String = "^evolution\\..*", group: String = "stage-test", hold: Int = 2_000, kafka: [(String, String)] = []) {
        var settings = KafkaConfiguration(["fetch.wait.max.ms": "5", "log_level": "3"])
        for (key, value) in kafka { settings[key] = value }
        let configuration = AdapterStage.Configuration(
            brokers: brokers, group: group, sourceTopics: [pattern], topic: StageTesting.canonicalTopic,
            deadLetterTopic: StageTesting.deadLetterTopic,
            kafka: settings,
            holdMilliseconds: hold, commitEveryMilliseconds: 200)
        LedgerThread { [self] in
            do {
                try stage.run(adapter: EvolutionAdapter(), configuration: configuration)
            } catch {
                failure = error
            }
            ended.store(true, ordering: .releasing)
            done.signal()
        }.start()
    }

    /// Waits (without asking it to stop) until the stage ends by itself; what stopped it.
    func waitUntilEnded(seconds: Double = 60) throws -> Error? {
        try StageTesting.waitUntil("the stage has ended by itself", seconds: seconds) { ended.load(ordering: .acquiring) }
        done.wait()
        return failure
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
