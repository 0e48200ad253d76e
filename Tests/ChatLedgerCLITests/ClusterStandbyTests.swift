#if canImport(Glibc)
import Glibc
#endif
import ChatLedgerCLI
import Foundation
import KafkaTestSupport
import QueryWorker
import Testing

/// Cluster mode's standby replicas (`--standby N`, SPEC §9) with real processes: two
/// `chatledger run --advertise --standby 1` against one embedded broker; one is SIGKILLed
/// and the survivor imports the partitions it takes over from its standby log.
@Suite("cluster mode: standby replicas", .serialized)
struct ClusterStandbyTests {
    /// A sample's value in a `/metrics` text (the sum over its label sets), nil when absent.
    static func metric(_ text: String, _ name: String, labels: String? = nil) -> Double? {
        MetricsText.value(text, name, labels: labels)
    }

    static func metrics(_ port: UInt16) throws -> String { try ClusterModeTests.get(port, "/metrics").body }

    @Test("--standby 1, two instances, one SIGKILLed: the survivor imports the partitions it takes over from its standby log (every record once, Kafka asked only for the tail) and answers every device correctly (times printed)")
    func survivorImportsFromStandbyLog() throws {
        let cluster = try ClusterModeTests.Cluster(instances: 2, extra: ["--standby", "1"])
        let count = 300
        let last = try ClusterModeTests.produceDevices(cluster.broker, count: count)
        let total = (0..<count).reduce(0) { $0 + $1 % 4 + 1 }
        let owners = try ClusterModeTests.expectEveryDeviceEverywhere(last, count: count, ports: cluster.ports)
        #expect(owners.count == 2, "both instances own partitions")
        // Each instance holds every record: its own partitions in its log, the other's in its standby log.
        let deadline = ContinuousClock.now + .seconds(60)
        for port in cluster.ports {
            var seen = 0.0
            _ = try Polling.until(seconds: Double((deadline - ContinuousClock.now) / .seconds(1)), every: .milliseconds(100)) {
                let text = try Self.metrics(port)
                seen = (Self.metric(text, "chatledger_ingest_records_total") ?? 0) + (Self.metric(text, "chatledger_standby_records_total") ?? 0)
                return seen >= Double(total)
            }
            #expect(seen >= Double(total), "port \(port): own log and standby log hold every record (\(seen) of \(total))")
            #expect((Self.metric(try Self.metrics(port), "chatledger_standby_partitions") ?? 0) > 0, "port \(port) follows the other's partitions")
        }
        let survivor = cluster.ports[1]
        // The end of each partition: what a takeover must start Kafka at.
        var ends: [Int32: Int64] = [:]
        for delivery in last.values { ends[delivery.partition] = max(ends[delivery.partition] ?? -1, delivery.offset + 1) }

        let killed = ContinuousClock.now
        cluster.kill(0)
        let answered = try ClusterModeTests.expectEveryDeviceEverywhere(last, count: count, ports: [survivor])
        let recovered = ContinuousClock.now - killed
        #expect(answered == ["http://127.0.0.1:\(survivor)"], "the survivor owns every partition")

        let text = try Self.metrics(survivor)
        let imported = Self.metric(text, "chatledger_standby_imported_records_total") ?? 0
        #expect(imported > 0, "records were imported from the standby log")
        #expect(Self.metric(text, "chatledger_standby_takeovers_total", labels: #"outcome="imported""#) ?? 0 > 0)
        #expect(Self.metric(text, "chatledger_standby_takeovers_total", labels: #"outcome="kafka""#) == 0, "no takeover fell back to Kafka")
        #expect(Self.metric(text, "chatledger_ingest_records_total") == Double(total), "every record in the survivor's log exactly once")
        #expect(Self.metric(text, "chatledger_ingest_redeliveries_skipped_total") == 0, "Kafka delivered nothing the import already wrote")

        // Each import says where Kafka starts: the partition's end, so only the tail is fetched.
        let log = try String(contentsOfFile: "\(cluster.directory)/i1.log", encoding: .utf8)
        let imports = log.split(separator: "\n").filter { $0.contains("partition imported from the standby log") }
        #expect(!imports.isEmpty)
        var took: [Int] = []
        for line in imports {
            let fields = Self.fields(line)
            let partition = try #require(fields["partition"].flatMap { Int32($0) }, "\(line)")
            #expect(fields["kafka_from"].flatMap { Int64($0) } == ends[partition] ?? 0, "partition \(partition): Kafka asked from its end: \(line)")
            took.append(fields["took_ms"].flatMap { Int($0) } ?? -1)
        }
        print("cluster standby takeover: every device answered again from the survivor \(recovered) after SIGKILL; \(imports.count) partitions imported from the standby log, \(Int(imported)) records, import took \(took.reduce(0, +)) ms in all (per partition: \(took))")
    }

    @Test("the standbys of a partition are the N members after its owner by URL, cyclically; an instance never stands by for its own partitions")
    func standbysFollowTheOwnerByURL() {
        func owner(_ instance: String) -> ClusterOwnership.Owner { .init(instance: instance, incarnation: "1", ready: true) }
        let owners: [Int32: ClusterOwnership.Owner] = [0: owner("http://a"), 1: owner("http://b"), 2: owner("http://c"), 3: owner("http://a")]
        #expect(StandbyReplicas.partitions(owners: owners, me: "http://a", replicas: 1) == [2], "a follows c (after c comes a)")
        #expect(StandbyReplicas.partitions(owners: owners, me: "http://b", replicas: 1) == [0, 3], "b follows a")
        #expect(StandbyReplicas.partitions(owners: owners, me: "http://c", replicas: 1) == [1], "c follows b")
        #expect(StandbyReplicas.partitions(owners: owners, me: "http://a", replicas: 2) == [1, 2])
        #expect(StandbyReplicas.partitions(owners: owners, me: "http://a", replicas: 5) == [1, 2], "more replicas than members: every other member's")
        #expect(StandbyReplicas.partitions(owners: owners, me: "http://a", replicas: 0) == [])
        #expect(StandbyReplicas.partitions(owners: [0: owner("http://b")], me: "http://a", replicas: 1) == [0], "a member that owns nothing yet counts")
        #expect(StandbyReplicas.partitions(owners: [0: owner("http://a")], me: "http://a", replicas: 1) == [], "alone: nothing to follow")
        // Standby logs no longer needed: owned by another member that this one does not stand by for.
        #expect(StandbyReplicas.discarded(owners: owners, me: "http://a", replicas: 1) == [1], "b's partition: a follows only c's; its own (0, 3) wait for the takeover")
        #expect(StandbyReplicas.discarded(owners: owners, me: "http://a", replicas: 2) == [])
    }

    /// The `key=value` fields of a log line (values unquoted).
    static func fields(_ line: Substring) -> [String: String] {
        var fields: [String: String] = [:]
        for word in line.split(separator: " ") {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[String(word[..<equals])] = String(word[word.index(after: equals)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\",{}"))
        }
        return fields
    }
}
