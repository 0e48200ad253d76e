#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LedgerSupport

/// Removes a partition's oldest segments as a `RetentionPolicy` says, keeping the log
/// verifiable: the retention base (see `RetentionBase`) is written first, naming the first
/// segment kept and the chain hash it links to, then the segments before it are removed.
/// A crash in between leaves segments before the base, which are no longer part of the
/// log (readers and `verify` start at the base) and are removed by the next run.
package struct LogRetention: Sendable {
    /// What one run removed.
    package struct Outcome: Sendable {
        package var removedSegments = 0
        package var removedBytes: Int64 = 0
        /// The partition's base after the run (nil: nothing was ever removed).
        package var base: RetentionBase?
        /// Why the archive command refused a segment, if it did.
        package var archiveFailure: String?
        /// Segments due for removal that wait for the archiver (`SegmentArchiver`).
        package var archivePending = 0
    }

    package let policy: RetentionPolicy
    /// Runs the archive command off the caller's thread; nil: it runs on the caller's thread
    /// (`chatledger` passes one whenever `--archive-command` is given).
    package let archiver: SegmentArchiver?

    package init(policy: RetentionPolicy, archiver: SegmentArchiver? = nil) {
        self.policy = policy
        self.archiver = archiver
    }

    /// Applies the policy to one partition of `log`. Only sealed segments whose every
    /// record is at or before `keepAfter` (the partition's position in the newest
    /// checkpoint) are removed.
    /// - Parameter now: the clock, ms since the epoch (segments' ages are their files' mtimes).
    /// - Throws: `EventLogError` for I/O failure.
    package func enforce(log: EventLog, topic: String, partition: Int32, keepAfter: Int64, now: Int64) throws(EventLogError) -> Outcome {
        try enforce(directory: log.directory(topic: topic, partition: partition), topic: topic, partition: partition, keepAfter: keepAfter, now: now)
    }

    /// `enforce(log:topic:partition:keepAfter:now:)` for the partition log in `directory`.
    package func enforce(directory: String, topic: String, partition: Int32, keepAfter: Int64, now: Int64) throws(EventLogError) -> Outcome {
        var outcome = Outcome()
        outcome.base = try LogFormat.readRetentionBase(directory: directory)
        // Leftovers of an interrupted run first.
        if let base = outcome.base {
            for leftover in try PartitionWriter.allSegmentBases(in: directory) where leftover < base.baseOffset {
                outcome.removedBytes += try removeSegment(directory, leftover)
                outcome.removedSegments += 1
            }
        }
        guard policy.isEnabled else { return outcome }
        let bases = try PartitionWriter.allSegmentBases(in: directory).filter { $0 >= outcome.base?.baseOffset ?? .min }  // base read above
        var total = (try LogFile.list(directory)).reduce(Int64(0)) { $0 + fileSize(directory + "/" + $1) }
        var remove = 0  // segments bases[0..<remove] go
        var due = 0  // and bases[remove..<due] wait for the archiver
        // Sealed segments (never the last) whose records all stand at or before `keepAfter`.
        while due < bases.count - 1, bases[due + 1] - 1 <= keepAfter {
            let path = segmentPath(directory, bases[due])
            var info = stat()
            guard stat(path, &info) == 0 else { break }
            let size = Int64(info.st_size) + fileSize(indexPath(directory, bases[due]))
            let ageMilliseconds = now - (Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000)
            let tooOld = policy.maxAgeMilliseconds.map { ageMilliseconds > $0 } ?? false
            let tooBig = policy.maxBytes.map { total > $0 } ?? false
            guard tooOld || tooBig else { break }
            if let command = policy.archiveCommand {
                if let archiver {
                    // Only a prefix of archived segments can go; the rest are queued meanwhile.
                    switch archiver.status(of: path) {
                    case .archived?:
                        if remove == due { remove += 1 }
                    case .failed(let failure)?:
                        outcome.archiveFailure = failure
                        break
                    case .waiting?, nil:
                        archiver.request(path)
                    }
                    if outcome.archiveFailure != nil { break }
                } else if let failure = archive(command, path) {
                    outcome.archiveFailure = failure
                    break
                } else {
                    remove += 1
                }
            } else {
                remove += 1
            }
            total -= size
            due += 1
        }
        outcome.archivePending = due - remove
        guard remove > 0 else { return outcome }
        // The new base: the first kept segment, and what its header links to.
        let keptPath = segmentPath(directory, bases[remove])
        guard case .scanner(let kept) = try SegmentScanner.open(keptPath, bufferSize: 4096) else {
            throw .corruption("segment to keep has no valid header", path: keptPath, byteOffset: 0, kafkaOffset: nil)
        }
        var removedUpTo = outcome.base?.removedUpToTimestamp ?? -1
        for base in bases[..<remove] {
            _ = try SegmentScan.scan(
                segmentPath(directory, base), topic: topic, partition: partition, previousChainHash: nil, previousOffset: nil
            ) { record in
                removedUpTo = max(removedUpTo, record.timestamp)
            }
        }
        let base = RetentionBase(baseOffset: bases[remove], previousChainHash: kept.header.previousChainHash, removedUpToTimestamp: removedUpTo)
        try LogFile.writeAtomically(directory + "/" + LogFormat.retentionBaseFileName, LogFormat.encodeRetentionBase(base))
        for removed in bases[..<remove] {
            outcome.removedBytes += try removeSegment(directory, removed)
            outcome.removedSegments += 1
            archiver?.forget(segmentPath(directory, removed))
        }
        outcome.base = base
        return outcome
    }

    private func segmentPath(_ directory: String, _ base: Int64) -> String { directory + "/" + LogFormat.segmentFileName(baseOffset: base) }
    private func indexPath(_ directory: String, _ base: Int64) -> String { directory + "/" + LogFormat.indexFileName(baseOffset: base) }

    private func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// Removes a segment and its index (the segment last: an index without its segment is ignored); returns the bytes freed.
    private func removeSegment(_ directory: String, _ base: Int64) throws(EventLogError) -> Int64 {
        let bytes = fileSize(segmentPath(directory, base)) + fileSize(indexPath(directory, base))
        for path in [indexPath(directory, base), segmentPath(directory, base)] where access(path, F_OK) == 0 {
            try LogFile.remove(path)
        }
        try LogFile.syncDirectory(directory)
        return bytes
    }

    /// Runs the archive command with the segment's path; nil on success, else why not.
    private func archive(_ command: String, _ path: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command + " \"$1\"", "sh", path]
        do {
            try process.run()
        } catch {
            return "archive command could not start: \(error)"
        }
        process.waitUntilExit()
        return process.terminationStatus == 0 ? nil : "archive command exited with \(process.terminationStatus) for \(path)"
    }
}
