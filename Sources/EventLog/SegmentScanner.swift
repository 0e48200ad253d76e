import LedgerSupport

/// Reads one segment front to back through a reusable buffer. The `RecordView` it
/// returns points into that buffer and is valid until the next call.
struct SegmentScanner {
    enum Step {
        case record(RecordView, position: Int)
        /// Clean end of the file.
        case end
        /// The file ends inside a frame at `position`.
        case incomplete(position: Int)
        /// The bytes at `position` are not a valid frame.
        case invalid(position: Int, reason: String)
    }

    let file: LogFile
    private(set) var fileSize: Int
    let header: LogFormat.SegmentHeader
    private(set) var position: Int
    private var buffer: ReadBuffer
    private var bufferStart = 0
    private var bufferCount = 0

    enum Opened {
        case scanner(SegmentScanner)
        case incompleteHeader
        case invalidHeader(String)
    }

    /// Opens `path` and reads its header.
    static func open(_ path: String, bufferSize: Int = 1 << 20) throws(EventLogError) -> Opened {
        let file = try LogFile.openForReading(path)
        let size = try file.size()
        let buffer = ReadBuffer(capacity: bufferSize)
        let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<min(bufferSize, size)]), at: 0)
        switch LogFormat.SegmentHeader.decode(UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<count])) {
        case .incomplete: return .incompleteHeader
        case .invalid(let reason): return .invalidHeader(reason)
        case .header(let header):
            var scanner = SegmentScanner(file: file, fileSize: size, header: header, position: header.length, buffer: buffer)
            scanner.bufferCount = count
            return .scanner(scanner)
        }
    }

    private init(file: LogFile, fileSize: Int, header: LogFormat.SegmentHeader, position: Int, buffer: ReadBuffer) {
        self.file = file
        self.fileSize = fileSize
        self.header = header
        self.position = position
        self.buffer = buffer
    }

    /// Moves to a byte position (a record boundary, e.g. from the index).
    mutating func seek(to position: Int) {
        self.position = position
    }

    /// Re-reads the file size (for following a file another process appends to).
    mutating func refreshSize() throws(EventLogError) {
        fileSize = try file.size()
    }

    /// The next frame.
    mutating func next() throws(EventLogError) -> Step {
        guard position < fileSize else { return .end }
        if try !ensure(LogFormat.frameHeaderLength) { return .incomplete(position: position) }
        while true {
            let available = UnsafeRawBufferPointer(rebasing: buffer.bytes[(position - bufferStart)..<bufferCount])
            switch LogFormat.decodeFrame(available) {
            case .record(var view):
                let at = position
                position += view.frameLength
                view.chainsDigests = LogFormat.chainsDigests(header.version)
                return .record(view, position: at)
            case .invalid(let reason):
                return .invalid(position: position, reason: reason)
            case .incomplete(let needed):
                guard let needed, try ensure(needed) else { return .incomplete(position: position) }
            }
        }
    }

    /// Makes `count` bytes from `position` available in the buffer; false if the file
    /// ends first.
    private mutating func ensure(_ count: Int) throws(EventLogError) -> Bool {
        if position >= bufferStart && position + count <= bufferStart + bufferCount { return true }
        guard position + count <= fileSize else { return false }
        if count > buffer.bytes.count { buffer = ReadBuffer(capacity: max(count, 2 * buffer.bytes.count)) }
        let want = min(buffer.bytes.count, fileSize - position)
        bufferCount = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<want]), at: position)
        bufferStart = position
        return bufferCount >= count
    }

    /// The partition and offset the frame at `position` states, read without checking its
    /// CRC (`LogFormat.statedCoordinates`); nil when the file ends before them.
    func statedCoordinates(at position: Int) throws(EventLogError) -> (partition: Int32, offset: Int64)? {
        let length = LogFormat.frameHeaderLength + 16
        guard position >= 0, position + length <= fileSize else { return nil }
        let frame = ReadBuffer(capacity: length)
        let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: frame.bytes[0..<length]), at: position)
        return LogFormat.statedCoordinates(UnsafeRawBufferPointer(rebasing: frame.bytes[0..<count]))
    }

    /// Whether a valid record of this segment (offset above `afterOffset`) starts anywhere
    /// after `position` past bytes that are not all zero: the difference between damage
    /// inside the log and a torn tail (see `schemas/event-log.md`).
    func validRecordFollows(after position: Int, afterOffset: Int64?) throws(EventLogError) -> (position: Int, offset: Int64)? {
        let length = fileSize - position
        guard length > 0 else { return nil }
        let rest = ReadBuffer(capacity: length)
        let count = try file.read(into: rest.bytes, at: position)
        let bytes = UnsafeRawBufferPointer(rebasing: rest.bytes[0..<count])
        let topicLength = UInt16(header.topic.utf8.count)
        var sawNonZero = false
        for start in 0..<count {
            if bytes[start] != 0 { sawNonZero = true }
            guard start > 0, count - start >= LogFormat.frameHeaderLength + LogFormat.fixedBodyLength else { continue }
            // Cheap field checks first; the CRC only for candidates that pass them.
            let body = start + LogFormat.frameHeaderLength
            guard RecordKind(rawValue: bytes[body]) != nil, bytes[body + 1] & ~RedactedFields.all.rawValue == 0,
                bytes.loadLittleEndian(UInt16.self, at: body + 2) == topicLength,
                bytes.loadLittleEndian(Int32.self, at: body + 4) == header.partition
            else { continue }
            let offset = bytes.loadLittleEndian(Int64.self, at: body + 8)
            guard offset > (afterOffset ?? -1) else { continue }
            if case .record = LogFormat.decodeFrame(UnsafeRawBufferPointer(rebasing: bytes[start...])), sawNonZero {
                return (position + start, offset)
            }
        }
        return nil
    }
}

