#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport
import Synchronization

/// The gaps of one topic's log and which of them an operator has acknowledged: what
/// `/readyz` reports until then. Shared by the thread that finds gaps (ingest records
/// them, `serve` reads them from the log it follows) and the query threads.
///
/// Acknowledgements live in `DATA/acknowledged-gaps`, a text file, one line per gap:
/// `TOPIC PARTITION FIRST LAST [anything: who, when, why]`, `#` starts a comment.
/// `chatledger acknowledge-loss` appends the log's unacknowledged gaps to it (an
/// operator may also edit it by hand). It is read again whenever it changes, so running
/// processes see an acknowledgement at their next `/readyz`.
package final class GapRegister: Sendable {
    /// The file of acknowledgements in a data directory.
    package static func acknowledgementsPath(dataDirectory: String) -> String { dataDirectory + "/acknowledged-gaps" }

    package let topic: String
    /// Where the acknowledgements are read from.
    package let acknowledgementsPath: String

    private struct Key: Hashable {
        var topic: String
        var partition: Int32
        var first: Int64
        var last: Int64
    }

    private struct State {
        var gaps: [LogGap] = []
        var acknowledged: Set<Key> = []
        /// The file's modification time and size when last read (nil: not there).
        var fileStamp: [Int64]?
    }

    private let state: Mutex<State>

    /// The gaps `log` holds for `topic` now (see `EventLog.gaps(topic:)`).
    /// - Throws: `EventLogError` when the log cannot be listed or read.
    package convenience init(log: EventLog, topic: String) throws(EventLogError) {
        self.init(topic: topic, gaps: try log.gaps(topic: topic), dataDirectory: log.dataDirectory)
    }

    /// A register of `gaps` (no reading of the log), acknowledged in `dataDirectory`.
    package init(topic: String, gaps: [LogGap] = [], dataDirectory: String) {
        self.topic = topic
        self.acknowledgementsPath = Self.acknowledgementsPath(dataDirectory: dataDirectory)
        state = Mutex(State(gaps: gaps))
    }

    /// Adds a gap just found (a gap already known is ignored).
    package func add(_ gap: LogGap) {
        state.withLock { state in
            guard !state.gaps.contains(where: { Self.key($0) == Self.key(gap) }) else { return }
            state.gaps.append(gap)
        }
    }

    /// Forgets the gaps of a partition whose log was dropped.
    package func remove(partition: Int32) {
        state.withLock { $0.gaps.removeAll { $0.partition == partition } }
    }

    /// Every gap known, in the order found.
    package var gaps: [LogGap] { state.withLock { $0.gaps } }

    /// The gaps not acknowledged yet (the file is read again if it changed).
    package var unacknowledged: [LogGap] {
        let stamp = Self.stamp(acknowledgementsPath)
        return state.withLock { state in
            if state.gaps.isEmpty { return [] }
            if stamp != state.fileStamp {
                state.acknowledged = Self.readAcknowledgements(acknowledgementsPath)
                state.fileStamp = stamp
            }
            return state.gaps.filter { !state.acknowledged.contains(Self.key($0)) }
        }
    }

    /// Whether `gap` is acknowledged in the file now.
    package func isAcknowledged(_ gap: LogGap) -> Bool {
        Self.readAcknowledgements(acknowledgementsPath).contains(Self.key(gap))
    }

    /// Appends every unacknowledged gap to the file with `note` (one line, no line
    /// breaks), replacing it atomically; returns the gaps it acknowledged.
    /// - Throws: `EventLogError` when the file cannot be written.
    @discardableResult
    package func acknowledgeAll(note: String) throws(EventLogError) -> [LogGap] {
        let pending = unacknowledged
        guard !pending.isEmpty else { return [] }
        var text = (try? LogFile.readAll(acknowledgementsPath)).map { String(decoding: $0, as: UTF8.self) }
            ?? "# Gaps an operator has acknowledged (chatledger acknowledge-loss): TOPIC PARTITION FIRST LAST [note]\n"
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        let cleanNote = String(note.map { $0.isNewline ? " " : $0 })
        for gap in pending {
            text += "\(gap.topic) \(gap.partition) \(gap.firstLostOffset) \(gap.lastLostOffset)" + (cleanNote.isEmpty ? "" : " " + cleanNote) + "\n"
        }
        try LogFile.writeAtomically(acknowledgementsPath, Array(text.utf8))
        return pending
    }

    private static func key(_ gap: LogGap) -> Key {
        Key(topic: gap.topic, partition: gap.partition, first: gap.firstLostOffset, last: gap.lastLostOffset)
    }

    /// The acknowledged gaps a file lists; lines that are not `TOPIC PARTITION FIRST LAST …` are ignored.
    private static func readAcknowledgements(_ path: String) -> Set<Key> {
        guard let bytes = try? LogFile.readAll(path) else { return [] }
        var keys: Set<Key> = []
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true)
            guard fields.count >= 4, !fields[0].hasPrefix("#"), let partition = Int32(fields[1]), let first = Int64(fields[2]),
                let last = Int64(fields[3])
            else { continue }
            keys.insert(Key(topic: String(fields[0]), partition: partition, first: first, last: last))
        }
        return keys
    }

    /// The file's modification time (ns) and size, nil when it does not exist.
    private static func stamp(_ path: String) -> [Int64]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_size), Int64(info.st_ino)]
    }
}

extension GapRegister {
    /// Registers `chatledger_log_gaps_unacknowledged` (read when scraped).
    package func registerMetrics(in registry: MetricsRegistry) {
        registry.collect(
            "chatledger_log_gaps_unacknowledged",
            help: "Gaps in the log (records the broker had lost) that no operator has acknowledged (chatledger acknowledge-loss).",
            kind: .gauge
        ) { [.init(Double(self.unacknowledged.count))] }
    }
}
