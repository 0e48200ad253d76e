import EventLog
import Ingest
import KafkaClient
import LedgerSupport
import QueryWorker

/// Which partitions an instance follows as a standby replica (`--standby N`, SPEC §9):
/// with the members (every instance the ownership table names, and this one) sorted by
/// URL, the standbys of a partition are the N members after its owner, cyclically; an
/// instance follows the partitions it is a standby of and does not own.
package enum StandbyReplicas {
    static let option = CommandSpec.Option(
        "standby", "N",
        "Cluster mode (with --advertise): follow the partitions of the N instances after this one (by URL) into DATA/standby, so a takeover imports them locally and asks Kafka only for the tail.",
        default: "0")

    /// `--standby`, checked: 0 without it; more than 0 only with `--advertise`.
    static func count(_ arguments: ParsedArguments, advertise: String?) throws -> Int {
        let count = try arguments.integer("standby", in: 0...16) ?? 0
        if count > 0, advertise == nil { throw arguments.usageError("--standby goes with --advertise (cluster mode)") }
        return count
    }

    /// The partitions `me` follows as a standby under `owners`.
    package static func partitions(owners: [Int32: ClusterOwnership.Owner], me: String, replicas: Int) -> Set<Int32> {
        let members = Set(owners.values.map(\.instance)).union([me]).sorted()
        guard replicas > 0, members.count > 1 else { return [] }
        var followed: Set<Int32> = []
        for (partition, owner) in owners where owner.instance != me {
            guard let index = members.firstIndex(of: owner.instance) else { continue }
            let standbys = (1...min(replicas, members.count - 1)).map { members[(index + $0) % members.count] }
            if standbys.contains(me) { followed.insert(partition) }
        }
        return followed
    }

    /// The partitions whose standby logs `me` certainly no longer needs under `owners`:
    /// those another instance owns that `me` does not stand by for. (Those `me` owns wait
    /// for the takeover to import them; those without an owner may be about to be taken over.)
    package static func discarded(owners: [Int32: ClusterOwnership.Owner], me: String, replicas: Int) -> Set<Int32> {
        let others = Set(owners.filter { $0.value.instance != me }.keys)
        return others.subtracting(partitions(owners: owners, me: me, replicas: replicas))
    }

    /// A follower of this instance's standby partitions, reassigned on every change of
    /// `ownership`, with its metrics in `metrics`; and the service running it. `retention`
    /// (the main log's) trims the standby logs too.
    static func start(
        data: String, brokers: String, topic: String, kafka: KafkaConfiguration, fsync: FsyncPolicy, ownership: ClusterOwnership, me: String,
        replicas: Int, retention: RetentionPolicy, metrics: MetricsRegistry
    ) throws -> (follower: StandbyFollower, service: ThreadService) {
        let follower = try StandbyFollower(
            dataDirectory: data, brokers: brokers, topic: topic, kafka: kafka, fsync: fsync, retention: retention)
        follower.registerMetrics(in: metrics)
        let follow = { @Sendable in
            let owners = ownership.owners
            follower.follow(
                partitions(owners: owners, me: me, replicas: replicas), discarding: discarded(owners: owners, me: me, replicas: replicas))
        }
        ownership.onChange(follow)
        follow()
        Logger(label: "cluster").notice("standby replicas", ["replicas": replicas, "directory": StandbyFollower.dataDirectory(of: data)])
        let service = ThreadService(name: "standby", threadName: "chatledger-standby", halt: { follower.stop() }) { try follower.run() }
        return (follower, service)
    }
}
