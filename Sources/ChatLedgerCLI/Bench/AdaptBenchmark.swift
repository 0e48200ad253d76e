#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import ChatEvents
import EventLog
import Foundation
import Ingest
import KafkaClient
import LedgerSupport
import Synchronization

/// `bench adapt`: bridge records/s through the adapter stage, next to `ingest` of the
/// events the stage made, in the same run. The stage must not be the bottleneck: its
/// events/s should be at least ingest's.
///
/// Simulated bridge traffic is put on a mock cluster first (Baileys and wwebjs: their one
/// topic, keyed by device), for Evolution on its global topics
/// (`evolution.global.<event>`, a partition per 5,000 records each, keyed `<instance>-<event>`: how a
/// deployment with many instances publishes); the stage then adapts the backlog (timed
/// from its first record to the last one delivered, group join left out), and ingest
/// drains the canonical topic it filled into a log and projection (timed as `bench
/// ingest` times it). The backlog is produced in large batches: librdkafka's mock returns
/// one batch per partition and fetch, so records sent one by one (as Evolution sends
/// them) would measure the mock's round trips instead of the stage.
/// CPU seconds the calling thread spends in `body`.
func threadCPUSeconds(_ body: () throws -> Void) rethrows -> Double {
    var start = timespec()
    var end = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
    try body()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end)
    return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
}

/// CPU seconds all of this process's threads have used so far (the mock cluster's included).
func processCPUSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

enum AdaptBenchmark {
    static let canonicalTopic = DeviceEventsTopic.defaultName

    /// The simulated traffic `run` measures `count` records of.
    static func traffic(records count: Int, format: String) throws -> any BridgeSimulation {
        // Enough instances and partitions that no partition nears the mock's 5 MiB limit.
        // Evolution on its global topics; Baileys and wwebjs on their one topic, keyed by device.
        if format == EvolutionAdapter.formatName {
            return EvolutionTraffic(.init(instances: max(20, count / 1_000), chatsPerInstance: 30, seed: 9, global: true))
        } else if let simulation = BridgeFormats.simulation(named: format, devices: max(20, count / 1_000), chats: 30, seed: 9) {
            return simulation
        }
        throw BenchFailure("no simulated traffic for format \(format)")
    }

    /// Adapts `sample` and encodes each event, as the stage's workers do in a release build;
    /// returns the events and their bytes. Not inlined, so a profiler can select it
    /// (`valgrind --tool=callgrind --toggle-collect='*AdaptBenchmark*adaptSample*'`).
    @inline(never)
    static func adaptSample(_ sample: [BridgeRecord], adapter: any BridgeAdapter, tape: JSONTape) -> (events: Int, bytes: Int) {
        var events = 0
        var bytes = 0
        for record in sample {
            let adapted = adapter.adapt(record, tape: tape)
            for event in adapted.events {
                bytes += EventEncoder.encode(event.event).count
                events += 1
            }
        }
        return (events, bytes)
    }

    /// `bench adapt --cpu-only`: only the per-record work on one thread (`adaptSample`),
    /// without Kafka, for profilers and quick comparisons.
    static func runCPUOnly(records count: Int, format: String) throws -> BenchReport {
        guard let adapter = BridgeFormats.adapter(named: format) else { throw BenchFailure("unknown format \(format)") }
        var traffic = try traffic(records: count, format: format)
        let sample = (0..<count).map { index in
            let record = traffic.next()
            return BridgeRecord(topic: record.topic, partition: 0, offset: Int64(index), timestamp: record.timestamp, key: record.key, value: record.value)
        }
        let tape = JSONTape()
        var result = (events: 0, bytes: 0)
        let cpuSeconds = threadCPUSeconds { result = adaptSample(sample, adapter: adapter, tape: tape) }
        var report = BenchReport(bench: "adapt")
        report.add("adapt_cpu_records_per_s", Double(sample.count) / max(1e-9, cpuSeconds), "records/s")
        report.add("adapt_cpu_events_per_s", Double(result.events) / max(1e-9, cpuSeconds), "events/s")
        report.add("adapt_cpu_us_per_record", cpuSeconds / Double(max(1, sample.count)) * 1e6, "µs")
        report.add("records", Double(sample.count), "records")
        report.add("events", Double(result.events), "events")
        report.add("record_bytes", Double(sample.reduce(0) { $0 + ($1.value?.count ?? 0) }), "bytes")
        report.add("event_bytes", Double(result.bytes), "bytes")
        return report
    }

