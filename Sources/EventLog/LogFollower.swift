#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

/// Follows one partition's log while another process writes it (the query worker's view
/// of what `ingest` appends): delivers each whole record once, in order, never a partial
/// one, and sleeps on inotify until the directory changes (a short poll where inotify is
/// unavailable or the directory does not exist yet).
///
/// Used from one thread.
package final class LogFollower {
    package let directory: String
    package let topic: String
    package let partition: Int32
    /// The offset the next delivered record will be at least.
    package private(set) var nextOffset: Int64

    private var segmentBase: Int64?
    private var scanner: SegmentScanner?
    private let watcher = LogWatcher()

    /// Starts following at `offset` (0: from the beginning).
    package init(directory: String, topic: String, partition: Int32, from offset: Int64 = 0) {
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self.nextOffset = offset
    }

    /// Delivers every whole record available now (offset ≥ `nextOffset`); returns how many.
    /// - Throws: `EventLogError` for damage the writer would refuse too (a partial or
    ///   invalid record in a sealed segment), or what `body` throws.
    @discardableResult
    package func poll(_ body: (RecordView) throws -> Void) throws -> Int {
        var delivered = 0
        var stuckAt: Int?
        while true {
            if scanner == nil, try !openSegment() { return delivered }
            guard var current = scanner, let base = segmentBase else { return delivered }
            try current.refreshSize()
            let step = try current.next()
            scanner = current
            switch step {
            case .record(let record, _):
                stuckAt = nil
                if record.offset >= nextOffset {
                    try body(record)
                    nextOffset = record.offset + 1
                    delivered += 1
                }
            case .end, .incomplete, .invalid:
                if case .end = step, access(directory + "/" + LogFormat.segmentFileName(baseOffset: nextOffset), F_OK) == 0 {
                    reset()
                    if try !openSegment(after: base) { return delivered }
                    continue
                }
                // Only whether this segment is still there and a newer one exists: the plain
                // listing (this runs at every end of the live segment; the retention base
                // file need not be read for it).
                let bases = try PartitionWriter.allSegmentBases(in: directory)
                guard bases.contains(base) else {
                    reset()  // the writer's recovery removed this segment: find our place again
                    continue
                }
                // An erasure rewrote the segment (a new file renamed over it; positions
                // moved): read the new one from its start, skipping what was delivered.
                if current.file.isReplaced() {
                    reset()
                    continue
                }
                // The last segment is live: whatever is not a whole record yet may become one.
                guard bases.contains(where: { $0 > base }) else { return delivered }
                // A newer segment exists, so this one is sealed: the writer finishes a
                // segment before it creates the next. But it may have grown and been sealed
                // after we read its size, so read it once more (the loop reads the size
                // again) before moving on; leaving at the first end skipped the records
                // written in between (caught by LogFollowerTests under load).
                guard stuckAt == current.position else {
                    stuckAt = current.position
                    continue
                }
                stuckAt = nil
                if case .end = step {
                    reset()
                    if try !openSegment(after: base) { return delivered }
                    continue
                }
                throw EventLogError.corruption(
                    "a sealed segment ends in bytes that are not a whole record",
                    path: directory + "/" + LogFormat.segmentFileName(baseOffset: base), byteOffset: current.position,
                    kafkaOffset: nextOffset - 1)
            }
        }
    }

    /// Blocks until the partition directory changes or `timeoutMilliseconds` pass (a
    /// short poll while the directory does not exist yet). To wait on many partitions at
    /// once, watch their directories with one `LogWatcher` instead.
    package func waitForChanges(timeoutMilliseconds: Int32) {
        watcher.watch(directory)
        watcher.waitForChanges(timeoutMilliseconds: timeoutMilliseconds)
    }

    private func reset() {
        scanner = nil
        segmentBase = nil
    }

    /// Opens the segment holding `nextOffset` (or the first after `after`); false if none yet.
    private func openSegment(after previous: Int64? = nil) throws -> Bool {
        let base: Int64?
        if previous != nil, access(directory + "/" + LogFormat.segmentFileName(baseOffset: nextOffset), F_OK) == 0 {
            base = nextOffset  // offsets are usually contiguous: no directory listing needed
        } else {
            let bases = try PartitionWriter.segmentBases(in: directory)
            if let previous {
                base = bases.first { $0 > previous }
            } else {
                base = bases.last { $0 <= nextOffset } ?? bases.first
            }
        }
        guard let base else { return false }
        switch try SegmentScanner.open(directory + "/" + LogFormat.segmentFileName(baseOffset: base)) {
        case .incompleteHeader:
            return false  // being created right now
        case .invalidHeader(let reason):
            throw EventLogError.corruption(reason, path: directory + "/" + LogFormat.segmentFileName(baseOffset: base), byteOffset: 0, kafkaOffset: nil)
        case .scanner(let opened):
            scanner = opened
            segmentBase = base
            return true
        }
    }
}
