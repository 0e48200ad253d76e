import LedgerSupport
import Synchronization

/// Who owns which partition of the canonical topic, folded from the membership topic in
/// its order (`MembershipRecord`): `owned` makes the writer the owner (not ready yet);
/// `ready` and `released` count only from the current owner (a late word from an earlier
/// owner changes nothing). Read on the HTTP loop thread: every read is one short lock.
package final class ClusterOwnership: Sendable {
    /// The owner of one partition.
    package struct Owner: Sendable, Equatable {
        package var instance: String
        package var incarnation: String
        /// It has caught the partition up with Kafka, so its answers are current.
        package var ready: Bool

        package init(instance: String, incarnation: String, ready: Bool) {
            self.instance = instance
            self.incarnation = incarnation
            self.ready = ready
        }
    }

    private struct State {
        var owners: [Int32: Owner] = [:]
        var partitionCount: Int?
        var applied = 0
        var ignored = 0
    }

    private let state = Mutex(State())
    private let listeners = Mutex<[@Sendable () -> Void]>([])

    package init() {}

    /// Folds one membership record in.
    package func apply(_ record: MembershipRecord) {
        let changed = state.withLock { state in
            state.applied += 1
            state.partitionCount = record.partitions
            let current = state.owners[record.partition]
            let isCurrent = current?.instance == record.instance && current?.incarnation == record.incarnation
            switch record.state {
            case .owned:
                state.owners[record.partition] = Owner(instance: record.instance, incarnation: record.incarnation, ready: false)
                return true
            case .ready:
                guard isCurrent else { return false }
                state.owners[record.partition]?.ready = true
                return true
            case .released:
                guard isCurrent else { return false }
                state.owners[record.partition] = nil
                return true
            }
        }
        if changed { for listener in listeners.withLock({ $0 }) { listener() } }
    }

    /// The owner of `partition`, nil when none is known.
    package func owner(of partition: Int32) -> Owner? { state.withLock { $0.owners[partition] } }

    /// The canonical topic's partition count, once a record said it.
    package var partitionCount: Int? { state.withLock { $0.partitionCount } }

    /// Every known owner, by partition.
    package var owners: [Int32: Owner] { state.withLock { $0.owners } }

    /// Counts a record on the membership topic that is not a membership record (ignored).
    package func ignore() { state.withLock { $0.ignored += 1 } }

    /// Records on the membership topic that were not membership records.
    package var recordsIgnored: Int { state.withLock { $0.ignored } }

    /// Records folded in so far.
    package var recordsApplied: Int { state.withLock { $0.applied } }

    /// Calls `listener` (on the applying thread) after every change of ownership.
    package func onChange(_ listener: @escaping @Sendable () -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// Registers `chatledger_cluster_*` metrics: partitions owned per instance and ready ones,
    /// and records of the membership topic ignored.
    package func registerMetrics(in registry: MetricsRegistry) {
        registry.collect(
            "chatledger_cluster_membership_records_ignored_total", help: "Records on the membership topic that were not membership records.",
            kind: .counter
        ) {
            [.init(Double(self.recordsIgnored))]
        }
        registry.collect(
            "chatledger_cluster_partitions", help: "Partitions of the canonical topic per owning instance and readiness (membership topic).",
            kind: .gauge
        ) {
            var counts: [String: [Bool: Int]] = [:]
            for owner in self.owners.values { counts[owner.instance, default: [:]][owner.ready, default: 0] += 1 }
            return counts.sorted { $0.key < $1.key }.flatMap { instance, byReady in
                byReady.sorted { !$0.key && $1.key }.map { .init([("instance", instance), ("ready", $0.key ? "true" : "false")], Double($0.value)) }
            }
        }
    }
}