    static func run(records count: Int, format: String, directory: String, adaptThreads: Int) throws -> BenchReport {
        guard let adapter = BridgeFormats.adapter(named: format) else { throw BenchFailure("unknown format \(format)") }
        var traffic = try traffic(records: count, format: format)
        let sourcePartitions = max(8, count / 5_000)
        let canonicalPartitions = max(8, count / 5_000)
        let cluster = try MockCluster(topics: [(canonicalTopic, canonicalPartitions), (AdapterStage.Configuration.defaultDeadLetterTopic, 1)])
        for topic in traffic.topics { try cluster.createTopic(topic, partitions: sourcePartitions) }
        let producer = try KafkaProducer(
            bootstrapServers: cluster.bootstrapServers,
            configuration: KafkaConfiguration(["linger.ms": "1000", "batch.num.messages": "10000", "queue.buffering.max.messages": "1000000"]))
        var bytes = 0
        var sample: [BridgeRecord] = []
        for index in 0..<count {
            let record = traffic.next()
            bytes += record.value.count
            if index < 50_000 {
                sample.append(BridgeRecord(topic: record.topic, partition: 0, offset: Int64(index), timestamp: record.timestamp, key: record.key, value: record.value))
            }
            try producer.send(topic: record.topic, key: record.key, value: record.value)
        }
        try producer.flush(timeoutMilliseconds: 120_000)
        guard producer.report.delivered == count else { throw BenchFailure("only \(producer.report.delivered) of \(count) delivered") }

        // The stage's own work per record on one thread, without Kafka: adapt (parse, map)
        // and encode each event, as the stage does in a release build (debug builds also run
        // each event through the event parser). Timed in the thread's CPU time, so other load
        // on the machine does not count.
        let tape = JSONTape()
        var sampleEvents = 0
        let cpuSeconds = threadCPUSeconds { sampleEvents = adaptSample(sample, adapter: adapter, tape: tape).events }
        // And what the parser (ingest's first step) costs on the same events, for scale.
        var sampleEncoded: [[UInt8]] = []
        for record in sample.prefix(20_000) {
            for event in adapter.adapt(record, tape: tape).events { sampleEncoded.append(EventEncoder.encode(event.event)) }
        }
        let parser = EventParser()
        var parsed = 0
        let parseSeconds = threadCPUSeconds {
            for value in sampleEncoded where (try? parser.parse(value)) != nil { parsed += 1 }
        }

        // The stage, on its own thread as in `adapt`.
        let stage = AdapterStage()
        let configuration = AdapterStage.Configuration(
            brokers: cluster.bootstrapServers, group: "bench-adapt", sourceTopics: [traffic.sourcePattern], topic: canonicalTopic,
            kafka: KafkaConfiguration(["fetch.wait.max.ms": "10", "max.partition.fetch.bytes": "16777216", "log_level": "3"]),
            progressEverySeconds: 3600, adaptThreads: adaptThreads)
        let finished = Semaphore()
        let failure = Mutex<String?>(nil)
        LedgerThread(name: "chatledger-adapt") {
            do {
                try stage.run(adapter: adapter, configuration: configuration)
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            finished.signal()
        }.start()
        let started = ContinuousClock.now
        var first: ContinuousClock.Instant?
        var firstCPU = 0.0
        var firstThreads = ThreadCPU(pid: getpid())
        var idle = 0
        var last = 0
        var allConsumed: ContinuousClock.Instant?
        while true {
            let statistics = stage.statistics
            if first == nil, statistics.records > 0 { (first, firstCPU, firstThreads) = (.now, processCPUSeconds(), ThreadCPU(pid: getpid())) }
            if allConsumed == nil, statistics.records >= count { allConsumed = .now }
            if statistics.records >= count, statistics.caughtUp, statistics.held == 0,
                statistics.delivered >= statistics.events + statistics.deadLetters
            {
                break
            }
            if let reason = failure.withLock({ $0 }) { throw BenchFailure("the stage stopped: \(reason)") }
            idle = statistics.records == last ? idle + 1 : 0
            last = statistics.records
            if idle > 6_000 { throw BenchFailure("the stage stalled at \(statistics.records) of \(count) records") }
            usleep(5_000)
        }
        let done = ContinuousClock.now
        let adaptCPU = processCPUSeconds() - firstCPU
        let adaptThreadCPU = ThreadCPU(pid: getpid()).since(firstThreads)
        stage.stop()
        finished.wait()
        let statistics = stage.statistics
        let adaptSeconds = max(1e-3, (done - (first ?? started)) / .seconds(1))

        // Ingest of what the stage made: validate, log (fsync per batch), project.
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let events = statistics.events
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: canonicalTopic))
        let consumer = try KafkaConsumer(
            bootstrapServers: cluster.bootstrapServers, groupId: "bench-adapt-ingest", topic: canonicalTopic,
            configuration: KafkaConfiguration(["fetch.wait.max.ms": "10", "max.partition.fetch.bytes": "16777216"]),
            startOffset: { try pipeline.startOffset(for: $0) })
        // Timed from the first event to the last one applied, in batches as `IngestService` makes them.
        var ingested = 0
        var ingestStart: ContinuousClock.Instant?
        var ingestStartCPU = 0.0
        var ingestThreads = ThreadCPU(pid: getpid())
        var idlePolls = 0
        while ingested < events {
            let received = try IngestService.consumeBatch(from: consumer, into: pipeline, batchSize: 10_000)
            if received > 0, ingestStart == nil { (ingestStart, ingestStartCPU, ingestThreads) = (.now, processCPUSeconds(), ThreadCPU(pid: getpid())) }
            ingested += received
            idlePolls = received == 0 ? idlePolls + 1 : 0
            if idlePolls > 600 { throw BenchFailure("ingest stalled at \(ingested) of \(events) events") }
        }
        pipeline.waitUntilApplied()
        let ingestSeconds = max(1e-3, (ContinuousClock.now - (ingestStart ?? .now)) / .seconds(1))
        let ingestCPU = max(1e-6, processCPUSeconds() - ingestStartCPU)
        let ingestThreadCPU = ThreadCPU(pid: getpid()).since(ingestThreads)
        consumer.close()
        guard pipeline.counters.deadLetters == 0 else { throw BenchFailure("ingest found \(pipeline.counters.deadLetters) invalid events") }

