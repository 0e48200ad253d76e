#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

/// The byte layout of segments, records and indexes (documented in `schemas/event-log.md`).
enum LogFormat {
    static let segmentMagic: [UInt8] = Array("CLEDGSEG".utf8)
    static let indexMagic: [UInt8] = Array("CLEDGIDX".utf8)
    /// The version of segments that hold only events and dead letters (and of indexes).
    static let version: UInt16 = 1
    /// The version of a segment whose first record is a gap record: readers that know
    /// only version 1 refuse the segment instead of taking the gap for damage.
    static let gapSegmentVersion: UInt16 = 2
    /// The version of segments whose chain covers each field's digest instead of its bytes
    /// (so a key, value or reason can be redacted without breaking the chain).
    static let digestVersion: UInt16 = 3
    /// A digest-chained segment whose first record is a gap record.
    static let digestGapVersion: UInt16 = 4
    /// Bytes of one redaction marker: the erasure's offset (8) and the field's SHA-256 (32).
    static let redactionMarkerLength = 40

    /// Whether segments of `version` start with a gap record.
    static func startsWithGap(_ version: UInt16) -> Bool { version == gapSegmentVersion || version == digestGapVersion }
    /// Whether records of `version` chain over field digests.
    static func chainsDigests(_ version: UInt16) -> Bool { version == digestVersion || version == digestGapVersion }
    /// The version of a new segment.
    static func segmentVersion(gap: Bool, chain: LogChain) -> UInt16 {
        switch chain {
        case .overBodies: gap ? gapSegmentVersion : version
        case .overDigests: gap ? digestGapVersion : digestVersion
        }
    }
    /// Length and CRC before each body.
    static let frameHeaderLength = 8
    /// Body bytes besides topic, key, value and reason.
    static let fixedBodyLength = 24 + 4 + 4 + 2 + 32
    static let maxBodyLength = 16 << 20
    static let absentLength: UInt32 = 0xFFFF_FFFF
    /// Index entries are at least this many bytes of records apart.
    static let indexInterval = 4096

    /// Whether the record at `position` gets an index entry, the previous entry being at
    /// `lastIndexed` (nil: none yet in this segment). The writer and every scan use this
    /// one rule, so a rebuilt index equals the written one.
    static func indexes(position: Int, lastIndexed: Int?) -> Bool {
        guard let lastIndexed else { return true }
        return position - lastIndexed >= indexInterval
    }

    static func segmentFileName(baseOffset: Int64) -> String { paddedOffset(baseOffset) + ".seg" }
    static func indexFileName(baseOffset: Int64) -> String { paddedOffset(baseOffset) + ".idx" }

