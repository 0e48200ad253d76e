/// Offsets of one partition that the broker no longer had when ingest asked for them
/// (retention or a size limit passed first): what a gap record says.
///
/// A gap record stands at `lastLostOffset` in its partition's log, so offsets still
/// increase and the record after it is the broker's new beginning. Its value holds the
/// four integers below (`schemas/event-log.md`), its reason field `reason`.
package struct LogGap: Sendable, Hashable, CustomStringConvertible {
    package var topic: String
    package var partition: Int32
    /// The first offset the log lacks: the log's last offset + 1 when the gap was found.
    package var firstLostOffset: Int64
    /// The last offset lost: the broker's new beginning − 1, and the gap record's own offset.
    package var lastLostOffset: Int64
    /// The broker's log start offset when the gap was found: where ingest went on.
    package var brokerLogStartOffset: Int64
    /// When ingest found the gap, ms since the epoch.
    package var detectedAt: Int64
    /// Why, UTF-8 `code: message` (as dead-letter reasons).
    package var reason: String

    package init(
        topic: String, partition: Int32, firstLostOffset: Int64, lastLostOffset: Int64, brokerLogStartOffset: Int64,
        detectedAt: Int64, reason: String
    ) {
        self.topic = topic
        self.partition = partition
        self.firstLostOffset = firstLostOffset
        self.lastLostOffset = lastLostOffset
        self.brokerLogStartOffset = brokerLogStartOffset
        self.detectedAt = detectedAt
        self.reason = reason
    }

    /// How many offsets the gap covers.
    package var lostRecords: Int64 { lastLostOffset - firstLostOffset + 1 }

    /// `P:F..L`, the partition and the lost range.
    package var range: String { "\(partition):\(firstLostOffset)..\(lastLostOffset)" }

    package var description: String {
        "\(topic)/\(partition) offsets \(firstLostOffset)..\(lastLostOffset) (\(lostRecords) records; the broker's log started at \(brokerLogStartOffset))"
    }

    /// The gap a gap record holds; nil if the record is not a well-formed gap record.
    package init?(_ record: RecordView) {
        guard record.kind == .gap, let value = record.value, let fields = LogFormat.decodeGapValue(value) else { return nil }
        self.init(
            topic: String(decoding: record.topic, as: UTF8.self), partition: record.partition, firstLostOffset: fields.first,
            lastLostOffset: fields.last, brokerLogStartOffset: fields.brokerLogStart, detectedAt: fields.detectedAt,
            reason: String(decoding: record.reason, as: UTF8.self))
    }
}

extension LogFormat {
    /// Bytes of a gap record's value.
    static let gapValueLength = 32

    /// A gap record's value: first and last lost offset, the broker's log start, the time
    /// it was found (each 8 bytes, little-endian).
    static func gapValue(_ gap: LogGap) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(gapValueLength)
        bytes.appendLittleEndian(gap.firstLostOffset)
        bytes.appendLittleEndian(gap.lastLostOffset)
        bytes.appendLittleEndian(gap.brokerLogStartOffset)
        bytes.appendLittleEndian(gap.detectedAt)
        return bytes
    }

    static func decodeGapValue(_ value: UnsafeRawBufferPointer) -> (first: Int64, last: Int64, brokerLogStart: Int64, detectedAt: Int64)? {
        guard value.count == gapValueLength else { return nil }
        return (
            value.loadLittleEndian(Int64.self, at: 0), value.loadLittleEndian(Int64.self, at: 8),
            value.loadLittleEndian(Int64.self, at: 16), value.loadLittleEndian(Int64.self, at: 24)
        )
    }

    /// What is wrong with a gap record at `offset` whose previous record is at
    /// `previousOffset`, nil when nothing: the rules of `schemas/event-log.md`.
    static func gapProblem(_ record: RecordView, previousOffset: Int64?) -> String? {
        guard record.key == nil, let value = record.value, let gap = decodeGapValue(value) else {
            return "gap record has a key, or a value that is not \(gapValueLength) bytes"
        }
        if gap.last != record.offset { return "gap record at offset \(record.offset) says its last lost offset is \(gap.last)" }
        if gap.first < 0 || gap.first > gap.last { return "gap record's lost range \(gap.first)..\(gap.last) is empty or negative" }
        if let previousOffset, gap.first <= previousOffset {
            return "gap record's lost range \(gap.first)..\(gap.last) overlaps the record before it (offset \(previousOffset))"
        }
        if gap.brokerLogStart != gap.last + 1 {
            return "gap record's broker log start \(gap.brokerLogStart) does not follow its last lost offset \(gap.last)"
        }
        return nil
    }
}