        var report = BenchReport(bench: "adapt")
        let adaptRecordRate = Double(count) / adaptSeconds
        let adaptEventRate = Double(events) / adaptSeconds
        let ingestRate = Double(ingested) / ingestSeconds
        report.add("adapt_records_per_s", adaptRecordRate, "records/s")
        report.add("adapt_events_per_s", adaptEventRate, "events/s")
        report.add("ingest_events_per_s", ingestRate, "events/s")
        report.add("adapt_vs_ingest", adaptEventRate / ingestRate, "ratio")
        // The same comparison in CPU time (every thread of the process, the mock cluster's
        // included): what each side costs, whatever else the machine is running.
        let adaptCPUPerEvent = max(1e-9, adaptCPU) / Double(max(1, events))
        let ingestCPUPerEvent = ingestCPU / Double(max(1, ingested))
        report.add("adapt_process_cpu_us_per_event", adaptCPUPerEvent * 1e6, "µs")
        report.add("ingest_process_cpu_us_per_event", ingestCPUPerEvent * 1e6, "µs")
        report.add("adapt_vs_ingest_cpu", ingestCPUPerEvent / adaptCPUPerEvent, "ratio")
        // Without the mock cluster's own thread (in production that is the Kafka cluster's
        // work, not this process's): what the stage and ingest cost themselves.
        let adaptOwnPerEvent = max(1e-9, adaptThreadCPU.total - (adaptThreadCPU.seconds[MockCluster.threadName] ?? 0)) / Double(max(1, events))
        let ingestOwnPerEvent = max(1e-9, ingestThreadCPU.total - (ingestThreadCPU.seconds[MockCluster.threadName] ?? 0)) / Double(max(1, ingested))
        report.add("adapt_own_cpu_us_per_event", adaptOwnPerEvent * 1e6, "µs")
        report.add("ingest_own_cpu_us_per_event", ingestOwnPerEvent * 1e6, "µs")
        report.add("adapt_vs_ingest_own_cpu", ingestOwnPerEvent / adaptOwnPerEvent, "ratio")
        report.add("adapt_threads", Double(configuration.adaptThreads), "threads")
        // The stage's own thread (polling, merging, holding, producing, its share of adapting)
        // is the one that limits it; its CPU per record does not depend on the machine's load.
        report.add("stage_thread_cpu_us_per_record", (adaptThreadCPU.seconds["chatledger-adap"] ?? 0) / Double(max(1, count)) * 1e6, "µs")
        report.add("adapt_cpu_records_per_s", Double(sample.count) / max(1e-9, cpuSeconds), "records/s")
        report.add("adapt_cpu_events_per_s", Double(sampleEvents) / max(1e-9, cpuSeconds), "events/s")
        report.add("parse_cpu_events_per_s", Double(parsed) / max(1e-9, parseSeconds), "events/s")
        report.add("adapt_cpu_us_per_record", cpuSeconds / Double(max(1, sample.count)) * 1e6, "µs")
        report.add("adapt_mb_per_s", Double(bytes) / adaptSeconds / 1e6, "MB/s")
        report.add("records", Double(count), "records")
        report.add("events", Double(events), "events")
        report.add("dead_letters", Double(statistics.deadLetters), "records")
        report.add("skipped", Double(statistics.skippedByReason.values.reduce(0, +)), "parts")
        report.add("source_partitions", Double(traffic.topics.count * sourcePartitions), "partitions")
        report.add("adapt_startup_ms", ((first ?? started) - started) / .milliseconds(1), "ms")
        // A backlog fetched one partition's run after another's waits in the merger for the
        // slowest partition, and what waited is handed on after the last record is read,
        // by the stage's thread alone (published every 100 ms, so to about that).
        report.add("merger_peak_records", Double(statistics.mergerPeak), "records")
        report.add("after_last_record_ms", (done - (allConsumed ?? done)) / .milliseconds(1), "ms")
        report.notes.append("the stage's busiest threads: \(adaptThreadCPU.busiest(6, over: adaptSeconds))")
        report.notes.append("ingest's busiest threads: \(ingestThreadCPU.busiest(4, over: ingestSeconds))")
        report.notes.append(
            "\(format) traffic from \(traffic.deviceIds.count) instances on \(traffic.topics.count) global topics; librdkafka mock cluster in this process; ingest fsync per batch of up to 10000")
        return report
    }
}