    private static func paddedOffset(_ offset: Int64) -> String {
        let digits = String(offset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// The base offset a segment or index file name encodes.
    static func baseOffset(fileName: String, suffix: String) -> Int64? {
        guard fileName.hasSuffix(suffix), fileName.count == 20 + suffix.count else { return nil }
        return Int64(fileName.dropLast(suffix.count))
    }

    // MARK: - Segment header

    struct SegmentHeader: Equatable {
        /// 1 or 3, or 2 or 4 for a segment that starts with a gap record.
        var version: UInt16 = LogFormat.version
        var partition: Int32
        var baseOffset: Int64
        var previousChainHash: SHA256Digest
        var topic: String

        var length: Int { 58 + topic.utf8.count + 4 }

        func encoded() -> [UInt8] {
            var bytes = segmentMagic
            bytes.appendLittleEndian(version)
            bytes.appendLittleEndian(UInt16(length))
            bytes.appendLittleEndian(partition)
            bytes.appendLittleEndian(baseOffset)
            bytes.append(contentsOf: previousChainHash.bytes)
            bytes.appendLittleEndian(UInt16(topic.utf8.count))
            bytes.append(contentsOf: topic.utf8)
            bytes.appendLittleEndian(CRC32C.checksum(bytes))
            return bytes
        }

        enum Decoded {
            case header(SegmentHeader)
            /// Fewer bytes than a header needs: a segment whose creation was interrupted.
            case incomplete
            case invalid(String)
        }

        static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
            guard bytes.count >= 62 else { return .incomplete }
            guard bytes.prefix(8).elementsEqual(segmentMagic) else { return .invalid("not a segment (bad magic)") }
            let version = bytes.loadLittleEndian(UInt16.self, at: 8)
            guard (1...4).contains(version) else { return .invalid("unknown format version \(version)") }
            let length = Int(bytes.loadLittleEndian(UInt16.self, at: 10))
            let topicLength = Int(bytes.loadLittleEndian(UInt16.self, at: 56))
            guard length == 62 + topicLength else { return .invalid("inconsistent header length") }
            guard bytes.count >= length else { return .incomplete }
            let stored = bytes.loadLittleEndian(UInt32.self, at: length - 4)
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(length - 4)])) == stored else {
                return .invalid("segment header CRC mismatch")
            }
            return .header(
                SegmentHeader(
                    version: version, partition: bytes.loadLittleEndian(Int32.self, at: 12),
                    baseOffset: bytes.loadLittleEndian(Int64.self, at: 16),
                    previousChainHash: SHA256Digest(bytes: UnsafeRawBufferPointer(rebasing: bytes[24..<56]))!,
                    topic: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[58..<(58 + topicLength)]), as: UTF8.self)))
        }
    }

    // MARK: - Records

    /// Appends one framed record to `buffer`; returns its chain hash. With `digests` (a
    /// version 3 or 4 segment) the chain covers the fields' digests, else the body.
    static func appendRecord(
        to buffer: inout [UInt8], kind: RecordKind, topic: String, partition: Int32, offset: Int64, timestamp: Int64,
        key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, reason: String, previousChainHash: SHA256Digest,
        digests: Bool = false
    ) -> SHA256Digest {
        let frameStart = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: 8))  // length and CRC, filled below
        let bodyStart = buffer.count
        buffer.append(kind.rawValue)
        buffer.append(0)
        buffer.appendLittleEndian(UInt16(topic.utf8.count))
        buffer.appendLittleEndian(partition)
        buffer.appendLittleEndian(offset)
        buffer.appendLittleEndian(timestamp)
        buffer.append(contentsOf: topic.utf8)
        // No array literals here: each would be an allocation per record.
        func appendField(_ field: UnsafeRawBufferPointer?) {
            if let field {
                buffer.appendLittleEndian(UInt32(field.count))
                buffer.append(contentsOf: field)
            } else {
                buffer.appendLittleEndian(absentLength)
            }
        }
        appendField(key)
        appendField(value)
        buffer.appendLittleEndian(UInt16(reason.utf8.count))
        buffer.append(contentsOf: reason.utf8)
        let chainHash = buffer.withUnsafeBytes { bytes in
            if digests {
                var reasonCopy = reason
                return reasonCopy.withUTF8 { reasonBytes in
                    let fixed = UnsafeRawBufferPointer(rebasing: bytes[bodyStart..<(bodyStart + 24 + topic.utf8.count)])
                    return digestChainHash(
                        previous: previousChainHash, fixed: fixed, key: key.map(fieldDigest), value: value.map(fieldDigest),
                        reason: fieldDigest(UnsafeRawBufferPointer(reasonBytes)))
                }
            }
            var hasher = SHA256()
            hasher.update(previousChainHash)
            hasher.update(UnsafeRawBufferPointer(rebasing: bytes[bodyStart...]))
            return hasher.finalize()
        }
        chainHash.withUnsafeBytes { buffer.append(contentsOf: $0) }
        let bodyLength = buffer.count - bodyStart
        buffer.withUnsafeMutableBytes { bytes in
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[bodyStart...]))
            bytes.storeBytes(of: UInt32(bodyLength).littleEndian, toByteOffset: frameStart, as: UInt32.self)
            bytes.storeBytes(of: crc.littleEndian, toByteOffset: frameStart + 4, as: UInt32.self)
        }
        return chainHash
    }

    /// The SHA-256 of one field's bytes: what a digest chain covers, and what a redaction
    /// marker keeps.
    static func fieldDigest(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        if bytes.isEmpty { return emptyDigest }  // every event's reason: one compression saved per record
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The SHA-256 of no bytes.
    static let emptyDigest = SHA256.hash([])

    /// A version 3/4 chain hash: SHA-256(previous ‖ kind ‖ body bytes 2..<24 ‖ topic ‖
    /// presence and digest of key, value, reason). `fixed` is the body's first 24 + T bytes;
    /// the flags byte (body[1], which says what is redacted) is left out.
    static func digestChainHash(
        previous: SHA256Digest, fixed: UnsafeRawBufferPointer, key: SHA256Digest?, value: SHA256Digest?, reason: SHA256Digest
    ) -> SHA256Digest {
        var hasher = SHA256()
        hasher.update(previous)
        hasher.update(UnsafeRawBufferPointer(rebasing: fixed[0..<1]))
        hasher.update(UnsafeRawBufferPointer(rebasing: fixed[2...]))
        // No array of the three: it would be an allocation per record.
        func add(_ field: SHA256Digest?) {
            let presence: UInt8 = field == nil ? 0 : 1
            withUnsafeBytes(of: presence) { hasher.update($0) }
            hasher.update(field ?? .zero)
        }
        add(key)
        add(value)
        add(reason)
        return hasher.finalize()
    }

    /// A redaction marker: what stands in a redacted field (see `schemas/event-log.md`).
    static func redactionMarker(erasureOffset: Int64, digest: SHA256Digest) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(redactionMarkerLength)
        bytes.appendLittleEndian(erasureOffset)
        digest.withUnsafeBytes { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// The erasure offset and digest of a redaction marker, nil if the bytes are not one.
    static func decodeRedactionMarker(_ bytes: UnsafeRawBufferPointer) -> (erasureOffset: Int64, digest: SHA256Digest)? {
        guard bytes.count == redactionMarkerLength,
            let digest = SHA256Digest(bytes: UnsafeRawBufferPointer(rebasing: bytes[8..<40]))
        else { return nil }
        return (bytes.loadLittleEndian(Int64.self, at: 0), digest)
    }

    /// Appends `record`'s frame with the fields of `redact` (present, not yet redacted)
    /// replaced by redaction markers naming `erasureOffset`. The chain hash is kept: in a
    /// version 3/4 segment it covers the digests, which the markers keep.
    static func appendRedacted(to buffer: inout [UInt8], _ record: RecordView, redact: RedactedFields, erasureOffset: Int64) {
        let frameStart = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: 8))
        let bodyStart = buffer.count
        buffer.append(contentsOf: record.fixedBytes)
        buffer[bodyStart + 1] = record.redacted.union(redact).rawValue
        func appendField(_ field: UnsafeRawBufferPointer?, _ flag: RedactedFields, lengthBytes: Int) {
            guard let field else {
                buffer.appendLittleEndian(absentLength)
                return
            }
            let bytes = redact.contains(flag) ? redactionMarker(erasureOffset: erasureOffset, digest: fieldDigest(field)) : Array(field)
            if lengthBytes == 4 { buffer.appendLittleEndian(UInt32(bytes.count)) } else { buffer.appendLittleEndian(UInt16(bytes.count)) }
            buffer.append(contentsOf: bytes)
        }
        appendField(record.storedKey, .key, lengthBytes: 4)
        appendField(record.storedValue, .value, lengthBytes: 4)
        appendField(record.storedReason, .reason, lengthBytes: 2)
        record.chainHash.withUnsafeBytes { buffer.append(contentsOf: $0) }
        let bodyLength = buffer.count - bodyStart
        buffer.withUnsafeMutableBytes { bytes in
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[bodyStart...]))
            bytes.storeBytes(of: UInt32(bodyLength).littleEndian, toByteOffset: frameStart, as: UInt32.self)
            bytes.storeBytes(of: crc.littleEndian, toByteOffset: frameStart + 4, as: UInt32.self)
        }
    }

    /// What stands at the start of some bytes.
    enum Frame {
        case record(RecordView)
        /// The bytes end before the frame does; `needed` is the whole frame's length when known.
        case incomplete(needed: Int?)
        case invalid(String)
    }

    /// Decodes the frame at the start of `bytes`, checking its CRC and layout.
    static func decodeFrame(_ bytes: UnsafeRawBufferPointer) -> Frame {
        guard bytes.count >= frameHeaderLength else { return .incomplete(needed: nil) }
        let bodyLength = Int(bytes.loadLittleEndian(UInt32.self, at: 0))
        guard bodyLength >= fixedBodyLength, bodyLength <= maxBodyLength else {
            return .invalid("implausible record length \(bodyLength)")
        }
        guard bytes.count >= frameHeaderLength + bodyLength else {
            return .incomplete(needed: frameHeaderLength + bodyLength)
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes[frameHeaderLength..<(frameHeaderLength + bodyLength)])
        guard CRC32C.checksum(body) == bytes.loadLittleEndian(UInt32.self, at: 4) else {
            return .invalid("record CRC mismatch")
        }
        guard let kind = RecordKind(rawValue: body[0]), body[1] & ~RedactedFields.all.rawValue == 0 else {
            return .invalid("unknown record kind or flags")
        }
        let topicLength = Int(body.loadLittleEndian(UInt16.self, at: 2))
        var cursor = 24 + topicLength
        func field() -> UnsafeRawBufferPointer?? {
            guard cursor + 4 <= bodyLength - 34 else { return .none }
            let length = body.loadLittleEndian(UInt32.self, at: cursor)
            cursor += 4
            if length == absentLength { return .some(nil) }
            guard Int(length) <= bodyLength - 34 - cursor else { return .none }
            defer { cursor += Int(length) }
            return .some(UnsafeRawBufferPointer(rebasing: body[cursor..<(cursor + Int(length))]))
        }
        guard cursor <= bodyLength - 34, case .some(let key) = field(), case .some(let value) = field() else {
            return .invalid("record fields overrun the body")
        }
        let reasonLength = Int(body.loadLittleEndian(UInt16.self, at: cursor))
        cursor += 2
        guard cursor + reasonLength + 32 == bodyLength else { return .invalid("record lengths do not add up") }
        let chainStart = bodyLength - 32
        return .record(
            RecordView(
                kind: kind, partition: body.loadLittleEndian(Int32.self, at: 4),
                offset: body.loadLittleEndian(Int64.self, at: 8), timestamp: body.loadLittleEndian(Int64.self, at: 16),
                topic: UnsafeRawBufferPointer(rebasing: body[24..<(24 + topicLength)]), storedKey: key, storedValue: value,
                storedReason: UnsafeRawBufferPointer(rebasing: body[cursor..<(cursor + reasonLength)]),
                redacted: RedactedFields(rawValue: body[1]),
                chainHash: SHA256Digest(bytes: UnsafeRawBufferPointer(rebasing: body[chainStart...]))!,
                chainedBytes: UnsafeRawBufferPointer(rebasing: body[..<chainStart]),
                fixedBytes: UnsafeRawBufferPointer(rebasing: body[..<(24 + topicLength)]),
                frameLength: frameHeaderLength + bodyLength))
    }

    /// The partition and Kafka offset a frame's body states (body bytes 4 ..< 16), read
    /// without checking its CRC or layout: what a damaged record says of itself. Nil when
    /// `bytes` end before those fields.
    static func statedCoordinates(_ bytes: UnsafeRawBufferPointer) -> (partition: Int32, offset: Int64)? {
        guard bytes.count >= frameHeaderLength + 16 else { return nil }
        return (
            bytes.loadLittleEndian(Int32.self, at: frameHeaderLength + 4), bytes.loadLittleEndian(Int64.self, at: frameHeaderLength + 8)
        )
    }

    // MARK: - Retention base

    static let retentionBaseFileName = "retention-base"

    /// `CLEDGBASE 1 <base offset> <previous chain hash, hex> <removed up to timestamp>\n`.
    static func encodeRetentionBase(_ base: RetentionBase) -> [UInt8] {
        Array("CLEDGBASE 1 \(base.baseOffset) \(base.previousChainHash.hex) \(base.removedUpToTimestamp)\n".utf8)
    }

    static func decodeRetentionBase(_ bytes: [UInt8]) -> RetentionBase? {
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0] == "CLEDGBASE", fields[1] == "1", bytes.last == 0x0A,
            let offset = Int64(fields[2]), offset >= 0, let chain = SHA256Digest(hex: String(fields[3])),
            let timestamp = Int64(fields[4].dropLast())
        else { return nil }
        return RetentionBase(baseOffset: offset, previousChainHash: chain, removedUpToTimestamp: timestamp)
    }

    /// The retention base of the partition in `directory`; nil if there is none.
    /// - Throws: `EventLogError` if the file is there and is not a base.
    static func readRetentionBase(directory: String) throws(EventLogError) -> RetentionBase? {
        let path = directory + "/" + retentionBaseFileName
        guard access(path, F_OK) == 0 else { return nil }
        guard let base = decodeRetentionBase(try LogFile.readAll(path)) else {
            throw .corruption("retention base file is damaged", path: path, byteOffset: 0, kafkaOffset: nil)
        }
        return base
    }

    // MARK: - Index

    static func encodeIndex(_ entries: [IndexEntry]) -> [UInt8] {
        var bytes = indexMagic
        bytes.appendLittleEndian(version)
        bytes.appendLittleEndian(UInt32(entries.count))
        for entry in entries {
            bytes.appendLittleEndian(entry.offset)
            bytes.appendLittleEndian(Int64(entry.position))
        }
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    /// The entries of an index file, or nil if it is damaged in any way.
    static func decodeIndex(_ bytes: [UInt8]) -> [IndexEntry]? {
        bytes.withUnsafeBytes { raw in
            guard raw.count >= 18, raw.prefix(8).elementsEqual(indexMagic),
                raw.loadLittleEndian(UInt16.self, at: 8) == version
            else { return nil }
            let count = Int(raw.loadLittleEndian(UInt32.self, at: 10))
            guard raw.count == 14 + 16 * count + 4,
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[..<(raw.count - 4)]))
                    == raw.loadLittleEndian(UInt32.self, at: raw.count - 4)
            else { return nil }
            var entries: [IndexEntry] = []
            for index in 0..<count {
                let at = 14 + 16 * index
                entries.append(
                    IndexEntry(offset: raw.loadLittleEndian(Int64.self, at: at), position: Int(raw.loadLittleEndian(Int64.self, at: at + 8))))
            }
            return entries
        }
    }
}

/// One sparse-index entry: a record's Kafka offset and byte position in its segment.
struct IndexEntry: Equatable, Sendable {
    var offset: Int64
    var position: Int
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<Value: FixedWidthInteger>(_ value: Value) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    func loadLittleEndian<Value: FixedWidthInteger>(_ type: Value.Type, at offset: Int) -> Value {
        Value(littleEndian: loadUnaligned(fromByteOffset: offset, as: Value.self))
    }
}
