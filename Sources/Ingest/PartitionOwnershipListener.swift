/// Told of every change in the partitions ingest owns (cluster mode's membership, SPEC §9).
/// Every call happens on the ingest thread; `assigned` and `revoked` inside the consumer's
/// rebalance callback, before the group moves on, so what they write is ordered as the
/// group's generations are.
package protocol PartitionOwnershipListener: Sendable {
    /// Partitions assigned to this instance (their logs are opened; they catch up next).
    func assigned(_ partitions: [Int32])
    /// Partitions that have caught up with their high watermark.
    func caughtUp(_ partitions: [Int32])
    /// Partitions about to be taken away.
    func revoked(_ partitions: [Int32])
    /// Partitions another instance owns and has caught up, as known now: a log of them
    /// here is an old copy, which ingest drops (`IngestPipeline.drop`).
    var ownedAndReadyElsewhere: Set<Int32> { get }
}
