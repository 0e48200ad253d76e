#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

/// Appends to one Kafka partition's log. One writer per partition, used from one thread.
///
/// Records are staged (`stage`), each framed with its CRC and chain hash, and written
/// with one `write` per `commit`; the fsync policy decides when they are synced. On open
/// the last segment is recovered: a torn tail is truncated, damage before it is an error.
package final class PartitionWriter {
    /// How the writer lays out and syncs the log.
    package struct Options: Sendable {
        package var fsync: FsyncPolicy
        /// A segment is sealed and a new one started once it would pass this size.
        package var maxSegmentBytes: Int
        /// The format of new segments: `.overDigests` (versions 3 and 4) unless a test
        /// writes an old log. A log whose last segment is of the other format is continued
        /// in a new segment, so no segment mixes the two.
        package var chain: LogChain
        /// A segment is also sealed once it has been written to for this long (nil: never
        /// by age), so time-based retention has sealed segments to remove on a quiet
        /// partition. Its age counts from when this writer created it or opened it.
        package var maxSegmentAgeMilliseconds: Int64?

        package init(
            fsync: FsyncPolicy = .batch, maxSegmentBytes: Int = 128 << 20, chain: LogChain = .overDigests, maxSegmentAgeMilliseconds: Int64? = nil
        ) {
            self.fsync = fsync
            self.maxSegmentBytes = maxSegmentBytes
            self.chain = chain
            self.maxSegmentAgeMilliseconds = maxSegmentAgeMilliseconds
        }
    }

    package let topic: String
    package let partition: Int32
    package let directory: String
    package let options: Options
    /// The Kafka offset of the last record written (nil for an empty log).
    package private(set) var lastOffset: Int64?
    /// The chain hash of the last record staged (zero for an empty log).
    package private(set) var chainHash: SHA256Digest
    /// Whether everything written has been synced.
    package private(set) var isSynced = true
    /// The offset of the last record staged or written (nil for an empty log): the next
    /// record's offset must be above it.
    package var lastStagedOffset: Int64? { stagedLastOffset ?? lastOffset }
    /// Whether records are staged and not written yet (`commit` has work to do).
    package var hasStagedRecords: Bool { !staged.isEmpty }

    private let logger: Logger
    private var segment: LogFile?
    private var segmentBase: Int64 = 0
    private var segmentSize = 0
    /// When this writer created or opened the live segment (for `maxSegmentAgeMilliseconds`).
    private var segmentStarted = ContinuousClock.now
    /// The format version of the segment written to.
    private var segmentVersion = LogFormat.version
    private var index: [IndexEntry] = []
    private var staged: [UInt8] = []
    private var stagedLastOffset: Int64?
    private var lastSync = ContinuousClock.now
    private var failure: EventLogError?

    /// Opens (creating if needed) the log of one partition in `directory` and recovers it.
    /// - Throws: `EventLogError` if the log is damaged before its tail or I/O fails.
    package init(directory: String, topic: String, partition: Int32, options: Options = Options(), logger: Logger = Logger(label: "event-log")) throws(EventLogError) {
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self.options = options
        self.logger = logger
        self.chainHash = .zero
        try LogFile.makeDirectories(directory)
        try recover()
    }

    deinit {
        if failure == nil, segment != nil, !staged.isEmpty || !isSynced {
            _ = try? commit()
            if options.fsync != .never { try? segment?.dataSync() }
        }
    }

    // MARK: - Appending

    /// Frames one record into the pending batch. Offsets must strictly increase.
    /// - Throws: `EventLogError` for an offset that does not increase, or I/O failure
    ///   (sealing a full segment, or `always` syncing each record).
    package func stage(
        kind: RecordKind = .event, offset: Int64, timestamp: Int64, key: UnsafeRawBufferPointer?,
        value: UnsafeRawBufferPointer?, reason: String = ""
    ) throws(EventLogError) {
        if let failure { throw failure }
        let previous = lastStagedOffset ?? -1
        guard offset > previous else {
            throw .invalidAppend("offset \(offset) is not above the last offset \(previous)", path: directory)
        }
        let recordLength =
            LogFormat.frameHeaderLength + LogFormat.fixedBodyLength + topic.utf8.count + (key?.count ?? 0)
            + (value?.count ?? 0) + reason.utf8.count
        guard recordLength - LogFormat.frameHeaderLength <= LogFormat.maxBodyLength else {
            throw .invalidAppend("record of \(recordLength) bytes is over the 16 MiB limit", path: directory)
        }
        // The reason's length is a 16-bit field (`DeadLetterReason` keeps reasons far shorter).
        guard reason.utf8.count <= Int(UInt16.max) else {
            throw .invalidAppend("a reason of \(reason.utf8.count) bytes is over the 65,535-byte limit", path: directory)
        }
        if kind == .gap { try checkGap(offset: offset, key: key, value: value, previous: previous) }
        do {
            let plainVersion = LogFormat.segmentVersion(gap: false, chain: options.chain)
            if kind == .gap {
                // A gap record starts a version 2 or 4 segment (see `RecordKind.gap`).
                let version = LogFormat.segmentVersion(gap: true, chain: options.chain)
                if segment == nil {
                    try createSegment(baseOffset: offset, version: version)
                } else {
                    try roll(nextBaseOffset: offset, version: version)
                }
            } else if segment == nil {
                try createSegment(baseOffset: offset, version: plainVersion)
            } else if LogFormat.chainsDigests(segmentVersion) != (options.chain == .overDigests)
                || (segmentSize + staged.count > header(baseOffset: segmentBase).length
                    && (segmentSize + staged.count + recordLength > options.maxSegmentBytes || segmentIsOld))
            {
                // Full or old enough, or of the other format (an old log continued by this build).
                try roll(nextBaseOffset: offset, version: plainVersion)
            }
            let position = segmentSize + staged.count
            if LogFormat.indexes(position: position, lastIndexed: index.last?.position) {
                index.append(IndexEntry(offset: offset, position: position))
            }
            chainHash = LogFormat.appendRecord(
                to: &staged, kind: kind, topic: topic, partition: partition, offset: offset, timestamp: timestamp,
                key: key, value: value, reason: reason, previousChainHash: chainHash,
                digests: LogFormat.chainsDigests(segmentVersion))
            stagedLastOffset = offset
            if options.fsync == .always {
                try writeStaged()
                try syncNow()
            }
        } catch {
            failure = error
            throw error
        }
    }

    /// Frames a gap record into the pending batch: the broker no longer had `gap`'s
    /// offsets. It starts a new segment (version 2) and stands at `gap.lastLostOffset`.
    /// - Throws: `EventLogError` if the gap does not start right after the last record
    ///   staged, or for I/O failure while starting the segment.
    package func stageGap(_ gap: LogGap) throws(EventLogError) {
        try withBytes(LogFormat.gapValue(gap)) { (value) throws(EventLogError) in
            try stage(kind: .gap, offset: gap.lastLostOffset, timestamp: -1, key: nil, value: value, reason: gap.reason)
        }
    }

    /// The rules a gap record must meet before it is written (`schemas/event-log.md`).
    private func checkGap(offset: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, previous: Int64) throws(EventLogError) {
        guard key == nil, let value, let gap = LogFormat.decodeGapValue(value) else {
            throw .invalidAppend("a gap record has no key and a \(LogFormat.gapValueLength)-byte value", path: directory)
        }
        guard gap.last == offset, gap.first == previous + 1, gap.first <= gap.last, gap.brokerLogStart == gap.last + 1 else {
            throw .invalidAppend(
                "gap \(gap.first)..\(gap.last) (broker log start \(gap.brokerLogStart)) at offset \(offset) does not follow offset \(previous)",
                path: directory)
        }
    }

    /// Frames one owned record into the pending batch (its topic, partition and chain hash are ignored).
    package func stage(_ record: LogRecord) throws(EventLogError) {
        try withOptionalBytes(record.key) { (key) throws(EventLogError) in
            try withOptionalBytes(record.value) { (value) throws(EventLogError) in
                try stage(kind: record.kind, offset: record.offset, timestamp: record.timestamp, key: key, value: value, reason: record.reason)
            }
        }
    }

    /// Writes the pending batch with one `write` and syncs it as the policy says.
    /// - Returns: whether everything written so far is on disk (`fdatasync` done).
    @discardableResult
    package func commit() throws(EventLogError) -> Bool {
        if let failure { throw failure }
        do {
            try writeStaged()
            switch options.fsync {
            case .always, .batch:
                if !isSynced { try syncNow() }
            case .interval(let milliseconds):
                if !isSynced, ContinuousClock.now - lastSync >= .milliseconds(milliseconds) { try syncNow() }
            case .never:
                break
            }
            return isSynced
        } catch {
            failure = error
            throw error
        }
    }

    /// Stages and commits `records`; returns whether they are on disk.
    @discardableResult
    package func append(_ records: [LogRecord]) throws(EventLogError) -> Bool {
        for record in records { try stage(record) }
        return try commit()
    }

    /// Writes the pending batch and forces everything to disk, whatever the policy.
    package func sync() throws(EventLogError) {
        if let failure { throw failure }
        try writeStaged()
        if !isSynced { try syncNow() }
    }

    // MARK: - Redaction

    /// Applies an erasure to the log written so far: in every segment up to the erasure
    /// record at `erasureOffset`, the fields `select` names of each record at or before it
    /// are replaced by redaction markers that keep their digests (so the chain holds).
    /// Idempotent: fields already redacted stay as they are. Records in version 1/2
    /// segments cannot be redacted (their chain covers the bytes) and are counted instead.
    /// Each segment is rewritten beside itself and renamed over it; the writer then
    /// reopens its last segment.
    /// - Throws: `EventLogError` for I/O failure or a damaged segment.
    package func redact(
        erasureOffset: Int64, _ select: (RecordView) -> RedactedFields
    ) throws(EventLogError) -> (redacted: Int, unredactable: Int) {
        if let failure { throw failure }
        try sync()
        let redactor = SegmentRedactor(directory: directory, topic: topic, partition: partition)
        var redacted = 0
        var unredactable = 0
        let bases = try Self.segmentBases(in: directory)
        for (position, base) in bases.enumerated() where base <= erasureOffset {
            let sealed = position < bases.count - 1
            let outcome = try redactor.redact(base: base, sealed: sealed, erasureOffset: erasureOffset, select: select)
            redacted += outcome.redacted
            unredactable += outcome.unredactable
        }
        if redacted > 0 {
            segment = nil  // the file was replaced: reopen the new one
            try recover()
        }
        return (redacted, unredactable)
    }

    // MARK: - Segments

    private func header(baseOffset: Int64, version: UInt16 = LogFormat.version) -> LogFormat.SegmentHeader {
        LogFormat.SegmentHeader(version: version, partition: partition, baseOffset: baseOffset, previousChainHash: chainHash, topic: topic)
    }

    private func segmentPath(_ baseOffset: Int64) -> String { directory + "/" + LogFormat.segmentFileName(baseOffset: baseOffset) }
    private func indexPath(_ baseOffset: Int64) -> String { directory + "/" + LogFormat.indexFileName(baseOffset: baseOffset) }

    private func writeStaged() throws(EventLogError) {
        guard !staged.isEmpty, let segment else { return }
        try segment.write(staged)
        segmentSize += staged.count
        staged.removeAll(keepingCapacity: true)
        isSynced = false
        lastOffset = stagedLastOffset
    }

    private func syncNow() throws(EventLogError) {
        try segment?.dataSync()
        isSynced = true
        lastSync = .now
    }

    /// A new segment: header written and synced, directory synced, before any record.
    private func createSegment(baseOffset: Int64, version: UInt16) throws(EventLogError) {
        let path = segmentPath(baseOffset)
        let file = try LogFile.openForAppending(path, create: true)
        let header = header(baseOffset: baseOffset, version: version)
        try file.write(header.encoded())
        try file.dataSync()
        try LogFile.syncDirectory(directory)
        segment = file
        segmentBase = baseOffset
        segmentSize = header.length
        segmentStarted = .now
        segmentVersion = version
        index = []
    }

    /// Whether the live segment has been written to for longer than `maxSegmentAgeMilliseconds`.
    private var segmentIsOld: Bool {
        guard let limit = options.maxSegmentAgeMilliseconds else { return false }
        return ContinuousClock.now - segmentStarted >= .milliseconds(limit)
    }

    /// Seals the current segment (records synced, index written) and starts the next.
    private func roll(nextBaseOffset: Int64, version: UInt16) throws(EventLogError) {
        try writeStaged()
        try syncNow()
        try LogFile.writeAtomically(indexPath(segmentBase), LogFormat.encodeIndex(index))
        try createSegment(baseOffset: nextBaseOffset, version: version)
    }

    // MARK: - Recovery

    /// Base offsets of the segments in `directory`, ascending, from the retention base on
    /// (segments before it are left from an interrupted removal: no longer part of the log).
    static func segmentBases(in directory: String) throws(EventLogError) -> [Int64] {
        let all = try allSegmentBases(in: directory)
        guard let base = try LogFormat.readRetentionBase(directory: directory) else { return all }
        return all.filter { $0 >= base.baseOffset }
    }

    /// How many segment files `directory` holds (for tests and tools).
    package static func segmentCount(in directory: String) throws(EventLogError) -> Int { try allSegmentBases(in: directory).count }

    /// Base offsets of every segment file in `directory`, ascending, including any before the retention base.
    static func allSegmentBases(in directory: String) throws(EventLogError) -> [Int64] {
        try LogFile.list(directory).compactMap { LogFormat.baseOffset(fileName: $0, suffix: ".seg") }.sorted()
    }

    private func recover() throws(EventLogError) {
        var bases = try Self.segmentBases(in: directory)
        while let base = bases.last {
            let path = segmentPath(base)
            // The link to the previous segment: its last offset and chain hash.
            var previous: (offset: Int64?, chain: SHA256Digest)?
            if bases.count > 1 {
                previous = try Self.tail(of: bases[bases.count - 2], in: directory, topic: topic, partition: partition)
            }
            switch try SegmentScan.scan(
                path, topic: topic, partition: partition, previousChainHash: previous?.chain,
                previousOffset: previous?.offset)
            {
            case .incompleteHeader:
                logger.warning("removing a segment whose creation was interrupted", ["path": path])
                try removeSegment(base, reopenPrevious: bases.count > 1 ? bases[bases.count - 2] : nil)
                bases.removeLast()
                continue
            case .invalidHeader(let reason):
                throw .corruption(reason, path: path, byteOffset: 0, kafkaOffset: nil)
            case .scanned(var summary):
                if case .corrupt(let position, let offset, let reason) = summary.damage {
                    throw .corruption(reason, path: path, byteOffset: position, kafkaOffset: offset)
                }
                if case .tornTail(let position, let reason) = summary.damage {
                    logger.warning(
                        "truncating a torn tail", ["path": path, "byte": position, "bytes": summary.fileSize - position,
                                                   "reason": reason, "last_offset": summary.lastOffset ?? -1])
                    let file = try LogFile.openForAppending(path, create: false)
                    try file.truncate(to: position)
                    try file.dataSync()
                    summary.fileSize = position
                }
                if summary.recordCount == 0 {
                    logger.notice("removing an empty last segment", ["path": path])
                    try removeSegment(base, reopenPrevious: bases.count > 1 ? bases[bases.count - 2] : nil)
                    bases.removeLast()
                    continue
                }
                segment = try LogFile.openForAppending(path, create: false)
                segmentBase = base
                segmentSize = summary.endPosition
                segmentVersion = summary.header.version
                index = summary.index
                lastOffset = summary.lastOffset
                chainHash = summary.lastChainHash
                return
            }
        }
    }

    /// Removes a segment (and the stale index of the one before, which becomes active again).
    private func removeSegment(_ base: Int64, reopenPrevious previous: Int64?) throws(EventLogError) {
        try LogFile.remove(segmentPath(base))
        if let previous, access(indexPath(previous), F_OK) == 0 { try LogFile.remove(indexPath(previous)) }
        try LogFile.syncDirectory(directory)
    }

    /// The last offset and chain hash of a sealed segment, read from its last index entry on.
    static func tail(of base: Int64, in directory: String, topic: String, partition: Int32) throws(EventLogError) -> (offset: Int64?, chain: SHA256Digest) {
        let path = directory + "/" + LogFormat.segmentFileName(baseOffset: base)
        let entries = (try? LogFile.readAll(directory + "/" + LogFormat.indexFileName(baseOffset: base))).flatMap(LogFormat.decodeIndex)
        var outcome = try SegmentScan.scan(
            path, topic: topic, partition: partition, previousChainHash: nil, previousOffset: nil, from: entries?.last)
        if case .scanned(let summary) = outcome, summary.damage != nil, entries != nil {
            // A stale or wrong index: scan the whole segment instead.
            outcome = try SegmentScan.scan(path, topic: topic, partition: partition, previousChainHash: nil, previousOffset: nil)
        }
        switch outcome {
        case .scanned(let summary):
            if let damage = summary.damage {
                let (position, reason): (Int, String) =
                    switch damage {
                    case .tornTail(let position, let reason): (position, "sealed segment ends in a partial record: " + reason)
                    case .corrupt(let position, _, let reason): (position, reason)
                    }
                throw .corruption(reason, path: path, byteOffset: position, kafkaOffset: summary.lastOffset)
            }
            return (summary.lastOffset, summary.lastChainHash)
        case .incompleteHeader:
            throw .corruption("sealed segment has an incomplete header", path: path, byteOffset: 0, kafkaOffset: nil)
        case .invalidHeader(let reason):
            throw .corruption(reason, path: path, byteOffset: 0, kafkaOffset: nil)
        }
    }
}

private func withOptionalBytes<Result>(
    _ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws(EventLogError) -> Result
) throws(EventLogError) -> Result {
    guard let bytes else { return try body(nil) }
    return try withBytes(bytes) { (raw) throws(EventLogError) in try body(raw) }
}