/// A fixed block of memory for reading, freed with its owner.
final class ReadBuffer {
    let bytes: UnsafeMutableRawBufferPointer

    init(capacity: Int) {
        bytes = .allocate(byteCount: max(capacity, 64), alignment: 16)
    }

    deinit {
        bytes.deallocate()
    }
}

// MARK: - Checked scan

/// What a full, checked scan of one segment found.
struct SegmentSummary {
    enum Damage: Equatable {
        /// The file ends in bytes that are not a whole valid record (a crash leaves this).
        case tornTail(position: Int, reason: String)
        /// A rule of the format is broken before the end: damage or tampering.
        case corrupt(position: Int, offset: Int64?, reason: String)
    }

    var header: LogFormat.SegmentHeader
    var recordCount = 0
    var firstOffset: Int64?
    var lastOffset: Int64?
    var lastChainHash: SHA256Digest
    var index: [IndexEntry] = []
    /// Byte position just after the last good record.
    var endPosition: Int
    var fileSize: Int
    var damage: Damage?
}

enum SegmentScan {
    enum Outcome {
        case scanned(SegmentSummary)
        /// The header is shorter than a header: creation was interrupted.
        case incompleteHeader
        case invalidHeader(String)
    }

    /// Scans a segment checking every rule: CRCs, topic and partition, offsets strictly
    /// above `previousOffset`, the base offset, and the chain from `previousChainHash`
    /// (nil: take the header's word for it). `onRecord` sees each good record.
    static func scan(
        _ path: String, topic: String, partition: Int32, previousChainHash: SHA256Digest?, previousOffset: Int64?,
        from start: IndexEntry? = nil, onRecord: ((RecordView) throws(EventLogError) -> Void)? = nil
    ) throws(EventLogError) -> Outcome {
        let scanner: SegmentScanner
        switch try SegmentScanner.open(path) {
        case .incompleteHeader: return .incompleteHeader
        case .invalidHeader(let reason): return .invalidHeader(reason)
        case .scanner(let opened): scanner = opened
        }
        var reader = scanner
        let header = reader.header
        var summary = SegmentSummary(
            header: header, lastChainHash: header.previousChainHash, endPosition: header.length, fileSize: reader.fileSize)
        guard header.topic == topic, header.partition == partition else {
            summary.damage = .corrupt(position: 0, offset: nil, reason: "segment header names \(header.topic)/\(header.partition)")
            return .scanned(summary)
        }
        if let previousChainHash, previousChainHash != header.previousChainHash {
            summary.damage = .corrupt(
                position: 0, offset: previousOffset,
                reason: "segment header's previous chain hash does not match the previous segment's last record")
            return .scanned(summary)
        }
        var previous = previousOffset
        var chain = header.previousChainHash
        if let start {
            // Resume from an index entry: the chain before it is not known, so it is not checked there.
            reader.seek(to: start.position)
        }
        var checkChain = start == nil
        let digests = LogFormat.chainsDigests(header.version)
        while true {
            switch try reader.next() {
            case .end:
                return .scanned(summary)
            case .record(let record, let position):
                let problem: String? =
                    if record.partition != partition || !record.topic.elementsEqual(topic.utf8) {
                        "record belongs to another topic or partition"
                    } else if let previous, record.offset <= previous {
                        "offset \(record.offset) does not increase (previous \(previous))"
                    } else if summary.recordCount == 0 && start == nil && record.offset != header.baseOffset {
                        "first offset \(record.offset) is not the segment's base offset \(header.baseOffset)"
                    } else if record.isRedacted && !digests {
                        "redaction flags in a version \(header.version) segment (only versions 3 and 4 can hold redactions)"
                    } else if record.isRedacted, let problem = record.redactionProblem {
                        problem
                    } else if checkChain && !record.chainFollows(chain) {
                        "chain hash does not follow from the previous record"
                    } else {
                        gapRuleProblem(record, header: header, isFirst: summary.recordCount == 0 && start == nil, previousOffset: previous)
                    }
                if let problem {
                    summary.damage = .corrupt(position: position, offset: record.offset, reason: problem)
                    return .scanned(summary)
                }
                checkChain = true
                if LogFormat.indexes(position: position, lastIndexed: summary.index.last?.position) {
                    summary.index.append(IndexEntry(offset: record.offset, position: position))
                }
                try onRecord?(record)
                summary.recordCount += 1
                if summary.firstOffset == nil { summary.firstOffset = record.offset }
                summary.lastOffset = record.offset
                previous = record.offset
                chain = record.chainHash
                summary.lastChainHash = chain
                summary.endPosition = reader.position
            case .incomplete(let position):
                summary.damage = try classify(reader, position: position, reason: "partial record", after: previous)
                return .scanned(summary)
            case .invalid(let position, let reason):
                summary.damage = try classify(reader, position: position, reason: reason, after: previous)
                return .scanned(summary)
            }
        }
    }

