import EventLog
import Ingest
import KafkaClient
import LedgerSupport

/// `chatledger ingest`: Kafka → event log → projection checkpoints, until SIGINT/SIGTERM.
enum IngestCommand: Command {
    static let spec = CommandSpec(
        name: "ingest",
        synopsis: "ingest --brokers B [--topic T] [--group G] [--data DIR] [--fsync POLICY] [--kafka-config K=V,...]",
        summary: "Consume Kafka into the event log and projection checkpoints (exactly once per offset).",
        options: [
            CommandSpec.Option("brokers", "B", "Kafka bootstrap servers, host:port[,host:port].", required: true),
            .topic, .group, .data,
            CommandSpec.Option("fsync", "POLICY", "always, batch, every:MS or never.", default: "batch"),
            CommandSpec.Option(
                "kafka-config", "K=V,...",
                "Extra librdkafka properties, e.g. partition.assignment.strategy=cooperative-sticky,group.instance.id=a."),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        guard let fsync = FsyncPolicy(arguments.string("fsync") ?? "batch") else {
            throw arguments.usageError("--fsync takes always, batch, every:MS or never")
        }
        var kafka = KafkaConfiguration()
        for pair in (arguments.string("kafka-config") ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw arguments.usageError("--kafka-config takes KEY=VALUE pairs, got '\(pair)'") }
            kafka[String(parts[0])] = String(parts[1])
        }
        let signals = TerminationSignal.install()
        let service = IngestService()
        signals.onSignal { _ in service.stop() }
        let configuration = IngestService.Configuration(
            brokers: arguments.string("brokers") ?? "", group: arguments.string("group") ?? "chatledger", kafka: kafka,
            pipeline: .init(topic: arguments.string("topic") ?? "wa.device-events", fsync: fsync))
        try service.run(log: EventLog(dataDirectory: arguments.string("data") ?? "./data"), configuration: configuration)
        return 0
    }
}
