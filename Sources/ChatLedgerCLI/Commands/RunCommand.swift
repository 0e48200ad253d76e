#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Ingest
import KafkaClient
import LedgerSupport
import QueryWorker
import Synchronization

/// `chatledger run`: everything in one process. Without `--brokers` it starts an embedded
/// Kafka-protocol broker (librdkafka's mock cluster) and prints its address; then ingest,
/// the projection and the HTTP query worker; `--demo` feeds simulated bridge traffic.
/// `--adapt FORMAT:REGEX` runs the adapter stage (SPEC §6) for bridges publishing their
/// own format, and `--demo-format` feeds the demo through it.
/// Without `--keys` a development key `demo-key` (auditor, every device, may write) is used.
/// The write API produces to the same topic ingest consumes.
enum RunCommand: Command {
    static let spec = CommandSpec(
        name: "run", synopsis: "run [--brokers B] [--topic T] [--data DIR] [--http ADDR] [--keys FILE] [--demo [--demo-format FORMAT]] [--adapt FORMAT:REGEX ...] [--on-broker-loss record|stop]",
        summary: "Everything in one process: embedded broker unless --brokers, ingest, projections, query worker.",
        options: [
            .brokers, .topic, .data, .http, .keys, .flag("demo", "Feed realistic sample traffic (about 20 events/s)."),
            CommandSpec.Option(
                "demo-format", "FORMAT",
                "The demo's traffic: chatledger (canonical events) or a bridge format (\(BridgeFormats.names.joined(separator: ", "))), fed through its adapter.",
                default: "chatledger"),
            CommandSpec.Option(
                "adapt", "FORMAT:REGEX", "Run the adapter stage for a bridge format on every topic matching REGEX, e.g. evolution:^evolution\\..*",
                repeatable: true),
            AdaptOptions.deadLetterTopic,
            CommandSpec.Option("partitions", "N", "Partitions of the embedded broker's topic.", default: "8"),
            IngestOptions.fsync, IngestOptions.kafkaConfig, IngestOptions.kafkaConfigFile, IngestOptions.onBrokerLoss, WriteOptions.timeout,
            RetentionOptions.retainDays,
            RetentionOptions.retainBytes,
            RetentionOptions.archiveCommand,
        ] + QueryWorkerOptions.limits)

    static let demoKey = "demo-key"
    static let embeddedFetchWaitMilliseconds = 2

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let signals = TerminationSignal.install()
        let logger = Logger(label: "run")
        let topic = arguments.string("topic") ?? "wa.device-events"
        let serverConfiguration = try QueryWorkerOptions.configuration(arguments)
        let keys: APIKeys
        if let path = arguments.string("keys") {
            keys = try APIKeys.load(path: path)
        } else {
            logger.warning("no --keys: using the development key \(demoKey) (auditor, every device, may write)")
            keys = try APIKeys(json: Array(#"{"keys":[{"id":"demo","key":"\#(demoKey)","devices":["*"],"role":"auditor","write":true}]}"#.utf8))
        }
        let data = arguments.string("data") ?? "./data"
        if arguments.string("brokers") == nil, let existing = try? EventLog(dataDirectory: data).partitions(), !existing.isEmpty {
            // The embedded broker starts empty: resuming a log made against another broker would mix two histories.
            writeStandardError("chatledger run: \(data) already holds an event log, and the embedded broker starts empty; use a fresh --data, or --brokers for the Kafka that log came from\n")
            return 1
        }
        let cluster: MockCluster? =
            arguments.string("brokers") == nil
            ? try MockCluster(topics: [(topic, try arguments.integer("partitions", in: 1...1024) ?? 8)]) : nil
        let brokers = arguments.string("brokers") ?? cluster?.bootstrapServers ?? ""
        var adapters = try arguments.strings("adapt").map { try AdaptOptions.formatAndPattern($0, arguments) }
        let demoFormat = arguments.string("demo-format") ?? "chatledger"
        var demoTraffic: (any BridgeSimulation)?
        if demoFormat != "chatledger" {
            guard arguments.flag("demo") else { throw arguments.usageError("--demo-format goes with --demo") }
            guard let traffic = BridgeFormats.simulation(named: demoFormat, devices: 3, chats: 15, seed: UInt64(time(nil)), meanGapMilliseconds: 50),
                let adapter = BridgeFormats.adapter(named: demoFormat)
            else {
                throw arguments.usageError("--demo-format takes chatledger or \(BridgeFormats.names.joined(separator: ", "))")
            }
            demoTraffic = traffic
            // The embedded broker makes topics as a bridge's broker would; made up front, they
            // are found by the stage's first look instead of a metadata refresh later.
            for topic in traffic.topics { try cluster?.createTopic(topic, partitions: 1) }
            if !adapters.contains(where: { $0.adapter.format == demoFormat }) {
                adapters.append((adapter, traffic.sourcePattern))
            }
        }

        let options = IngestPipeline.Options(
            topic: topic, fsync: try IngestOptions.fsyncPolicy(arguments), retention: try RetentionOptions.policy(arguments))
        let onBrokerLoss = try IngestOptions.brokerLossPolicy(arguments)
        // The mock broker answers a fetch that finds nothing new only after fetch.wait.max.ms,
        // even when data arrives meanwhile, so that wait is the floor of produce-to-visible
        // latency against it: keep it short. Real brokers answer as soon as data arrives.
        let kafka = try IngestOptions.kafkaConfiguration(
            arguments, defaults: cluster == nil ? KafkaConfiguration() : KafkaConfiguration(["fetch.wait.max.ms": "\(embeddedFetchWaitMilliseconds)"]))
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: data), options: options)
        let store = pipeline.store
        let service = IngestService()
        let metrics = QueryWorkerOptions.metrics(store: store, log: pipeline.log, gaps: pipeline.gaps, ingest: service)
        let publisher = try WriteOptions.publisher(arguments, brokers: brokers, topic: topic, kafka: try IngestOptions.kafkaConfiguration(arguments))
        let keyRing = KeyRing(keys)
        let keyReloader = arguments.string("keys").map { KeyFileReloader(path: $0, ring: keyRing) }
        keyReloader?.start(signals: signals, metrics: metrics)
        defer { keyReloader?.stop() }
        let api = QueryAPI(
            store: store, keys: keyRing, metrics: metrics, audit: AuditLog(dataDirectory: data, topic: topic), publisher: publisher,
            isReady: { service.isCaughtUp },
            source: { SourceStatus(kind: .kafka, endOffsets: service.statistics.partitions.compactMapValues { $0.highWatermark }) },
            gaps: pipeline.gaps)
        let (server, url) = try QueryWorkerOptions.start(api, serverConfiguration)
        pipeline.onBatchApplied = { server.wake() }  // parked queries and change streams look again