    /// Gap records stand first in a version 2 or 4 segment and nowhere else; such a
    /// segment starts with one (seen only when scanning from the segment's start).
    private static func gapRuleProblem(
        _ record: RecordView, header: LogFormat.SegmentHeader, isFirst: Bool, previousOffset: Int64?
    ) -> String? {
        let startsGapSegment = LogFormat.startsWithGap(header.version) && record.offset == header.baseOffset
        if record.kind == .gap {
            guard startsGapSegment else {
                let version = LogFormat.chainsDigests(header.version) ? LogFormat.digestGapVersion : LogFormat.gapSegmentVersion
                return "gap record at offset \(record.offset) is not the first record of a version \(version) segment"
            }
            if record.isRedacted { return "a gap record cannot be redacted" }
            return LogFormat.gapProblem(record, previousOffset: previousOffset)
        }
        if isFirst && LogFormat.startsWithGap(header.version) {
            return "version \(header.version) segment does not start with a gap record"
        }
        return nil
    }

    private static func classify(_ reader: SegmentScanner, position: Int, reason: String, after offset: Int64?) throws(EventLogError) -> SegmentSummary.Damage {
        if let next = try reader.validRecordFollows(after: position, afterOffset: offset) {
            let followed = "followed by a valid record (offset \(next.offset) at byte \(next.position))"
            // The bad record is named by the offset it states when that fits between its
            // neighbours (the damage may be in the offset field itself); else by the last good one.
            if let stated = try reader.statedCoordinates(at: position), stated.partition == reader.header.partition,
                stated.offset > (offset ?? -1), stated.offset < next.offset
            {
                return .corrupt(
                    position: position, offset: stated.offset,
                    reason: "\(reason) (the offset is as recorded in the damaged record), \(followed)")
            }
            let unread =
                "its own offset field is unreadable or out of place" + (offset.map { "; offset \($0) is the last good record's" } ?? "")
            return .corrupt(position: position, offset: offset, reason: "\(reason) (\(unread)), \(followed)")
        }
        return .tornTail(position: position, reason: reason)
    }
}
