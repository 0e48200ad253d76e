import LedgerSupport

/// Where a partition's log starts after retention removed the segments before it: the
/// file `retention-base` in the partition's directory (see `schemas/event-log.md`,
/// "Retention"). Without one the log starts at its first record with a zero chain.
package struct RetentionBase: Sendable, Hashable {
    /// The base offset of the first segment kept: the log holds no record before it.
    package var baseOffset: Int64
    /// The chain hash of the last record removed: the first kept segment's header repeats
    /// it, and `verify` checks the chain from it.
    package var previousChainHash: SHA256Digest
    /// The largest Kafka timestamp (ms) of the records removed (-1 if none had one): a
    /// replay as of an earlier time cannot be answered.
    package var removedUpToTimestamp: Int64

    package init(baseOffset: Int64, previousChainHash: SHA256Digest, removedUpToTimestamp: Int64) {
        self.baseOffset = baseOffset
        self.previousChainHash = previousChainHash
        self.removedUpToTimestamp = removedUpToTimestamp
    }
}

extension EventLog {
    /// The retention base of a partition, nil if retention never removed anything of it.
    /// - Throws: `EventLogError` if the file exists and is damaged.
    package func retentionBase(topic: String, partition: Int32) throws(EventLogError) -> RetentionBase? {
        try LogFormat.readRetentionBase(directory: directory(topic: topic, partition: partition))
    }
}
