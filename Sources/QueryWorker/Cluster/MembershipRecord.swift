import Foundation

/// One fact on the membership topic (`<topic>.members`, SPEC §9): an instance took a
/// partition of the canonical topic (`owned`), has caught it up (`ready`), or gave it up
/// (`released`). Written by the owner from its rebalance callback, synchronously, so the
/// order of the membership topic's one partition is the order of the group's generations.
/// The key is `<group>/partition/N`, so a compacted topic keeps the last fact per group and
/// partition.
package struct MembershipRecord: Codable, Sendable, Equatable {
    /// What the instance says about the partition.
    package enum State: String, Codable, Sendable {
        case owned, ready, released
    }

    /// The canonical topic's partition.
    package var partition: Int32
    /// The instance's `--advertise` URL.
    package var instance: String
    /// Which run of the instance (a restarted instance at the same URL is another one).
    package var incarnation: String
    package var state: State
    /// The canonical topic's partition count, as the writer saw it.
    package var partitions: Int
    /// When it was written, ms since the epoch (for people reading the topic).
    package var at: Int64
    /// The writer's consumer group: one cluster per group, so deployments reading the same
    /// topic in other groups do not take each other's partitions. nil in records of builds
    /// before it, which every group reads.
    package var group: String?

    package init(partition: Int32, instance: String, incarnation: String, state: State, partitions: Int, at: Int64, group: String? = nil) {
        self.partition = partition
        self.instance = instance
        self.incarnation = incarnation
        self.state = state
        self.partitions = partitions
        self.at = at
        self.group = group
    }

    /// Whether the record is a fact of the cluster of consumer group `group`.
    package func belongs(to group: String) -> Bool { self.group.map { $0 == group } ?? true }

    /// The record's Kafka key: per group and partition, so a compacted topic keeps the last
    /// fact of each group's cluster (`partition/N` for a record without a group, as before).
    package var key: [UInt8] { Array((group.map { "\($0)/" } ?? "").utf8) + Array("partition/\(partition)".utf8) }

    /// The record's Kafka value (JSON).
    package func encoded() -> [UInt8] {
        (try? Array(JSONEncoder().encode(self))) ?? []
    }

    /// A record from its Kafka value; nil for one that is not a membership record.
    package init?(decoding value: [UInt8]) {
        guard let record = try? JSONDecoder().decode(MembershipRecord.self, from: Data(value)), record.partition >= 0,
            record.partitions > 0, record.partition < record.partitions, !record.instance.isEmpty
        else { return nil }
        self = record
    }
}
