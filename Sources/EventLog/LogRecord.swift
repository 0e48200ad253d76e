import LedgerSupport

/// What a record holds: an event as received, a rejected value (dead letter), or the
/// range of offsets the broker had lost when ingest asked for them (a gap, see `LogGap`).
package enum RecordKind: UInt8, Sendable, Hashable {
    case event = 1
    case deadLetter = 2
    /// Not a Kafka message: a gap record, always the first record of a version 2 segment.
    case gap = 3
}

/// One record, owning its bytes. For appending, `topic`, `partition` and `chainHash` are
/// filled in by the writer; reading returns them as stored.
package struct LogRecord: Sendable, Hashable {
    package var kind: RecordKind
    package var topic: String
    package var partition: Int32
    package var offset: Int64
    /// Kafka's message timestamp in ms, -1 when there was none.
    package var timestamp: Int64
    package var key: [UInt8]?
    /// The Kafka value exactly as received.
    package var value: [UInt8]?
    /// Why a dead letter was rejected; empty for events.
    package var reason: String
    package var chainHash: SHA256Digest

    package init(
        kind: RecordKind = .event, topic: String = "", partition: Int32 = 0, offset: Int64, timestamp: Int64 = -1,
        key: [UInt8]?, value: [UInt8]?, reason: String = "", chainHash: SHA256Digest = .zero
    ) {
        self.kind = kind
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.reason = reason
        self.chainHash = chainHash
    }

    /// The record's Kafka coordinates.
    package var position: LogPosition { LogPosition(partition: partition, offset: offset) }
}

