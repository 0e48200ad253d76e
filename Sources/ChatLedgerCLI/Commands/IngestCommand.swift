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
        synopsis: "ingest --brokers B [--topic T] [--group G] [--data DIR] [--fsync POLICY] [--kafka-config K=V,...] [--kafka-config-file FILE] [--attest-key FILE] [--on-broker-loss record|stop] [--retain-days N] [--retain-bytes N] [--archive-command CMD]",
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
        ] + QueryWorkerOptions.limits)

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let fsync = try IngestOptions.fsyncPolicy(arguments)
        let kafka = try IngestOptions.kafkaConfiguration(arguments)
        let signals = TerminationSignal.install()
        let service = IngestService()
        signals.onSignal { _ in service.stop() }
        let configuration = IngestService.Configuration(
            brokers: arguments.string("brokers") ?? "", group: arguments.string("group") ?? "chatledger", kafka: kafka,
            pipeline: .init(
                topic: arguments.string("topic") ?? "wa.device-events", fsync: fsync,
                attestationKey: try arguments.string("attest-key").map { try AttestationKey.read($0, arguments) },
                retention: try RetentionOptions.policy(arguments)),
            onBrokerLoss: try IngestOptions.brokerLossPolicy(arguments))
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: arguments.string("data") ?? "./data"), options: configuration.pipeline)
        var server: HTTPServer?
        if arguments.string("http") != nil {
            let metrics = QueryWorkerOptions.metrics(store: pipeline.store, log: pipeline.log, gaps: pipeline.gaps, ingest: service)
            // No keys: the device routes answer 401; the chat lists are `serve`'s job.
            let api = QueryAPI(
                store: pipeline.store, keys: KeyRing(try APIKeys(json: Array(#"{"keys":[]}"#.utf8))), metrics: metrics, isReady: { service.isCaughtUp },
                gaps: pipeline.gaps)
            let started = try QueryWorkerOptions.start(api, try QueryWorkerOptions.configuration(arguments))
            server = started.server
            print("url=\(started.url)")
            flushStandardOutput()
        }
        defer { server?.stop() }
        try service.run(pipeline: pipeline, configuration: configuration)
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
            for (key, value) in try KafkaConfiguration.properties(fromFile: file) { kafka[key] = value }
        }
        for (index, pair) in (arguments.string("kafka-config") ?? "").split(separator: ",").enumerated() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            // The item is not echoed: it may be half of a secret.
            guard parts.count == 2 else { throw arguments.usageError("--kafka-config takes KEY=VALUE pairs; item \(index + 1) has no =") }
            kafka[String(parts[0])] = String(parts[1])
        }
        return kafka
    }
}
