import ChatEvents
import EventLog

/// Finds every stored event this build's parser no longer reads (`StoredRecord.unreadable`),
/// for `verify` to report: such a record is folded as unreadable, so a projection built by
/// this build differs from the one built when it was ingested.
package enum UnreadableEventScan {
    /// One unreadable event: where it is and why it does not parse.
    package struct Finding: Sendable, Equatable {
        package var position: LogPosition
        package var error: EventValidationError
    }

    /// Parses every event record of `log`'s partitions of `topic`, in partition and offset
    /// order. Only events are parsed; dead letters and gaps are the log verifier's.
    /// A partition whose log is damaged is scanned up to the damage (`LogVerifier` locates it).
    /// `CheckpointVerifier.verifyWithUnreadableEvents` finds the same in its replay's pass.
    /// - Throws: `EventLogError` when the log's partitions cannot be listed.
    package static func scan(log: EventLog, topic: String) throws -> [Finding] {
        let parser = EventParser()
        var findings: [Finding] = []
        for partition in try log.partitions().filter({ $0.topic == topic }).map(\.partition).sorted() {
            _ = try? scan(log.reader(topic: topic, partition: partition), from: 0, below: nil, parser: parser, into: &findings)
        }
        return findings
    }

    /// Parses the event records of one partition from offset `start` up to `end` (not
    /// included; nil: to the log's end), adding each unreadable one to `findings` in
    /// offset order. Returns the offset after the last record read (`start` if none).
    /// - Throws: `EventLogError` for damage; what was found before it stays in `findings`.
    static func scan(
        _ reader: PartitionReader, from start: Int64, below end: Int64?, parser: EventParser, into findings: inout [Finding]
    ) throws -> Int64 {
        var next = start
        try reader.forEach(from: start) { record in
            if let end, record.offset >= end { return false }
            next = record.offset + 1
            guard record.kind == .event else { return true }
            if case .unreadable(let error) = StoredRecord(record, parser: parser) {
                findings.append(Finding(position: LogPosition(partition: reader.partition, offset: record.offset), error: error))
            }
            return true
        }
        return next
    }
}