/// A record read in place: its byte views are valid only inside the callback that
/// received it (no copies on the read path). `owned()` copies it out.
///
/// A redacted field reads as absent (`key`, `value` nil, `reason` empty): readers treat a
/// redacted event as they treat a record without a value. `redacted` says which fields
/// an erasure replaced and `erasureOffset` by which erasure.
package struct RecordView {
    package let kind: RecordKind
    package let partition: Int32
    package let offset: Int64
    package let timestamp: Int64
    package let topic: UnsafeRawBufferPointer
    /// The fields as stored: a redacted one holds its redaction marker.
    let storedKey: UnsafeRawBufferPointer?
    let storedValue: UnsafeRawBufferPointer?
    let storedReason: UnsafeRawBufferPointer
    /// The fields an erasure replaced by redaction markers (always empty in version 1 and 2 segments).
    package let redacted: RedactedFields
    package let chainHash: SHA256Digest
    /// The body without the chain hash: what a version 1/2 chain hash covers after the previous one.
    let chainedBytes: UnsafeRawBufferPointer
    /// The body's first 24 + T bytes (kind, flags, lengths, coordinates, topic).
    let fixedBytes: UnsafeRawBufferPointer
    /// Bytes of the whole frame (length, CRC, body).
    package let frameLength: Int
    /// Whether the record's segment chains over digests (version 3 or 4): set by the
    /// scanner, which knows the segment's header.
    package internal(set) var chainsDigests = false

    init(
        kind: RecordKind, partition: Int32, offset: Int64, timestamp: Int64, topic: UnsafeRawBufferPointer,
        storedKey: UnsafeRawBufferPointer?, storedValue: UnsafeRawBufferPointer?, storedReason: UnsafeRawBufferPointer,
        redacted: RedactedFields, chainHash: SHA256Digest, chainedBytes: UnsafeRawBufferPointer,
        fixedBytes: UnsafeRawBufferPointer, frameLength: Int
    ) {
        self.kind = kind
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.topic = topic
        self.storedKey = storedKey
        self.storedValue = storedValue
        self.storedReason = storedReason
        self.redacted = redacted
        self.chainHash = chainHash
        self.chainedBytes = chainedBytes
        self.fixedBytes = fixedBytes
        self.frameLength = frameLength
    }

    /// The Kafka key as received; nil when there was none or it is redacted.
    package var key: UnsafeRawBufferPointer? { redacted.contains(.key) ? nil : storedKey }
    /// The Kafka value exactly as received; nil when there was none or it is redacted.
    package var value: UnsafeRawBufferPointer? { redacted.contains(.value) ? nil : storedValue }
    /// Why a dead letter was rejected; empty for events and when redacted.
    package var reason: UnsafeRawBufferPointer {
        redacted.contains(.reason) ? UnsafeRawBufferPointer(rebasing: storedReason[0..<0]) : storedReason
    }

    /// The fields the record has (the reason always, if only empty): what a whole redaction replaces.
    package var presentFields: RedactedFields {
        var fields: RedactedFields = .reason
        if storedKey != nil { fields.insert(.key) }
        if storedValue != nil { fields.insert(.value) }
        return fields
    }

    /// Whether an erasure replaced any field.
    package var isRedacted: Bool { !redacted.isEmpty }

    /// The offset of the erasure that redacted this record (the value's marker first, then
    /// the key's, then the reason's); nil if none did or the markers are malformed.
    package var erasureOffset: Int64? {
        for (field, bytes) in [(RedactedFields.value, storedValue), (.key, storedKey), (.reason, storedReason)]
        where redacted.contains(field) {
            if let bytes, let marker = LogFormat.decodeRedactionMarker(bytes) { return marker.erasureOffset }
        }
        return nil
    }

    /// The SHA-256 of the key as received (also when redacted: the marker keeps it); nil without a key.
    package var keyDigest: SHA256Digest? { storedKey.flatMap { digest(of: $0, redacted: redacted.contains(.key)) } }

    /// Why the redaction markers are not well formed, nil if they are (or there are none).
    var redactionProblem: String? {
        for (field, bytes, name) in [(RedactedFields.key, storedKey, "key"), (.value, storedValue, "value"), (.reason, storedReason, "reason")]
        where redacted.contains(field) {
            guard let bytes, LogFormat.decodeRedactionMarker(bytes) != nil else {
                return "the \(name) is flagged redacted but holds no redaction marker"
            }
            if let marker = LogFormat.decodeRedactionMarker(bytes), marker.erasureOffset < offset {
                return "the \(name)'s redaction names erasure offset \(marker.erasureOffset), before the record"
            }
        }
        return nil
    }

    private func digest(of bytes: UnsafeRawBufferPointer, redacted: Bool) -> SHA256Digest? {
        redacted ? LogFormat.decodeRedactionMarker(bytes)?.digest : LogFormat.fieldDigest(bytes)
    }

    /// Whether this record's chain hash follows from `previous` (over the body in a
    /// version 1/2 segment, over the digests in a version 3/4 one).
    package func chainFollows(_ previous: SHA256Digest) -> Bool {
        if chainsDigests {
            guard let reasonDigest = digest(of: storedReason, redacted: redacted.contains(.reason)) else { return false }
            var keyDigest: SHA256Digest?
            var valueDigest: SHA256Digest?
            if let storedKey {
                guard let digest = digest(of: storedKey, redacted: redacted.contains(.key)) else { return false }
                keyDigest = digest
            }
            if let storedValue {
                guard let digest = digest(of: storedValue, redacted: redacted.contains(.value)) else { return false }
                valueDigest = digest
            }
            return LogFormat.digestChainHash(
                previous: previous, fixed: fixedBytes, key: keyDigest, value: valueDigest, reason: reasonDigest) == chainHash
        }
        var hasher = SHA256()
        hasher.update(previous)
        hasher.update(chainedBytes)
        return hasher.finalize() == chainHash
    }

    /// A copy that outlives the callback (redacted fields read as absent).
    package func owned() -> LogRecord {
        LogRecord(
            kind: kind, topic: String(decoding: topic, as: UTF8.self), partition: partition, offset: offset,
            timestamp: timestamp, key: key.map { Array($0) }, value: value.map { Array($0) },
            reason: String(decoding: reason, as: UTF8.self), chainHash: chainHash)
    }
}
