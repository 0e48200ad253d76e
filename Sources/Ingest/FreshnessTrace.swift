#if canImport(Glibc)
import Glibc
#endif
import EventLog
import LedgerSupport

/// Stage times of chosen records through ingest, for `bench freshness`: when the consumer
/// fetched each record whose Kafka key is `key`, when its batch was in the log, when the
/// applier picked the batch up and when the record was in the projection. Each stage is one
/// line appended to `path`: `stage partition offset monotonic-ns [event-id]` (the event id
/// on the `fetched` line only), with `CLOCK_MONOTONIC`, which every process on the machine
/// shares, so the bench lines them up with its own produce and poll times.
///
/// Off unless `run` is started with `CHATLEDGER_TRACE_KEY` and `CHATLEDGER_TRACE_FILE` in
/// its environment (the bench sets them for its child); then only the few records of that
/// key cost a line each, and every other record one byte comparison of its key's length.
package final class FreshnessTrace: Sendable {
    /// Where a traced record is.
    package enum Stage: String, Sendable, CaseIterable {
        /// Handed to the pipeline by the consumer's poll.
        case fetched
        /// Its batch written (and synced, per the fsync policy).
        case appended
        /// Its batch taken up by the applier thread.
        case dequeued
        /// Folded into the projection (visible to queries from now on).
        case applied
    }

    /// The environment variables that turn tracing on.
    package static let keyVariable = "CHATLEDGER_TRACE_KEY"
    package static let fileVariable = "CHATLEDGER_TRACE_FILE"

    private let key: [UInt8]
    private let descriptor: Int32

    /// The trace the environment asks for; nil (no tracing) unless both variables are set
    /// and the file can be opened.
    package static func fromEnvironment() -> FreshnessTrace? {
        guard let key = getenv(keyVariable).map({ String(cString: $0) }), !key.isEmpty,
            let path = getenv(fileVariable).map({ String(cString: $0) }), !path.isEmpty
        else { return nil }
        return FreshnessTrace(key: key, path: path)
    }

    /// Traces records keyed `key` into the file `path` (appended to); nil if it cannot be opened.
    package init?(key: String, path: String) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return nil }
        self.key = Array(key.utf8)
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Whether a record with this Kafka key is traced.
    package func matches(_ recordKey: UnsafeRawBufferPointer?) -> Bool {
        guard let recordKey, recordKey.count == key.count else { return false }
        return key.withUnsafeBytes { $0.elementsEqual(recordKey) }
    }

    /// Appends one stage line for the record at `position`, stamped now.
    package func record(_ stage: Stage, _ position: LogPosition, eventId: String? = nil) {
        var line = "\(stage.rawValue) \(position.partition) \(position.offset) \(Self.monotonicNanoseconds())"
        if let eventId { line += " " + eventId }
        line += "\n"
        var bytes = Array(line.utf8)
        // A trace line lost to a full disk only leaves a marker without stages in the bench.
        bytes.withUnsafeMutableBytes { _ = try? SystemCall.writeAll(descriptor, UnsafeRawBufferPointer($0)) }
    }

    /// `CLOCK_MONOTONIC` in ns: the clock the bench reads too.
    package static func monotonicNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
