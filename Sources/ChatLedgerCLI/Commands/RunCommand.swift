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
/// `--adapt FORMAT:REGEX` runs the adapter stage (README, "Bridge adapters") for bridges publishing their
/// own format, and `--demo-format` feeds the demo through it.
/// Without `--keys` a development key `demo-key` (auditor, every device, may write) is used.
/// The write API produces to the same topic ingest consumes.
enum RunCommand: Command {
    /// The consumer group `run`'s ingest joins (and so its cluster, in cluster mode).
    static let ingestGroup = "chatledger-run"

    static let spec = CommandSpec(
        name: "run", synopsis: "run [--brokers B] [--topic T] [--data DIR] [--http ADDR] [--keys FILE] [--demo [--demo-format FORMAT]] [--adapt FORMAT:REGEX ...] [--on-broker-loss record|stop] [--advertise URL [--standby N]]",
        summary: "Everything in one process: embedded broker unless --brokers, ingest, projections, query worker.",
        options: [
            .brokers, .topic, .data, .http, .keys, .flag("demo", "Feed realistic sample traffic (about 20 events/s)."),
            demoFormatOption,
            CommandSpec.Option(
                "adapt", "FORMAT:REGEX", "Run the adapter stage for a bridge format on every topic matching REGEX, e.g. evolution:^evolution\\..*",
                repeatable: true),
            AdaptOptions.deadLetterTopic, AdaptOptions.adaptThreads,
            CommandSpec.Option("partitions", "N", "Partitions of the embedded broker's topic.", default: "8"),
            IngestOptions.fsync, IngestOptions.kafkaConfig, IngestOptions.kafkaConfigFile, IngestOptions.onBrokerLoss, WriteOptions.timeout,
            RetentionOptions.retainDays,
            RetentionOptions.retainBytes,
            RetentionOptions.archiveCommand,
            ClusterOptions.advertise,
            StandbyReplicas.option,
        ] + QueryWorkerOptions.limits)

    static let demoFormatOption = CommandSpec.Option(
        "demo-format", "FORMAT",
        "The demo's traffic: chatledger (canonical events) or a bridge format (\(BridgeFormats.names.joined(separator: ", "))), fed through its adapter.",
        default: "chatledger")
    static let demoKey = "demo-key"
    static let embeddedFetchWaitMilliseconds = 2
    /// The consumer groups' session timeout against the embedded broker (the least it takes).
    static let embeddedSessionTimeoutMilliseconds = 6_000

    /// What `run` runs with, read from its flags.
    struct Configuration {
        var topic: String
        var data: String
        /// nil: the development key `demoKey`.
        var keysPath: String?
        var http: HTTPServer.Configuration
        /// nil: an embedded broker with `partitions` partitions.
        var brokers: String?
        var partitions: Int
        var demo: Bool
        var demoFormat: String
        var adapters: [(adapter: any BridgeAdapter, pattern: String)]
        var deadLetterTopic: String
        /// `--adapt-threads`: per adapter stage.
        var adaptThreads: Int
        var fsync: FsyncPolicy
        var onBrokerLoss: BrokerLossPolicy
        /// `--kafka-config` and `--kafka-config-file`, over no defaults.
        var kafka: KafkaConfiguration
        var writeTimeoutMilliseconds: Int
        var retention: RetentionPolicy
        /// Cluster mode: this instance's `--advertise` URL.
        var advertise: String?
        /// Cluster mode: standby replicas per partition (`--standby`), 0 for none.
        var standby: Int

