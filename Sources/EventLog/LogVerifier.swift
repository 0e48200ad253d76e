import LedgerSupport

/// What `LogVerifier` found: a summary per partition and every problem, located.
package struct LogVerification: Sendable {
    /// One broken rule, with where it is.
    package struct Problem: Sendable, CustomStringConvertible {
        package var path: String
        package var byteOffset: Int?
        /// The offset of the bad record (a damaged one's as it states it), or of the last good
        /// one before it; the message says which when the record is damaged.
        package var kafkaOffset: Int64?
        package var message: String

        package init(path: String, byteOffset: Int?, kafkaOffset: Int64?, message: String) {
            self.path = path
            self.byteOffset = byteOffset
            self.kafkaOffset = kafkaOffset
            self.message = message
        }

        package var description: String {
            var location = path
            if let byteOffset { location += " byte \(byteOffset)" }
            if let kafkaOffset { location += " offset \(kafkaOffset)" }
            return "\(location): \(message)"
        }
    }

    package struct PartitionSummary: Sendable {
        package var topic: String
        package var partition: Int32
        package var segments = 0
        package var records = 0
        package var events = 0
        package var deadLetters = 0
        /// Gap records: ranges the broker had lost when ingest asked for them.
        package var gaps = 0
        /// Offsets those gaps cover.
        package var lostRecords: Int64 = 0
        package var firstOffset: Int64?
        package var lastOffset: Int64?
        package var firstTimestamp: Int64?
        package var lastTimestamp: Int64?
        package var bytes = 0
        /// The chain hash of the last good record.
        package var lastChainHash = SHA256Digest.zero
        /// Records an erasure redacted (their values replaced by markers that keep digests).
        package var redactedRecords = 0
        /// The retention base: the log holds nothing before this offset (nil: nothing was removed).
        package var retainedFrom: Int64?
        /// Segments per format version (1 and 2 chain over bodies, 3 and 4 over digests).
        package var segmentsByVersion: [UInt16: Int] = [:]
    }

    /// One erasure of the log and how many records it redacted.
    package struct ErasureSummary: Sendable, CustomStringConvertible {
        package var erasure: LogErasure
        package var redactedRecords: Int

        /// `erasure partition 3 offset 1200 (device sha256:…): 4211 records redacted`.
        package var description: String {
            "erasure partition \(erasure.partition) offset \(erasure.offset) (\(erasure.scope.rawValue) erasure, device sha256:"
                + "\(erasure.deviceDigest?.hex ?? "?")): \(redactedRecords) records redacted"
        }

        /// The summary as a JSON-ready object (for `verify --json`).
        package var jsonObject: [String: any Sendable] {
            [
                "partition": Int(erasure.partition), "offset": erasure.offset, "scope": erasure.scope.rawValue,
                "device": "sha256:" + (erasure.deviceDigest?.hex ?? ""), "redactedRecords": redactedRecords,
            ]
        }
    }

    package var partitions: [PartitionSummary] = []
    package var problems: [Problem] = []
    /// Every gap record, in partition and offset order. A gap is no broken rule (the log
    /// says truthfully what it lacks), so `isClean` does not count it; `verify --strict` does.
    package var gaps: [LogGap] = []
    /// Dead letters by reason code (`DeadLetterReason.code`).
    package var deadLettersByReason: [String: Int] = [:]
    /// Every erasure record, in partition and offset order, with the records it redacted.
    package var erasures: [ErasureSummary] = []

    /// True when every rule holds.
    package var isClean: Bool { problems.isEmpty }
}

