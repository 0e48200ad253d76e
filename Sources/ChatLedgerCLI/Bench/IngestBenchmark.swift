import ChatEvents
import EventLog
import Foundation
import Ingest
import KafkaClient

/// `bench ingest`: end-to-end events/s from a pre-filled topic into the log and the
/// projection, next to a bare consumer draining the same topic in the same run, and a
/// consumer that also parses each event (the least any validating ingest does). All
/// are timed from the moment every partition has delivered a message to their last
/// message (the drain rate); the group join (~3 s on the mock) and the start-up before
/// that moment are left out and reported apart.
enum IngestBenchmark {
    static let topic = DeviceEventsTopic.defaultName
    /// The same fetch settings for both consumers: the mock answers a fetch with nothing
    /// new only after `fetch.wait.max.ms`, so a short wait and large fetches keep its
    /// pauses out of the comparison.
    static let fetchSettings = KafkaConfiguration(["fetch.wait.max.ms": "10", "max.partition.fetch.bytes": "16777216"])

    static func run(events count: Int, directory: String, fsync: FsyncPolicy = .batch) throws -> BenchReport {
        // The mock keeps at most 5 MiB per partition: enough partitions for the events.
        let partitions = max(4, count / 15_000)
        let cluster = try MockCluster(topics: [(topic, partitions)])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers, configuration: KafkaConfiguration(["linger.ms": "20"]))
        var model = TrafficModel(.init(devices: 1_000, chatsPerDevice: 50, seed: 9))
        var bytes = 0
        for _ in 0..<count {
            let event = model.next().event
            let value = EventEncoder.encode(event)
            bytes += value.count
            try producer.send(topic: topic, key: Array(event.deviceId.utf8), value: value)
        }
        try producer.flush(timeoutMilliseconds: 120_000)
        guard producer.report.delivered == count else { throw BenchFailure("only \(producer.report.delivered) of \(count) delivered") }

        // The ingest pipeline: validate, log (fsync per batch), project.
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: topic, fsync: fsync))
        var ingestAssigned: ContinuousClock.Instant?
        let consumer = try KafkaConsumer(
            bootstrapServers: cluster.bootstrapServers, groupId: "bench-ingest", topic: topic, configuration: fetchSettings,
            startOffset: { try pipeline.startOffset(for: $0) }, onAssigned: { _ in ingestAssigned = ingestAssigned ?? .now })
        let ingest = try drain(count: count, partitions: partitions, assigned: { ingestAssigned }, finish: { pipeline.waitUntilApplied() }) { body in
            // Batches exactly as `IngestService` makes them.
            try IngestService.consumeBatch(from: consumer, into: pipeline, batchSize: 10_000, onMessage: body)
        }
        consumer.close()

        // The bare consumer: fetch and drop.
        let bareDrain = try plainDrain(group: "bench-bare", cluster: cluster, count: count, partitions: partitions) { _ in }
        // The parsing consumer: fetch and validate each value with the event parser, as
        // any ingest must at the least, and drop it (no log, no projection).
        let parser = EventParser()
        var parsedValid = 0
        let parsingDrain = try plainDrain(group: "bench-parsing", cluster: cluster, count: count, partitions: partitions) { message in
            if let value = message.value, (try? parser.parse(value, kafkaKey: message.key)) != nil { parsedValid += 1 }
        }
        guard parsedValid == count else { throw BenchFailure("the parsing consumer found \(count - parsedValid) invalid events") }

        var report = BenchReport(bench: "ingest")
        let ingestSeconds = ingest.seconds
        let ingestRate = Double(ingest.messages) / ingestSeconds
        let bareRate = Double(bareDrain.messages) / bareDrain.seconds
        report.add("ingest_events_per_s", ingestRate, "events/s")
        report.add("bare_consumer_events_per_s", bareRate, "events/s")
        report.add("ingest_vs_bare_consumer", ingestRate / bareRate, "ratio")
        let parsingRate = Double(parsingDrain.messages) / parsingDrain.seconds
        report.add("parsing_consumer_events_per_s", parsingRate, "events/s")
        report.add("ingest_vs_parsing_consumer", ingestRate / parsingRate, "ratio")
        report.add("ingest_mb_per_s", Double(bytes) / Double(count) * ingestRate / 1e6, "MB/s")
        report.add("events", Double(count), "events")
        report.add("partitions", Double(partitions), "partitions")
        report.add("ingest_startup_ms", ingest.startMilliseconds, "ms")
        report.add("bare_startup_ms", bareDrain.startMilliseconds, "ms")
        report.add("parsing_startup_ms", parsingDrain.startMilliseconds, "ms")
        report.add("ingest_timed_events", Double(ingest.messages), "events")
        report.notes.append("librdkafka mock cluster in this process; fsync per batch of up to 10000; dead letters: \(pipeline.counters.deadLetters)")
        return report
    }

    /// A consumer of its own group that reads the topic from the start and hands each
    /// message to `handle` (nothing else), drained as `drain` times it.
    private static func plainDrain(
        group: String, cluster: MockCluster, count: Int, partitions: Int, _ handle: (KafkaConsumer.Message) -> Void
    ) throws -> (seconds: Double, messages: Int, startMilliseconds: Double) {
        var assigned: ContinuousClock.Instant?
        let consumer = try KafkaConsumer(
            bootstrapServers: cluster.bootstrapServers, groupId: group, topic: topic, configuration: fetchSettings,
            startOffset: { _ in nil }, onAssigned: { _ in assigned = assigned ?? .now })
        defer { consumer.close() }
        return try drain(count: count, partitions: partitions, assigned: { assigned }) { body in
            try consumer.poll(maxMessages: 2_000, timeoutMilliseconds: 100) { message in
                handle(message)
                body(message.partition)
            }
        }
    }

    /// Calls `poll` until `count` messages were seen. Returns the drain rate's time: from
    /// the moment every partition has delivered a message to the last message, with the
    /// messages in between; and the milliseconds from the partitions' assignment to that
    /// moment (start-up: the consumer finding each partition's leader and sending its
    /// first fetches, which on the mock takes 0 to ~500 ms per broker from run to run and
    /// would otherwise swamp a 200,000-event drain).
    private static func drain(
        count: Int, partitions: Int, assigned: () -> ContinuousClock.Instant?, finish: () -> Void = {},
        _ poll: ((Int32) -> Void) throws -> Int
    ) throws -> (seconds: Double, messages: Int, startMilliseconds: Double) {
        var seen = 0
        var idlePolls = 0
        var started: Set<Int32> = []
        var steady: (at: ContinuousClock.Instant, seen: Int)?
        while seen < count {
            let received = try poll { partition in
                seen += 1
                if steady == nil, started.insert(partition).inserted, started.count == partitions { steady = (.now, seen) }
            }
            idlePolls = received == 0 ? idlePolls + 1 : 0
            if idlePolls > 600 { throw BenchFailure("stalled at \(seen) of \(count)") }
        }
        finish()
        let start = steady ?? (.now, seen)
        return (max(1e-9, (ContinuousClock.now - start.at) / .seconds(1)), count - start.seen, (start.at - (assigned() ?? start.at)) / .milliseconds(1))
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
