import ChatProjection
import EventLog
import Foundation
import Ingest
import QueryWorker
import KafkaClient
import LedgerSupport

/// `chatledger ingest`: Kafka → event log → projection checkpoints, until SIGINT/SIGTERM.
enum IngestCommand: Command {
    static let spec = CommandSpec(
        name: "ingest",
        synopsis: "ingest --brokers B [--topic T] [--group G] [--data DIR] [--fsync POLICY] [--kafka-config K=V,...] [--kafka-config-file FILE] [--attest-key FILE] [--on-broker-loss record|stop] [--retain-days N] [--retain-bytes N] [--archive-command CMD] [--advertise URL [--standby N]]",
        summary: "Consume Kafka into the event log and projection checkpoints (exactly once per offset).",
        options: [
            CommandSpec.Option("brokers", "B", "Kafka bootstrap servers, host:port[,host:port].", required: true),
            .topic, .group, .data,
            IngestOptions.fsync, IngestOptions.kafkaConfig, IngestOptions.kafkaConfigFile, IngestOptions.onBrokerLoss,
            RetentionOptions.retainDays,
            RetentionOptions.retainBytes,
            RetentionOptions.archiveCommand,
            CommandSpec.Option("attest-key", "FILE", "Attest every checkpoint with HMAC-SHA256 under the key in FILE."),
            CommandSpec.Option("http", "ADDR", "Serve /healthz, /readyz (caught up with Kafka) and /metrics here (chat lists: serve)."),
            CommandSpec.Option(
                "advertise", "URL",
                "Cluster mode: the http://HOST:PORT of the serve that follows this data directory; ingest publishes the partitions it owns under it."),
            StandbyReplicas.option,
        ] + QueryWorkerOptions.limits)

    /// What `ingest` runs with, read from its flags.
    struct Configuration {
        var data: String
        var ingest: IngestService.Configuration
        /// Where to serve `/healthz`, `/readyz` and `/metrics`; nil: no HTTP.
        var http: HTTPServer.Configuration?
        /// Cluster mode: the URL of the `serve` next to this ingest.
        var advertise: String?
        /// Cluster mode: standby replicas per partition (`--standby`), 0 for none.
        var standby: Int

        init(_ arguments: ParsedArguments) throws {
            let fsync = try IngestOptions.fsyncPolicy(arguments)
            let kafka = try IngestOptions.kafkaConfiguration(arguments)
            data = arguments.value(.data)
            ingest = IngestService.Configuration(
                brokers: arguments.string("brokers") ?? "", group: arguments.value(.group), kafka: kafka,
                pipeline: .init(
                    topic: arguments.value(.topic), fsync: fsync,
                    attestationKey: try arguments.string("attest-key").map { try AttestationKey.read($0, arguments) },
                    retention: try RetentionOptions.policy(arguments)),
                onBrokerLoss: try IngestOptions.brokerLossPolicy(arguments))
            http = arguments.string("http") == nil ? nil : try QueryWorkerOptions.configuration(arguments)
            advertise = try ClusterOptions.url(arguments)
            standby = try StandbyReplicas.count(arguments, advertise: advertise)
        }
    }

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let configuration = try Configuration(arguments)
        return try ingest(configuration, signals: TerminationSignal.install())
    }

    /// Hosts the HTTP server (with `--http`) and ingest, stopped in reverse order, until a
    /// signal or a failure.
    static func ingest(_ configuration: Configuration, signals: TerminationSignal) throws -> Int32 {
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: configuration.data), options: configuration.ingest.pipeline)
        let ingest = IngestService()
        var services: [any Service] = []
        var http: HTTPService?
        let metrics = QueryWorkerOptions.metrics(store: pipeline.store, log: pipeline.log, gaps: pipeline.gaps, ingest: ingest)
        if let httpConfiguration = configuration.http {
            // No keys: the device routes answer 401; the chat lists are `serve`'s job.
            let api = QueryAPI(
                store: pipeline.store, keys: KeyRing(APIKeys.none), metrics: metrics,
                isReady: { ingest.isCaughtUp }, gaps: pipeline.gaps)
            let server = HTTPService(api: api, configuration: httpConfiguration)
            services.append(server)
            http = server
        }
        var clusteredIngest = configuration.ingest
        if let url = configuration.advertise {
            let membership = try ClusterMembership(
                brokers: clusteredIngest.brokers, topic: clusteredIngest.pipeline.topic, kafka: clusteredIngest.kafka, advertise: url,
                group: clusteredIngest.group)
            services.append(membership)  // started before ingest writes to it, stopped after its last write
            clusteredIngest.ownership = membership
            if configuration.standby > 0 {
                let standby = try StandbyReplicas.start(
                    data: configuration.data, brokers: clusteredIngest.brokers, topic: clusteredIngest.pipeline.topic,
                    kafka: clusteredIngest.kafka, fsync: clusteredIngest.pipeline.fsync, ownership: membership.ownership, me: url,
                    replicas: configuration.standby, retention: clusteredIngest.pipeline.retention, metrics: metrics)
                services.append(standby.service)
                clusteredIngest.standby = standby.follower
            }
        }
        let ingestConfiguration = clusteredIngest
        services.append(
            ThreadService(name: "ingest", threadName: "chatledger-ingest", halt: { ingest.stop() }) {
                try ingest.run(pipeline: pipeline, configuration: ingestConfiguration)  // the pipeline is the ingest thread's from here
            })
        let group = ServiceGroup(services)
        try group.start()
        if let http {
            print("url=\(http.url)")
            flushStandardOutput()
        }
        try group.runUntilShutdown(signals: signals)  // a failed service is thrown: logged, exit 1
        return 0
    }
}

