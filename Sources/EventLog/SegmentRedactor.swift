#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

/// Rewrites one segment with some records' fields replaced by redaction markers (an
/// erasure, see `schemas/event-log.md`). The new file is written beside the old, synced
/// and renamed over it, so a crash leaves the old segment or the new one, never a mix;
/// a sealed segment's index follows the same way.
struct SegmentRedactor {
    /// What a rewrite did.
    struct Outcome {
        /// Records given new redactions.
        var redacted = 0
        /// Records named in a version 1/2 segment, which cannot be redacted (their chain
        /// covers the bytes): left as they are.
        var unredactable = 0
    }

    let directory: String
    let topic: String
    let partition: Int32

    /// Redacts, in the segment starting at `base`, the fields `select` names of each record
    /// at or before `erasureOffset`. `sealed`: the segment has an index to rewrite too.
    func redact(
        base: Int64, sealed: Bool, erasureOffset: Int64, select: (RecordView) -> RedactedFields
    ) throws(EventLogError) -> Outcome {
        let path = directory + "/" + LogFormat.segmentFileName(baseOffset: base)
        var scanner: SegmentScanner
        switch try SegmentScanner.open(path) {
        case .incompleteHeader: throw .corruption("segment header is incomplete", path: path, byteOffset: 0, kafkaOffset: nil)
        case .invalidHeader(let reason): throw .corruption(reason, path: path, byteOffset: 0, kafkaOffset: nil)
        case .scanner(let opened): scanner = opened
        }
        let digests = LogFormat.chainsDigests(scanner.header.version)
        var outcome = Outcome()
        var bytes = scanner.header.encoded()
        var index: [IndexEntry] = []
        var changed = false
        scan: while true {
            switch try scanner.next() {
            case .end:
                break scan
            case .incomplete(let position), .invalid(let position, _):
                throw .corruption("segment to redact is damaged", path: path, byteOffset: position, kafkaOffset: nil)
            case .record(let record, _):
                let position = bytes.count
                if LogFormat.indexes(position: position, lastIndexed: index.last?.position) {
                    index.append(IndexEntry(offset: record.offset, position: position))
                }
                var redact: RedactedFields = []
                if record.offset <= erasureOffset, record.kind != .gap {
                    redact = select(record).intersection(record.presentFields).subtracting(record.redacted)
                }
                if !redact.isEmpty && !digests {
                    outcome.unredactable += 1
                    redact = []
                }
                if !redact.isEmpty {
                    outcome.redacted += 1
                    changed = true
                }
                LogFormat.appendRedacted(to: &bytes, record, redact: redact, erasureOffset: erasureOffset)
            }
        }
        guard changed else { return outcome }
        // The rewritten segment keeps its modification time: retention ages segments by it
        // (`LogRetention`), and a redaction does not make old records new.
        var before = stat()
        let hadTime = stat(path, &before) == 0
        try LogFile.writeAtomically(path, bytes)
        if hadTime {
            var times = [timespec(tv_sec: before.st_atim.tv_sec, tv_nsec: before.st_atim.tv_nsec), before.st_mtim]
            _ = utimensat(AT_FDCWD, path, &times, 0)  // best effort: an age reset only keeps the segment longer
        }
        if sealed {
            try LogFile.writeAtomically(directory + "/" + LogFormat.indexFileName(baseOffset: base), LogFormat.encodeIndex(index))
        }
        return outcome
    }
}
