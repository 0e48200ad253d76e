import ChatEvents
import EventLog

/// The one ordered read of each partition that `CheckpointVerifier` makes: the replay is
/// carried forward from one checkpoint's positions to the next, and, when asked, every
/// event record's parse also tells whether it is unreadable (`UnreadableEventScan`), so
/// each record is read and parsed once, however many checkpoints there are.
///
/// Per partition it keeps how far the log has been scanned for unreadable events. Records
/// a fold skips (before a retention base, after the last checkpoint) are scanned without
/// folding; a fold that starts again from the start state (see
/// `CheckpointVerifier.verify`) reads again, but finds nothing twice. A partition's scan
/// ends at the first damage, as `UnreadableEventScan.scan`'s does.
struct VerificationPass {
    let log: EventLog
    let topic: String
    /// The topic's partitions in the log, ascending.
    let partitions: [Int32]
    private let parser = EventParser()
    private let collectsUnreadable: Bool
    /// Per partition, the offset below which event records were checked for unreadability.
    private var scanned: [Int32: Int64] = [:]
    /// Partitions whose scan stopped at damage.
    private var stopped: Set<Int32> = []
    private var findings: [Int32: [UnreadableEventScan.Finding]] = [:]

    init(log: EventLog, topic: String, partitions: [Int32], collectsUnreadable: Bool) {
        self.log = log
        self.topic = topic
        self.partitions = partitions.sorted()
        self.collectsUnreadable = collectsUnreadable
    }

    /// Folds `partition`'s records after `state`'s position in it through `limit` into
    /// `state`, as `ProjectionRecovery.replay(into:log:topic:upTo:)` does (nothing for a
    /// partition the log does not have), scanning on the way.
    /// - Throws: as `ProjectionRecovery.replay`.
    mutating func fold(_ partition: Int32, into state: inout ProjectionState, through limit: Int64) throws {
        guard partitions.contains(partition) else { return }
        let start = (state.positions[partition] ?? -1) + 1
        if collectsUnreadable { scan(partition, below: start) }
        let from = scanned[partition, default: 0]
        var found: [UnreadableEventScan.Finding] = []
        let reports = collectsUnreadable && !stopped.contains(partition)
        defer { if reports { findings[partition, default: []] += found } }
        do {
            try ProjectionRecovery.replay(
                partition: partition, into: &state, log: log, topic: topic, parser: parser, through: limit,
                unreadable: reports
                    ? { offset, error in
                        if offset >= from { found.append(.init(position: LogPosition(partition: partition, offset: offset), error: error)) }
                    } : nil)
        } catch let error as EventLogError {
            stopped.insert(partition)  // damage: a scan from the start stops here too
            throw error
        }
        if reports { scanned[partition] = max(from, (state.positions[partition] ?? -1) + 1) }
    }

    /// Scans what no fold read, to the end of every partition, and returns every
    /// unreadable event found, in partition and offset order.
    mutating func finish() -> [UnreadableEventScan.Finding] {
        guard collectsUnreadable else { return [] }
        for partition in partitions { scan(partition, below: nil) }
        return partitions.flatMap { findings[$0] ?? [] }
    }

    /// Scans `partition` from where its scan stands up to `end` (nil: the log's end).
    private mutating func scan(_ partition: Int32, below end: Int64?) {
        let from = scanned[partition, default: 0]
        guard !stopped.contains(partition), end.map({ from < $0 }) ?? true else { return }
        var found: [UnreadableEventScan.Finding] = []
        do {
            scanned[partition] = try UnreadableEventScan.scan(
                log.reader(topic: topic, partition: partition), from: from, below: end, parser: parser, into: &found)
        } catch {
            stopped.insert(partition)
        }
        findings[partition, default: []] += found
    }
}
