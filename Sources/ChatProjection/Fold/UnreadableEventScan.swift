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
    /// - Throws: `EventLogError` when the log's partitions cannot be listed.
    package static func scan(log: EventLog, topic: String) throws -> [Finding] {
        let parser = EventParser()
        var findings: [Finding] = []
        for partition in try log.partitions().filter({ $0.topic == topic }).map(\.partition).sorted() {
            try? log.reader(topic: topic, partition: partition).forEach(from: 0) { record in
                guard record.kind == .event else { return true }
                if case .unreadable(let error) = StoredRecord(record, parser: parser) {
                    findings.append(Finding(position: LogPosition(partition: partition, offset: record.offset), error: error))
                }
                return true
            }
        }
        return findings
    }
}