        // Whatever ends first (a signal, ingest failing) wakes the main thread.
        let finished = Semaphore()
        let failed = Atomic<Bool>(false)
        signals.onSignal { _ in finished.signal() }
        let handoff = PipelineHandoff(pipeline)
        let ingest = Thread {
            do {
                try service.run(
                    pipeline: handoff.pipeline,
                    configuration: .init(brokers: brokers, group: "chatledger-run", kafka: kafka, pipeline: options, onBrokerLoss: onBrokerLoss))
            } catch {
                Logger(label: "run").error("ingest stopped", ["error": error])
                failed.store(true, ordering: .releasing)
            }
            finished.signal()
        }
        ingest.start()
        // The adapter stages: a bridge's topics → canonical events on `topic`, which ingest reads.
        let stages = adapters.map { _ in AdapterStage() }
        var stageThreads: [LedgerSupport.Thread] = []
        for (index, (adapter, pattern)) in adapters.enumerated() {
            let stage = stages[index]
            let configuration = AdapterStage.Configuration(
                brokers: brokers, group: "chatledger-run-adapt-\(adapter.format)-\(index)", sourceTopics: [pattern], topic: topic,
                deadLetterTopic: arguments.string("dead-letter-topic") ?? AdaptOptions.defaultDeadLetterTopic,
                kafka: try IngestOptions.kafkaConfiguration(
                    arguments,
                    defaults: cluster == nil
                        ? KafkaConfiguration()
                        : KafkaConfiguration(["fetch.wait.max.ms": "\(embeddedFetchWaitMilliseconds)"])))
            let thread = Thread {
                do {
                    try stage.run(adapter: adapter, configuration: configuration)
                } catch {
                    Logger(label: "run").error("adapter stage stopped", ["format": adapter.format, "error": error])
                    failed.store(true, ordering: .releasing)
                    finished.signal()
                }
            }
            thread.start()
            stageThreads.append(thread)
        }
        AdapterStage.registerMetrics(zip(adapters, stages).map { ($0.0.adapter.format, $0.1) }, in: metrics)
        let demo = arguments.flag("demo") ? DemoTraffic(brokers: brokers, topic: topic, evolution: demoTraffic) : nil
        demo?.start()

        if let cluster { print("bootstrap=\(cluster.bootstrapServers)") }
        print("url=\(url)")
        print("try: curl -s -H 'x-api-key: \(arguments.string("keys") == nil ? demoKey : "YOUR-KEY")' \(url)/api/v1/devices")
        print("console: open \(url)/ in a browser")
        flushStandardOutput()

        finished.wait()
        demo?.stop()
        for stage in stages { stage.stop() }
        for thread in stageThreads { thread.join() }
        service.stop()
        ingest.join()
        server.stop()
        publisher.close()
        withExtendedLifetime(cluster) {}
        return failed.load(ordering: .acquiring) ? 1 : 0
    }
}

/// Hands the pipeline to the ingest thread.
private final class PipelineHandoff: @unchecked Sendable {
    // SAFETY: after the handoff only the ingest thread touches the pipeline; the main
    // thread keeps only its `store`, which is `Sendable`.
    let pipeline: IngestPipeline

    init(_ pipeline: IngestPipeline) { self.pipeline = pipeline }
}

/// Simulated bridge traffic for `run --demo`, on its own thread, about 20 events/s:
/// canonical events on `topic`, or a bridge format's records on its own topics.
private final class DemoTraffic: Sendable {
    private let brokers: String
    private let topic: String
    private let evolution: (any BridgeSimulation)?
    private let stopping = Atomic<Bool>(false)
    private let done = Semaphore()

    init(brokers: String, topic: String, evolution: (any BridgeSimulation)? = nil) {
        self.brokers = brokers
        self.topic = topic
        self.evolution = evolution
    }

    func start() {
        Thread { [self] in
            defer { done.signal() }
            guard let producer = try? KafkaProducer(bootstrapServers: brokers) else { return }
            var model = TrafficModel(.init(devices: 10, chatsPerDevice: 30, seed: UInt64(time(nil))))
            var bridge = evolution
            while !stopping.load(ordering: .acquiring) {
                if var traffic = bridge {
                    let record = traffic.next()
                    bridge = traffic
                    try? producer.send(topic: record.topic, key: record.key, value: record.value)
                } else {
                    let event = model.next().event
                    try? producer.send(topic: topic, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event))
                }
                producer.poll()
                usleep(50_000)  // the demo's rate, about 20 events/s
            }
            try? producer.flush(timeoutMilliseconds: 5_000)
        }.start()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        done.wait()
    }
}