/// Reads an attestation key file: its bytes, without trailing whitespace.
enum AttestationKey {
    static func read(_ path: String, _ arguments: ParsedArguments) throws -> [UInt8] {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw arguments.usageError("cannot read the key file \(path)")
        }
        var key = Array(contents)
        while let last = key.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { key.removeLast() }
        guard !key.isEmpty else { throw arguments.usageError("the key file \(path) is empty") }
        return key
    }
}

/// The ingest options `ingest` and `run` share.
enum IngestOptions {
    static let fsync = CommandSpec.Option("fsync", "POLICY", "always, batch, every:MS or never.", default: "batch")
    static let kafkaConfig = CommandSpec.Option(
        "kafka-config", "K=V,...",
        "Extra librdkafka properties, e.g. partition.assignment.strategy=cooperative-sticky,group.instance.id=a.")

    static let kafkaConfigFile = CommandSpec.Option(
        "kafka-config-file", "FILE",
        "librdkafka properties, one key=value per line (as kcat -F reads), under --kafka-config; also CHATLEDGER_KAFKA_CONFIG_FILE. Keeps credentials out of argv; values are never printed.")

    static let onBrokerLoss = CommandSpec.Option(
        "on-broker-loss", "POLICY",
        "When the broker no longer has records not yet read: record (a gap record in the log, then on) or stop (exit 1 naming them).",
        default: BrokerLossPolicy.record.rawValue)

    static func brokerLossPolicy(_ arguments: ParsedArguments) throws -> BrokerLossPolicy {
        guard let policy = BrokerLossPolicy(rawValue: arguments.string("on-broker-loss") ?? BrokerLossPolicy.record.rawValue) else {
            throw arguments.usageError("--on-broker-loss takes record or stop")
        }
        return policy
    }

    static func fsyncPolicy(_ arguments: ParsedArguments) throws -> FsyncPolicy {
        guard let policy = FsyncPolicy(arguments.string("fsync") ?? "batch") else {
            throw arguments.usageError("--fsync takes always, batch, every:MS or never")
        }
        return policy
    }

    /// `--kafka-config-file` (or `CHATLEDGER_KAFKA_CONFIG_FILE`), then `--kafka-config`,
    /// applied over `defaults`.
    static func kafkaConfiguration(_ arguments: ParsedArguments, defaults: KafkaConfiguration = KafkaConfiguration()) throws -> KafkaConfiguration {
        var kafka = defaults
        let file = arguments.string("kafka-config-file") ?? ProcessInfo.processInfo.environment["CHATLEDGER_KAFKA_CONFIG_FILE"]
        if let file, !file.isEmpty {
            for (key, value) in try KafkaConfiguration.properties(fromFile: file) {
                kafka[key] = value
                // SPEC §11: the file's values are never printed (the brokers' addresses aside:
                // no secret, and what every connection message names).
                if !["bootstrap.servers", "metadata.broker.list"].contains(key) { KafkaConfiguration.neverPrint(value) }
            }
        }
        for (index, pair) in (arguments.string("kafka-config") ?? "").split(separator: ",").enumerated() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            // The item is not echoed: it may be half of a secret.
            guard parts.count == 2 else { throw arguments.usageError("--kafka-config takes KEY=VALUE pairs; item \(index + 1) has no =") }
            kafka[String(parts[0])] = String(parts[1])
            if KafkaConfiguration.holdsCredentials(String(parts[0])) { KafkaConfiguration.neverPrint(String(parts[1])) }
        }
        return kafka
    }
}
