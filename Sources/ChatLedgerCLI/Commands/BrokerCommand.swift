import KafkaClient
import LedgerSupport

/// `chatledger broker`: librdkafka's mock cluster as a stand-alone Kafka-protocol broker,
/// so a user without Kafka can produce and consume (with `chatledger produce`, kcat, a bridge).
enum BrokerCommand: Command {
    static let spec = CommandSpec(
        name: "broker", synopsis: "broker [--topic T] [--partitions N] [--broker-count N]",
        summary: "Start an embedded Kafka-protocol broker (librdkafka's mock cluster) and print its address.",
        options: [
            .topic,
            CommandSpec.Option("partitions", "N", "Partitions of the topic.", default: "8"),
            CommandSpec.Option("broker-count", "N", "Brokers in the cluster.", default: "1"),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let signals = TerminationSignal.install()
        let topic = arguments.value(.topic)
        let partitions = try arguments.integer("partitions", in: 1...1024) ?? 8
        let brokerCount = try arguments.integer("broker-count", in: 1...16) ?? 1
        // With the membership topic of cluster mode (`--advertise`, SPEC §9): one partition.
        let cluster = try MockCluster(brokerCount: brokerCount, topics: [(topic, partitions), (topic + ".members", 1)])
        // First line of stdout: the address, for scripts (`read`) and people alike.
        print("bootstrap=\(cluster.bootstrapServers) topic=\(topic) partitions=\(partitions)")
        flushStandardOutput()
        let logger = Logger(label: "broker")
        logger.notice(
            "embedded broker ready; in-memory only, keeps at most 5 MiB or 100000 message sets per partition",
            ["bootstrap": cluster.bootstrapServers, "topic": topic, "partitions": partitions])
        let signal = signals.wait()
        logger.notice("stopping", ["signal": signal])
        return 0
    }
}
