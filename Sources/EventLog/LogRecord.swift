import LedgerSupport

/// What a record holds: an event as received, a rejected value (dead letter), or the
/// range of offsets the broker had lost when ingest asked for them (a gap, see `LogGap`).
public enum RecordKind: UInt8, Sendable, Hashable {
    case event = 1
    case deadLetter = 2
    /// Not a Kafka message: a gap record, always the first record of a version 2 segment.
    case gap = 3
}

/// One record, owning its bytes. For appending, `topic`, `partition` and `chainHash` are
/// filled in by the writer; reading returns them as stored.
public struct LogRecord: Sendable, Hashable {
    public var kind: RecordKind
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Kafka's message timestamp in ms, -1 when there was none.
    public var timestamp: Int64
    public var key: [UInt8]?
    /// The Kafka value exactly as received.
    public var value: [UInt8]?
    /// Why a dead letter was rejected; empty for events.
    public var reason: String
    public var chainHash: SHA256Digest

    public init(
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
    public var position: LogPosition { LogPosition(partition: partition, offset: offset) }
}

/// A record read in place: its byte views are valid only inside the callback that
/// received it (no copies on the read path). `owned()` copies it out.
public struct RecordView {
    public let kind: RecordKind
    public let partition: Int32
    public let offset: Int64
    public let timestamp: Int64
    public let topic: UnsafeRawBufferPointer
    public let key: UnsafeRawBufferPointer?
    public let value: UnsafeRawBufferPointer?
    public let reason: UnsafeRawBufferPointer
    public let chainHash: SHA256Digest
    /// The body without the chain hash: what the chain hash covers after the previous one.
    let chainedBytes: UnsafeRawBufferPointer
    /// Bytes of the whole frame (length, CRC, body).
    public let frameLength: Int

    /// Whether this record's chain hash follows from `previous`.
    public func chainFollows(_ previous: SHA256Digest) -> Bool {
        var hasher = SHA256()
        hasher.update(previous)
        hasher.update(chainedBytes)
        return hasher.finalize() == chainHash
    }

    /// A copy that outlives the callback.
    public func owned() -> LogRecord {
        LogRecord(
            kind: kind, topic: String(decoding: topic, as: UTF8.self), partition: partition, offset: offset,
            timestamp: timestamp, key: key.map { Array($0) }, value: value.map { Array($0) },
            reason: String(decoding: reason, as: UTF8.self), chainHash: chainHash)
    }
}
