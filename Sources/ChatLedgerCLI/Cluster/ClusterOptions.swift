import KafkaClient
import LedgerSupport
import QueryWorker

/// The cluster-mode options of `run`, `ingest` and `serve` (SPEC §9), and putting cluster
/// mode together from them.
enum ClusterOptions {
    static let advertise = CommandSpec.Option(
        "advertise", "URL",
        "Cluster mode: the http://HOST:PORT other instances reach this one at. Every instance then answers every device, forwarding to the partition's owner.")

    /// `--advertise`, checked; nil without it.
    static func url(_ arguments: ParsedArguments) throws -> String? {
        guard let text = arguments.string("advertise") else { return nil }
        guard let address = InstanceAddress(text) else { throw arguments.usageError("--advertise takes http://HOST:PORT, e.g. http://10.0.0.7:8080") }
        return address.description
    }

    /// Membership (read, and written by ingest through it when `writes`) and the router of
    /// an instance advertising `url`, with their metrics in `metrics`.
    static func start(
        brokers: String, topic: String, kafka: KafkaConfiguration, url: String, group: String, writes: Bool, metrics: MetricsRegistry
    ) throws -> (membership: ClusterMembership, router: ClusterRouter) {
        let membership = try ClusterMembership(brokers: brokers, topic: topic, kafka: kafka, advertise: url, group: group)
        let router = ClusterRouter(
            ownership: membership.ownership, identity: .init(url: url, incarnation: writes ? membership.incarnation : nil))
        router.registerMetrics(in: metrics)
        Logger(label: "cluster").notice(
            "cluster mode",
            ["advertise": url, "membership_topic": ClusterMembership.topic(for: topic), "group": group, "partitions": membership.partitions])
        return (membership, router)
    }
}
