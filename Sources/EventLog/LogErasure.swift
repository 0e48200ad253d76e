import LedgerSupport

/// An erasure as the log holds it: the record of a `ledger.erased` event. Ingest writes it
/// with the reason `erasure: <scope>` (chained like any field, so it cannot be forged) and
/// its key (the device id) redacted by the erasure itself (see `schemas/event-log.md`).
package struct LogErasure: Sendable, Hashable {
    /// What an erasure names within its device.
    package enum Scope: String, Sendable, Hashable {
        /// The whole device: every record of it loses its key, value and reason.
        case device
        /// One chat of the device: its records lose their values (the key, the device, stays).
        case chat
        /// One contact of the device (their chat under either of its ids).
        case contact
    }

    /// The reason text of an erasure record: `erasure: ` then the scope.
    package static func reason(_ scope: Scope) -> String { reasonPrefix + scope.rawValue }
    static let reasonPrefix = "erasure: "

    package var partition: Int32
    /// The erasure record's offset: the log position every instance applies it at.
    package var offset: Int64
    package var scope: Scope
    /// The SHA-256 of the erased device's id (the erasure record's Kafka key).
    package var deviceDigest: SHA256Digest?

    /// The erasure a record is, nil if it is none (events only; the reason says it).
    package init?(_ record: RecordView) {
        guard record.kind == .event, record.storedReason.starts(with: Self.reasonPrefix.utf8),
            let scope = Scope(rawValue: String(decoding: record.storedReason.dropFirst(Self.reasonPrefix.utf8.count), as: UTF8.self))
        else { return nil }
        partition = record.partition
        offset = record.offset
        self.scope = scope
        deviceDigest = record.keyDigest
    }
}
