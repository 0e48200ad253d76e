#if canImport(Glibc)
import Glibc
#endif
import Ingest
import KafkaClient
import LedgerSupport
import QueryWorker
import Synchronization

/// Cluster mode's membership through Kafka (SPEC §9): the membership topic
/// (`<topic>.members`; every record on its partition 0, keyed by partition, so it may be
/// compacted) says which instance owns which partition of the canonical topic and whether
/// it has caught up. Ingest writes it (`PartitionOwnershipListener`, synchronously inside
/// its rebalance callback, so the topic's order is the group's); every instance reads it
/// from the beginning, without a group, into `ownership`.
final class ClusterMembership: PartitionOwnershipListener, Service {
    let serviceName = "membership"
    /// Who owns what, as read so far.
    let ownership = ClusterOwnership()
    /// This run's incarnation (a restart at the same URL is another owner).
    let incarnation: String
    let advertise: String
    /// The consumer group whose cluster this instance is in: records of other groups (other
    /// deployments reading the same topic) are skipped.
    let group: String
    /// The canonical topic's partition count.
    let partitions: Int
    private let channel: KafkaPartitionChannel
    private let stopping = Atomic<Bool>(false)
    private let reader = Mutex<LedgerThread?>(nil)
    private let logger = Logger(label: "membership")

    /// The membership topic of a canonical topic.
    static func topic(for canonical: String) -> String { canonical + ".members" }

    /// Connects to the membership topic and asks the broker for the canonical topic's
    /// partition count (waiting up to `timeoutSeconds` for the topic to exist).
    init(brokers: String, topic: String, kafka: KafkaConfiguration, advertise: String, group: String, timeoutSeconds: Int = 30) throws {
        self.advertise = advertise
        self.group = group
        var random = SystemRandomNumberGenerator()
        incarnation = String(random.next(), radix: 16)
        channel = try KafkaPartitionChannel(bootstrapServers: brokers, topic: Self.topic(for: topic), configuration: kafka)
        var count: Int?
        var lastError: (any Error)?
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        while count == nil, ContinuousClock.now < deadline {
            do {
                count = try channel.partitionCount(of: topic, timeoutMilliseconds: 5_000)
            } catch {
                lastError = error
                usleep(200_000)
            }
        }
        guard let count else { throw ClusterError.noTopic(topic, lastError.map { "\($0)" } ?? "timed out") }
        partitions = count
    }

    /// Reads the membership topic on its own thread until `stop()`.
    func start(onFailure: @escaping @Sendable (any Error) -> Void) throws {
        let thread = LedgerThread(name: "chatledger-members") { [self] in
            while !stopping.load(ordering: .acquiring) {
                do {
                    try channel.read(timeoutMilliseconds: 100) { record in
                        guard let fact = MembershipRecord(decoding: record.value) else {
                            ownership.ignore()
                            logger.warning("not a membership record: ignored", ["topic": channel.topic, "offset": record.offset])
                            return
                        }
                        guard fact.belongs(to: group) else { return }  // another deployment's cluster
                        ownership.apply(fact)
                    }
                } catch {
                    // A refused login or handshake: without the membership no answer can be routed.
                    onFailure(error)
                    return
                }
            }
        }
        reader.withLock { $0 = thread }
        thread.start()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        reader.withLock { $0 }?.join()
        channel.close()
    }

    func assigned(_ partitions: [Int32]) { write(partitions, .owned) }

    func caughtUp(_ partitions: [Int32]) { write(partitions, .ready) }

    func revoked(_ partitions: [Int32]) {
        // Applied here at once as well, written or not: from now on this instance must not
        // answer for them, even before its reader gets to the record.
        for record in write(partitions, .released) { ownership.apply(record) }
    }

    var ownedAndReadyElsewhere: Set<Int32> {
        // By URL: this instance's own earlier incarnation is not another instance.
        Set(ownership.owners.compactMap { partition, owner in owner.instance != advertise && owner.ready ? partition : nil })
    }

    /// Writes one record per partition (one flush for all, inside the rebalance callback);
    /// returns the records, written or not.
    @discardableResult
    private func write(_ partitions: [Int32], _ state: MembershipRecord.State) -> [MembershipRecord] {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let now = Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
        let records = partitions.sorted().map { partition in
            MembershipRecord(
                partition: partition, instance: advertise, incarnation: incarnation, state: state, partitions: self.partitions, at: now, group: group)
        }
        guard !records.isEmpty else { return [] }
        let list = records.map { String($0.partition) }.joined(separator: ",")
        do {
            try channel.write(records.map { (key: $0.key, value: $0.encoded()) })
            logger.info("membership", ["state": state.rawValue, "partitions": partitions.sorted().map(String.init).joined(separator: ",")])
        } catch {
            // Others keep the previous fact: forwards to this instance get 503 until the next write.
            logger.error("cannot write membership records", ["partitions": list, "state": state.rawValue, "error": error])
        }
        return records
    }

    /// What stops cluster mode from starting.
    enum ClusterError: Error, CustomStringConvertible {
        case noTopic(String, String)

        var description: String {
            switch self {
            case .noTopic(let topic, let why): "cluster mode: cannot learn the partitions of \(topic): \(why)"
            }
        }
    }
}