        init(_ arguments: ParsedArguments) throws {
            topic = arguments.value(.topic)
            data = arguments.value(.data)
            keysPath = arguments.string("keys")
            http = try QueryWorkerOptions.configuration(arguments)
            brokers = arguments.string("brokers")
            partitions = try arguments.integer("partitions", in: 1...1024) ?? 8
            demo = arguments.flag("demo")
            demoFormat = arguments.value(demoFormatOption)
            adapters = try arguments.strings("adapt").map { try AdaptOptions.formatAndPattern($0, arguments) }
            deadLetterTopic = arguments.value(AdaptOptions.deadLetterTopic)
            for (_, pattern) in adapters {
                try AdaptOptions.checkOwnTopics(pattern, canonical: topic, deadLetter: deadLetterTopic, arguments)
            }
            adaptThreads = try AdaptOptions.threads(arguments)
            fsync = try IngestOptions.fsyncPolicy(arguments)
            onBrokerLoss = try IngestOptions.brokerLossPolicy(arguments)
            kafka = try IngestOptions.kafkaConfiguration(arguments)
            writeTimeoutMilliseconds = try WriteOptions.timeoutMilliseconds(arguments)
            retention = try RetentionOptions.policy(arguments)
            advertise = try ClusterOptions.url(arguments)
            standby = try StandbyReplicas.count(arguments, advertise: advertise)
            if demoFormat != "chatledger" {
                guard demo else { throw arguments.usageError("--demo-format goes with --demo") }
                guard BridgeFormats.adapter(named: demoFormat) != nil else {
                    throw arguments.usageError("--demo-format takes chatledger or \(BridgeFormats.names.joined(separator: ", "))")
                }
            }
        }
    }

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let signals = TerminationSignal.install()
        return try run(Configuration(arguments), signals: signals)
    }

    /// Hosts the key reloader, the HTTP server, ingest, the adapter stages and the demo
    /// producer (started in that order, stopped in reverse) until a signal or a failure.
    static func run(_ configuration: Configuration, signals: TerminationSignal) throws -> Int32 {
        let logger = Logger(label: "run")
        let topic = configuration.topic
        let keys: APIKeys
        var keysFingerprint: [Int]?
        if let path = configuration.keysPath {
            (keys, keysFingerprint) = try KeyFileReloader.load(path: path)
        } else {
            logger.warning("no --keys: using the development key \(demoKey) (auditor, every device, may write)")
            keys = try APIKeys(json: Array(#"{"keys":[{"id":"demo","key":"\#(demoKey)","devices":["*"],"role":"auditor","write":true}]}"#.utf8))
        }
        let data = configuration.data
        if configuration.brokers == nil, let existing = try? EventLog(dataDirectory: data).partitions(), !existing.isEmpty {
            // The embedded broker starts empty: resuming a log made against another broker would mix two histories.
            writeStandardError("chatledger run: \(data) already holds an event log, and the embedded broker starts empty; use a fresh --data, or --brokers for the Kafka that log came from\n")
            return 1
        }
        let cluster: MockCluster? = configuration.brokers == nil ? try MockCluster(topics: [(topic, configuration.partitions)]) : nil
        if configuration.advertise != nil { try cluster?.createTopic(ClusterMembership.topic(for: topic), partitions: 1) }
        let brokers = configuration.brokers ?? cluster?.bootstrapServers ?? ""
        var adapters = configuration.adapters
        var demoTraffic: (any BridgeSimulation)?
        if configuration.demoFormat != "chatledger",
            let traffic = BridgeFormats.simulation(
                named: configuration.demoFormat, devices: 3, chats: 15, seed: UInt64(time(nil)), meanGapMilliseconds: 50),
            let adapter = BridgeFormats.adapter(named: configuration.demoFormat)
        {
            demoTraffic = traffic
            // The embedded broker makes topics as a bridge's broker would; made up front, they
            // are found by the stage's first look instead of a metadata refresh later.
            for topic in traffic.topics { try cluster?.createTopic(topic, partitions: 1) }
            if !adapters.contains(where: { $0.adapter.format == configuration.demoFormat }) {
                adapters.append((adapter, traffic.sourcePattern))
            }
        }

        let options = IngestPipeline.Options(topic: topic, fsync: configuration.fsync, retention: configuration.retention)
        // The mock broker answers a fetch that finds nothing new only after fetch.wait.max.ms,
        // even when data arrives meanwhile, so that wait is the floor of produce-to-visible
        // latency against it: keep it short. Real brokers answer as soon as data arrives.
        var kafka = configuration.kafka
        if cluster != nil, kafka["fetch.wait.max.ms"] == nil { kafka["fetch.wait.max.ms"] = "\(embeddedFetchWaitMilliseconds)" }
        // The mock broker finishes a rebalance of a running group only after the session
        // timeout less a second, even once every member has rejoined: with the default 45 s,
        // each new bridge topic (Evolution makes one per instance and event type) stalled
        // every adapter stage for 44 s. Its groups run in this process: a short timeout is safe.
        if cluster != nil, kafka["session.timeout.ms"] == nil {
            kafka["session.timeout.ms"] = "\(embeddedSessionTimeoutMilliseconds)"
            if kafka["heartbeat.interval.ms"] == nil { kafka["heartbeat.interval.ms"] = "1000" }
        }
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: data), options: options)
        let store = pipeline.store
        let gaps = pipeline.gaps
        let ingest = IngestService()
        let metrics = QueryWorkerOptions.metrics(store: store, log: pipeline.log, gaps: gaps, ingest: ingest)
        let publisher = try KafkaEventPublisher(
            brokers: brokers, topic: topic, timeoutMilliseconds: configuration.writeTimeoutMilliseconds, kafka: configuration.kafka)
        defer { publisher.close() }
        let keyRing = KeyRing(keys)
        let clustered = try configuration.advertise.map { url in
            try ClusterOptions.start(
                brokers: brokers, topic: topic, kafka: configuration.kafka, url: url, group: Self.ingestGroup, writes: true, metrics: metrics)
        }
        defer { clustered?.router.stop() }
        let api = QueryAPI(
            store: store, keys: keyRing, metrics: metrics, audit: AuditLog(dataDirectory: data, topic: topic), publisher: publisher,
            isReady: { ingest.isCaughtUp },
            source: { SourceStatus(kind: .kafka, endOffsets: ingest.statistics.partitions.compactMapValues { $0.highWatermark }) },
            gaps: gaps, cluster: clustered?.router)
        let http = HTTPService(api: api, configuration: configuration.http)
        pipeline.onBatchApplied = { http.server.wake() }  // parked queries and change streams look again
        clustered?.router.wakeServer { http.server.wake() }

        var services: [any Service] = []
        if let path = configuration.keysPath { services.append(KeyFileReloader.service(path: path, ring: keyRing, fingerprintAtLoad: keysFingerprint, signals: signals, metrics: metrics)) }
        if let clustered { services.append(clustered.membership) }  // read before serving, stopped after ingest's last write
        let standby = try clustered.flatMap { clustered in
            try configuration.standby > 0
                ? StandbyReplicas.start(
                    data: data, brokers: brokers, topic: topic, kafka: kafka, fsync: configuration.fsync,
                    ownership: clustered.membership.ownership, me: clustered.membership.advertise, replicas: configuration.standby,
                    retention: configuration.retention, metrics: metrics)
                : nil
        }
        if let standby { services.append(standby.service) }
        services.append(http)
        var clusteredIngest = IngestService.Configuration(
            brokers: brokers, group: Self.ingestGroup, kafka: kafka, pipeline: options, onBrokerLoss: configuration.onBrokerLoss)
        clusteredIngest.ownership = clustered?.membership
        clusteredIngest.standby = standby?.follower
        let ingestConfiguration = clusteredIngest
        services.append(
            ThreadService(name: "ingest", threadName: "chatledger-ingest", halt: { ingest.stop() }) {
                try ingest.run(pipeline: pipeline, configuration: ingestConfiguration)  // the pipeline is the ingest thread's from here
            })
        // The adapter stages: a bridge's topics → canonical events on `topic`, which ingest reads.
        let stages = adapters.map { _ in AdapterStage() }
        for (index, (adapter, pattern)) in adapters.enumerated() {
            let stage = stages[index]
            let stageConfiguration = AdapterStage.Configuration(
                brokers: brokers, group: "chatledger-run-adapt-\(adapter.format)-\(index)", sourceTopics: [pattern], topic: topic,
                deadLetterTopic: configuration.deadLetterTopic, kafka: kafka, adaptThreads: configuration.adaptThreads)
            services.append(
                ThreadService(name: "adapt-\(adapter.format)", threadName: "chatledger-adapt", halt: { stage.stop() }) {
                    try stage.run(adapter: adapter, configuration: stageConfiguration)
                })
        }
        AdapterStage.registerMetrics(zip(adapters, stages).map { ($0.0.adapter.format, $0.1) }, in: metrics)
        if configuration.demo { services.append(DemoTraffic.service(brokers: brokers, topic: topic, evolution: demoTraffic)) }

        let group = ServiceGroup(services)
        try group.start()
        if let cluster { print("bootstrap=\(cluster.bootstrapServers)") }
        print("url=\(http.url)")
        print("try: curl -s -H 'x-api-key: \(configuration.keysPath == nil ? demoKey : "YOUR-KEY")' \(http.url)/api/v1/devices")
        print("console: open \(http.url)/ in a browser")
        flushStandardOutput()

        try group.runUntilShutdown(signals: signals)  // a failed service is thrown: logged, exit 1
        withExtendedLifetime(cluster) {}
        return 0
    }
}

/// Simulated bridge traffic for `run --demo`, about 20 events/s: canonical events on
/// `topic`, or a bridge format's records on its own topics.
final class DemoTraffic: Sendable {
    private let stopping = Atomic<Bool>(false)

    /// The producer as a service on its own thread.
    static func service(brokers: String, topic: String, evolution: (any BridgeSimulation)?) -> ThreadService {
        let demo = DemoTraffic()
        return ThreadService(name: "demo", threadName: "chatledger-demo", halt: { demo.stopping.store(true, ordering: .releasing) }) {
            guard let producer = try? KafkaProducer(bootstrapServers: brokers) else { return }
            var model = TrafficModel(.init(devices: 10, chatsPerDevice: 30, seed: UInt64(time(nil))))
            var bridge = evolution
            while !demo.stopping.load(ordering: .acquiring) {
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
        }
    }
}
