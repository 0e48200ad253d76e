import ChatEvents
import EventLog
import LedgerSupport

/// What one record of the event log means to a projection: the one reading of a log
/// record that every path folding the log shares (ingest's applier, recovery and replay,
/// the audit views and export, `serve`'s follower, checkpoint verification).
///
/// An event record whose value this build no longer parses is `unreadable`, never a
/// silent skip: folding it counts it (`ProjectionState.Counts.unreadable`, the metric
/// `chatledger_projection_unreadable_events_total`) and logs its position; `verify`
/// reports each one (see `UnreadableEventScan`).
package enum StoredRecord: Sendable {
    /// An event, parsed.
    case event(Event)
    /// A value ingest rejected when it arrived (its reason is in the record).
    case deadLetter
    /// A gap record: offsets the broker had lost before ingest read them.
    case gap
    /// An event record whose value an erasure removed (its marker keeps the digest): the
    /// erasure, later in the log, already takes out of the fold what it named.
    case redacted
    /// An event record whose value does not parse with this build's parser.
    case unreadable(EventValidationError)

    /// Reads `record` as stored; an event record's value is parsed with `parser`.
    package init(_ record: RecordView, parser: EventParser) {
        var stored = StoredRecord.gap
        Self.read(record, parser: parser, event: { stored = .event($0) }, other: { stored = $0 })
        self = stored
    }

    /// The one reading of a record: an event is handed to `event` as parsed, owned (the
    /// replay's hot path moves it on without copying it out of an enum), anything else to
    /// `other`.
    @inline(__always)
    static func read(
        _ record: RecordView, parser: EventParser, event: (consuming Event) -> Void, other: (StoredRecord) -> Void
    ) {
        switch record.kind {
        case .event:
            guard let value = record.value else { return other(record.isRedacted ? .redacted : .unreadable(noValue)) }
            let parsed: Event
            do {
                parsed = try parser.parse(value)
            } catch {
                return other(.unreadable(error))
            }
            event(parsed)
        case .deadLetter:
            other(.deadLetter)
        case .gap:
            other(.gap)
        }
    }

    /// The error of an event record stored without a value (the log format allows none).
    static let noValue = EventValidationError(code: .invalidJSON, path: "", byteOffset: 0, message: "an event record without a value")

    /// The one policy for an unreadable stored event, besides counting it: a warning that
    /// names its position and why it does not parse.
    static func reportUnreadable(_ error: EventValidationError, at position: LogPosition) {
        logger.warning(
            "a stored event does not parse with this build; folded as unreadable",
            ["partition": position.partition, "offset": position.offset, "error": error])
    }

    private static let logger = Logger(label: "projection")
}
