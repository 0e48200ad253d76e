import EventLog

/// What makes ingest stop on its own, with the partition and offsets concerned.
package struct IngestError: Error, Sendable, CustomStringConvertible {
    private enum Kind: Sendable {
        case brokerLoss(LogGap)
        case logAheadOfBroker(partition: Int32, nextOffset: Int64, brokerLogEnd: Int64)
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// The broker no longer has `gap`'s offsets and `--on-broker-loss stop` says not to go on.
    static func brokerLoss(_ gap: LogGap) -> IngestError { IngestError(.brokerLoss(gap)) }

    /// The log needs an offset beyond the broker's end: the topic is not the one the log
    /// came from (recreated), or the broker lost records it had acknowledged.
    static func logAheadOfBroker(partition: Int32, nextOffset: Int64, brokerLogEnd: Int64) -> IngestError {
        IngestError(.logAheadOfBroker(partition: partition, nextOffset: nextOffset, brokerLogEnd: brokerLogEnd))
    }

    package var description: String {
        switch kind {
        case .brokerLoss(let gap):
            return "records lost at the broker: \(gap.topic) partition \(gap.partition) offsets \(gap.firstLostOffset)..\(gap.lastLostOffset) "
                + "(\(gap.lostRecords) records) are gone, the broker's log now starts at \(gap.brokerLogStartOffset); stopped as "
                + "--on-broker-loss stop says (start with --on-broker-loss record to record the gap and go on)"
        case .logAheadOfBroker(let partition, let nextOffset, let brokerLogEnd):
            return "partition \(partition): the log needs offset \(nextOffset) but the broker's log ends at \(brokerLogEnd): "
                + "this log does not come from this topic (recreated?), or the broker lost records it had acknowledged"
        }
    }
}

/// What ingest does when the broker no longer has records it has not read yet
/// (`--on-broker-loss`).
package enum BrokerLossPolicy: String, Sendable, CaseIterable {
    /// Write a gap record naming the lost range and go on from the broker's new beginning.
    case record
    /// Stop with an error naming the lost range; nothing is written.
    case stop
}