/// Checks a whole log against the rules of `schemas/event-log.md`: every segment header,
/// every CRC, topic and partition, offsets strictly increasing, every chain hash, every
/// index. Reads everything; changes nothing.
package enum LogVerifier {
    private typealias Redaction = (
        offset: Int64, erasure: Int64?, fields: RedactedFields, present: RedactedFields, keyDigest: SHA256Digest?
    )

    package static func verify(_ log: EventLog) throws(EventLogError) -> LogVerification {
        var verification = LogVerification()
        for (topic, partition) in try log.partitions() {
            verification.partitions.append(
                try verifyPartition(log.directory(topic: topic, partition: partition), topic: topic, partition: partition, into: &verification))
        }
        return verification
    }

    private static func verifyPartition(
        _ directory: String, topic: String, partition: Int32, into verification: inout LogVerification
    ) throws(EventLogError) -> LogVerification.PartitionSummary {
        var summary = LogVerification.PartitionSummary(topic: topic, partition: partition)
        let bases = try PartitionWriter.segmentBases(in: directory)
        // After retention the chain is checked from the retention base: the first kept
        // segment starts there and links to the last removed record's chain hash.
        let retentionBase = try LogFormat.readRetentionBase(directory: directory)
        summary.retainedFrom = retentionBase?.baseOffset
        var previousChain: SHA256Digest? = retentionBase?.previousChainHash ?? .zero
        // Erasures and redactions, checked against each other once the partition is read.
        var erasures: [Int64: LogErasure] = [:]
        var redactions: [Redaction] = []
        var firstPlainKeyOffset: [SHA256Digest: Int64] = [:]
        var firstPath = ""
        func problem(_ path: String, _ byte: Int?, _ offset: Int64?, _ message: String) {
            verification.problems.append(.init(path: path, byteOffset: byte, kafkaOffset: offset, message: message))
        }
        for (segmentIndex, base) in bases.enumerated() {
            let isLast = segmentIndex == bases.count - 1
            let path = directory + "/" + LogFormat.segmentFileName(baseOffset: base)
            summary.segments += 1
            if firstPath.isEmpty { firstPath = path }
            var reasons: [String: Int] = [:]
            var events = 0
            var deadLetters = 0
            var gaps: [LogGap] = []
            var firstTimestamp: Int64?
            var lastTimestamp: Int64?
            var segmentPlainKeyOffset: [SHA256Digest: Int64] = [:]
            let outcome = try SegmentScan.scan(
                path, topic: topic, partition: partition, previousChainHash: previousChain,
                previousOffset: summary.lastOffset
            ) { record in
                if let erasure = LogErasure(record) {
                    erasures[record.offset] = erasure
                }
                if record.isRedacted {
                    redactions.append((record.offset, record.erasureOffset, record.redacted, record.presentFields, record.keyDigest))
                } else if let key = record.key {
                    let digest = LogFormat.fieldDigest(key)
                    if segmentPlainKeyOffset[digest] == nil { segmentPlainKeyOffset[digest] = record.offset }
                }
                if record.kind == .event {
                    events += 1
                } else if record.kind == .gap {
                    if let gap = LogGap(record) { gaps.append(gap) }  // a malformed one is a problem the scan reports
                } else {
                    deadLetters += 1
                    reasons[DeadLetterReason(parsing: String(decoding: record.reason, as: UTF8.self)).code, default: 0] += 1
                }
                if record.timestamp >= 0 {
                    if firstTimestamp == nil { firstTimestamp = record.timestamp }
                    lastTimestamp = record.timestamp
                }
            }
            switch outcome {
            case .incompleteHeader:
                problem(path, 0, summary.lastOffset, "segment header is incomplete" + (isLast ? " (an interrupted segment creation; the writer removes it on open)" : ""))
                previousChain = nil
                continue
            case .invalidHeader(let reason):
                problem(path, 0, summary.lastOffset, reason)
                previousChain = nil
                continue
            case .scanned(let segment):
                summary.segmentsByVersion[segment.header.version, default: 0] += 1
                if segmentIndex == 0, let retentionBase, base != retentionBase.baseOffset {
                    problem(path, 0, nil, "the first segment does not start at the retention base \(retentionBase.baseOffset)")
                }
                // Only version 3/4 records can be redacted: whole records of older segments are no finding.
                if LogFormat.chainsDigests(segment.header.version) {
                    firstPlainKeyOffset.merge(segmentPlainKeyOffset) { first, _ in first }
                }
                if segment.header.baseOffset != base {
                    problem(path, 0, nil, "header base offset \(segment.header.baseOffset) does not match the file name")
                }
                switch segment.damage {
                case .corrupt(let position, let offset, let reason)?:
                    problem(path, position, offset, reason)
                case .tornTail(let position, let reason)?:
                    problem(
                        path, position, segment.lastOffset,
                        isLast
                            ? "torn tail of \(segment.fileSize - position) bytes (\(reason)); a crash leaves this, the writer truncates it on open"
                            : "sealed segment ends in \(reason): truncated")
                case nil:
                    try checkIndex(directory, base: base, expected: segment.index, isLast: isLast, problem: problem)
                }
                summary.records += segment.recordCount
                summary.events += events
                summary.deadLetters += deadLetters
                summary.gaps += gaps.count
                summary.lostRecords += gaps.reduce(0) { $0 + $1.lostRecords }
                verification.gaps += gaps
                summary.bytes += segment.endPosition
                if summary.firstOffset == nil { summary.firstOffset = segment.firstOffset }
                if let last = segment.lastOffset { summary.lastOffset = last }
                if summary.firstTimestamp == nil { summary.firstTimestamp = firstTimestamp }
                if let lastTimestamp { summary.lastTimestamp = lastTimestamp }
                summary.lastChainHash = segment.lastChainHash
                for (reason, count) in reasons { verification.deadLettersByReason[reason, default: 0] += count }
                // After damage inside a segment, continue from the next header's own word, so
                // one problem is reported once rather than again at every following record.
                // After a truncation the next header's link is checked: it shows what is missing.
                if case .corrupt? = segment.damage {
                    previousChain = nil
                } else {
                    previousChain = segment.lastChainHash
                }
            }
        }
        let checked = checkRedactions(erasures: erasures, redactions: redactions, firstPlainKeyOffset: firstPlainKeyOffset)
        for (offset, message) in checked.problems { problem(firstPath, nil, offset, message) }
        verification.erasures += checked.erasures
        summary.redactedRecords = checked.erasures.reduce(0) { $0 + $1.redactedRecords }
        return summary
    }

    /// Every redaction names an erasure record at or after it; an erasure record's own
    /// key is redacted by itself; and before a device erasure no record of the device is
    /// left whole (a value put back is found here: the chain alone cannot tell, as the
    /// marker keeps the digest the chain covers).
    private static func checkRedactions(
        erasures: [Int64: LogErasure], redactions: [Redaction],
        firstPlainKeyOffset: [SHA256Digest: Int64]
    ) -> (erasures: [LogVerification.ErasureSummary], problems: [(Int64, String)]) {
        var problems: [(Int64, String)] = []
        func problem(_ offset: Int64, _ message: String) { problems.append((offset, message)) }
        var summaries: [LogVerification.ErasureSummary] = []
        var counts: [Int64: Int] = [:]
        for redaction in redactions {
            guard let erasureOffset = redaction.erasure, let erasure = erasures[erasureOffset], erasureOffset >= redaction.offset else {
                problem(redaction.offset, "redacted record names no erasure record of this partition at or after it")
                continue
            }
            // A marker names an erasure of its own record's device (the key, whole or
            // redacted, keeps the device id's digest): one moved to another device's erasure
            // is found here.
            if let device = erasure.deviceDigest, let key = redaction.keyDigest, key != device {
                problem(redaction.offset, "redacted record names the erasure at offset \(erasureOffset), which erased another device")
            }
            if erasure.scope == .device, erasureOffset != redaction.offset, redaction.keyDigest == erasure.deviceDigest,
                redaction.fields != redaction.present
            {
                problem(redaction.offset, "record of an erased device is only partly redacted (\(redaction.fields.rawValue))")
            }
            if erasureOffset != redaction.offset { counts[erasureOffset, default: 0] += 1 }
        }
        for (offset, erasure) in erasures.sorted(by: { $0.key < $1.key }) {
            if !redactions.contains(where: { $0.offset == offset && $0.fields.contains(.key) && $0.erasure == offset }) {
                problem(offset, "erasure record's key (the device id) is not redacted")
            }
            if erasure.scope == .device, let device = erasure.deviceDigest, let first = firstPlainKeyOffset[device], first < offset {
                problem(first, "record of the device erased at offset \(offset) is not redacted")
            }
            summaries.append(.init(erasure: erasure, redactedRecords: counts[offset] ?? 0))
        }
        return (summaries, problems)
    }

    private static func checkIndex(
        _ directory: String, base: Int64, expected: [IndexEntry], isLast: Bool,
        problem: (String, Int?, Int64?, String) -> Void
    ) throws(EventLogError) {
        let path = directory + "/" + LogFormat.indexFileName(baseOffset: base)
        guard let bytes = try? LogFile.readAll(path) else {
            if !isLast { problem(path, nil, nil, "sealed segment has no index (derived data; rebuilt when needed)") }
            return
        }
        guard let entries = LogFormat.decodeIndex(bytes) else {
            problem(path, nil, nil, "index is damaged")
            return
        }
        if entries != expected {
            let first = (0..<min(entries.count, expected.count)).first { entries[$0] != expected[$0] } ?? min(entries.count, expected.count)
            problem(path, 14 + 16 * first, first < entries.count ? entries[first].offset : nil, "index does not match its segment (entry \(first))")
        }
    }
}
