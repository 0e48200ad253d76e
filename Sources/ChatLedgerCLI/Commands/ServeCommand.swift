import ChatEvents
import ChatProjection
import EventLog
import KafkaClient
import LedgerSupport
import QueryWorker

/// `chatledger serve`: the query worker as its own process. It loads the newest
/// checkpoint `ingest` wrote, then follows the event log `ingest` appends to (woken by
/// inotify), folds it into its own projection and serves the API. Ready once it has read
/// everything the log holds. With `--brokers` it also serves the write API, producing to
/// the topic ingest consumes (without, the write routes answer 501).
enum ServeCommand: Command {
    static let spec = CommandSpec(
        name: "serve", synopsis: "serve [--data DIR] [--http ADDR] --keys FILE [--topic T] [--brokers B [--advertise URL]]",
        summary: "The query worker: follow the log that ingest writes and serve chat lists over HTTP.",
        options: [
            .data, .http, .topic,
            CommandSpec.Option("keys", "FILE", "API keys file (JSON, see README).", required: true),
            CommandSpec.Option("brokers", "B", "Kafka bootstrap servers for the write API (its routes answer 501 without)."),
            CommandSpec.Option("kafka-config", "K=V,...", "Extra librdkafka properties for the write API's producer."),
            IngestOptions.kafkaConfigFile,
            WriteOptions.timeout,
            CommandSpec.Option(
                "advertise", "URL",
                "Cluster mode (needs --brokers): this serve's http://HOST:PORT, as the ingest writing --data advertises it; device routes owned elsewhere are forwarded."),
            CommandSpec.Option(
                "group", "G", "Cluster mode: the consumer group of the ingest writing --data (its cluster's membership is followed).",
                default: "chatledger"),
        ] + QueryWorkerOptions.limits)

    /// What `serve` runs with, read from its flags.
    struct Configuration {
        var data: String
        var topic: String
        var keysPath: String
        var http: HTTPServer.Configuration
        /// The write API's producer; nil without `--brokers` (its routes answer 501).
        var writeAPI: WriteOptions.Configuration?
        /// Cluster mode: this instance's URL, and the Kafka its membership topic is on.
        var cluster: (url: String, brokers: String, kafka: KafkaConfiguration, group: String)?

        init(_ arguments: ParsedArguments) throws {
            data = arguments.value(.data)
            topic = arguments.value(.topic)
            keysPath = arguments.string("keys") ?? ""
            http = try QueryWorkerOptions.configuration(arguments)
            writeAPI = try arguments.string("brokers").map { brokers in
                try WriteOptions.Configuration(arguments, brokers: brokers, topic: arguments.value(.topic))
            }
            if let url = try ClusterOptions.url(arguments) {
                guard let brokers = arguments.string("brokers") else { throw arguments.usageError("--advertise needs --brokers (the membership topic is on Kafka)") }
                cluster = (url, brokers, try IngestOptions.kafkaConfiguration(arguments), arguments.string("group") ?? "chatledger")
            }
        }
    }

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let signals = TerminationSignal.install()
        return try serve(Configuration(arguments), signals: signals)
    }

    /// Loads the projection, then hosts the key reloader, the HTTP server and the log
    /// follower (started in that order, stopped in reverse) until a signal or a failure.
    static func serve(_ configuration: Configuration, signals: TerminationSignal) throws -> Int32 {
        let loadedKeys = try KeyFileReloader.load(path: configuration.keysPath)
        let keys = KeyRing(loadedKeys.keys)
        let log = EventLog(dataDirectory: configuration.data)
        var loaded = try ProjectionRecovery.load(
            log: log, topic: configuration.topic, checkpoints: CheckpointStore(dataDirectory: configuration.data))
        // An erasure after the checkpoint (ingest's own checkpoint after it not yet written):
        // its device as ingest refolds it, not only the fold's drop.
        try ErasureRefold.refoldErasedDevices(
            in: &loaded.state, log: log, topic: configuration.topic, after: loaded.checkpoint?.positions ?? [:])
        let store = ProjectionStore(loaded.state)
        let gaps = try GapRegister(log: log, topic: configuration.topic)
        let metrics = QueryWorkerOptions.metrics(store: store, log: log, gaps: gaps)
        let publisher = try configuration.writeAPI.map { try $0.publisher() }
        defer { publisher?.close() }
        let follower = ProjectionFollower(log: log, topic: configuration.topic, store: store, gaps: gaps)
        let clustered = try configuration.cluster.map { cluster in
            try ClusterOptions.start(
                brokers: cluster.brokers, topic: configuration.topic, kafka: cluster.kafka, url: cluster.url, group: cluster.group, writes: false,
                metrics: metrics)
        }
        defer { clustered?.router.stop() }
        let api = QueryAPI(
            store: store, keys: keys, metrics: metrics, audit: AuditLog(dataDirectory: configuration.data, topic: configuration.topic),
            publisher: publisher, isReady: { follower.isCaughtUp },
            source: { SourceStatus(kind: .log, endOffsets: follower.endOffsets) }, gaps: gaps, cluster: clustered?.router)
        let http = HTTPService(api: api, configuration: configuration.http)
        follower.onApplied { http.server.wake() }
        clustered?.router.wakeServer { http.server.wake() }
        let services = ServiceGroup(
            [KeyFileReloader.service(
                path: configuration.keysPath, ring: keys, fingerprintAtLoad: loadedKeys.fingerprint, signals: signals, metrics: metrics)]
                + (clustered.map { [$0.membership] } ?? []) + [http, follower])
        try services.start()
        print("url=\(http.url)")
        flushStandardOutput()
        Logger(label: "serve").info("serving", ["url": http.url, "devices": loaded.state.devices.count])
        try services.runUntilShutdown(signals: signals)  // a failed service is thrown: logged, exit 1
        return 0
    }
}
