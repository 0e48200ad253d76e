import ChatEvents
import EventLog
import Foundation
import LedgerSupport
import Synchronization

/// Builds the projection on start: the newest usable checkpoint, then the log after it.
package enum ProjectionRecovery {
    package struct Loaded: Sendable {
        package var state: ProjectionState
        /// The checkpoint started from; nil for a replay from the start of the log.
        package var checkpoint: CheckpointInfo?
        /// Log records folded after the checkpoint.
        package var replayedRecords: Int
    }

    /// Loads the newest checkpoint whose positions still match the log (the record after
    /// each position chains from the checkpoint's hash), falling back to older ones and
    /// finally to a full replay, with a warning for each one skipped. A checkpoint of an
    /// older format gets this build's device versions first (`ErasureRefold.upgradeVersions`).
    package static func load(
        log: EventLog, topic: String, checkpoints: CheckpointStore, eventIdWindow: Int = 1_000_000,
        logger: Logger = Logger(label: "projection")
    ) throws -> Loaded {
        for sequence in checkpoints.sequences().reversed() {
            do {
                var (state, info) = try checkpoints.read(sequence)
                let upgraded = try ErasureRefold.upgradeVersions(in: &state, readWith: info, log: log, topic: topic)
                if upgraded > 0 {
                    logger.notice(
                        "devices an erasure named given this build's versions (checkpoint of an older format)",
                        ["sequence": sequence, "format": info.formatVersion, "devices": upgraded])
                }
                let replayed = try replay(into: &state, log: log, topic: topic, checkingChainFrom: info)
                return Loaded(state: state, checkpoint: info, replayedRecords: replayed)
            } catch {
                logger.warning("skipping a checkpoint that cannot be used", ["sequence": sequence, "error": error])
            }
        }
        let replayed = try replayFromZero(log: log, topic: topic, eventIdWindow: eventIdWindow)
        return Loaded(state: replayed.state, checkpoint: nil, replayedRecords: replayed.records)
    }

    /// The whole log folded from nothing, partitions spread over `threads` threads.
    ///
    /// Partitions fold independently: a device's events are all in one partition (the
    /// Kafka key is the deviceId), so each thread folds whole devices into its own state
    /// and the states are merged. Each thread keeps its own event-id window, so a
    /// duplicate is caught within its partition, which is where redeliveries land. If a
    /// device turns up in two partitions (partitions were added to the topic), the result
    /// would depend on how they interleave, so the log is folded again on one thread.
    /// - Returns: the state, how many records were folded, and on how many threads.
    package static func replayFromZero(
        log: EventLog, topic: String, eventIdWindow: Int = 1_000_000, threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws -> (state: ProjectionState, records: Int, threads: Int) {
        // Partitions go to the lightest group, largest first, so the threads finish
        // together. Each group folds its partitions in ascending order, as the one-thread
        // replay does: a device split over partitions of one group is folded in the same
        // order; one split over two groups is caught when the states are merged.
        let partitions = try log.partitions().filter { $0.topic == topic }.map(\.partition)
        let threadCount = max(1, min(threads, partitions.count))
        var groups = Array(repeating: (bytes: Int64(0), partitions: [Int32]()), count: threadCount)
        for (partition, bytes) in partitions.map({ ($0, log.bytesOnDisk(topic: topic, partition: $0)) }).sorted(by: { $0.1 > $1.1 }) {
            let lightest = groups.indices.min { groups[$0].bytes < groups[$1].bytes } ?? 0
            groups[lightest].bytes += bytes
            groups[lightest].partitions.append(partition)
        }
        if threadCount > 1 {
            let results = Mutex<[Result<(ProjectionState, Int), any Error>?]>(Array(repeating: nil, count: threadCount))
            let workers = groups.enumerated().map { index, group in
                LedgerThread {
                    let result = Result { () throws -> (ProjectionState, Int) in
                        var state = ProjectionState(eventIdWindow: eventIdWindow)
                        let replayed = try replay(into: &state, log: log, topic: topic, partitions: group.partitions)
                        return (state, replayed)
                    }
                    results.withLock { $0[index] = result }
                }
            }
            for worker in workers { worker.start() }
            for worker in workers { worker.join() }
            var merged: ProjectionState?
            var replayed = 0
            var disjoint = true
            for result in results.withLock({ $0 }) {
                guard let (state, count) = try result?.get() else { continue }
                replayed += count
                // The first state is the base (its window is not copied id by id); taken out
                // of the optional so absorbing mutates it in place instead of copying it.
                guard var base = merged.take() else {
                    merged = state
                    continue
                }
                disjoint = disjoint && base.absorb(state)
                merged = base
            }
            if disjoint, let merged { return (merged, replayed, threadCount) }
        }
        var state = ProjectionState(eventIdWindow: eventIdWindow)
        let replayed = try replay(into: &state, log: log, topic: topic)
        return (state, replayed, 1)
    }

    /// The state a check of the checkpoints (`chatledger verify`) replays from: nothing,
    /// or once retention removed the start of a partition's log, the oldest checkpoint
    /// (the partition's base; see `RetentionBase`), after checking that the log chains from
    /// it: the record after each of its positions chains from its chain hash. Its own
    /// content is vouched for by its digest and, with a key, its attestation.
    /// - Throws: `ProjectionError` when no checkpoint is left to be the base, or the log
    ///   does not chain from it; `EventLogError` for a damaged log.
    package static func verificationStart(log: EventLog, topic: String, checkpoints: CheckpointStore) throws -> ProjectionState {
        var retained = false
        let partitions = try log.partitions().filter { $0.topic == topic }.map(\.partition)
        for partition in partitions {
            if try log.retentionBase(topic: topic, partition: partition) != nil { retained = true }
        }
        guard retained else { return ProjectionState() }
        guard let sequence = checkpoints.sequences().first else {
            throw ProjectionError(path: checkpoints.directory, "retention removed the log's start but no checkpoint is left as its base")
        }
        let (state, info) = try checkpoints.read(sequence)
        for (partition, offset) in info.positions.sorted(by: { $0.key < $1.key }) where partitions.contains(partition) {
            try checkChain(of: log, topic: topic, partition: partition, after: offset, from: info)
        }
        return state
    }

    /// Checks that `partition`'s log continues from `checkpoint` at `offset`: it still
    /// holds the records after it (`checkRetained`), and the record at `offset + 1`, if
    /// the log has one, chains from the checkpoint's chain hash. Reads that one record;
    /// folds nothing.
    /// - Throws: `ProjectionError` if the log does not continue from the checkpoint;
    ///   `EventLogError` for damage.
    static func checkChain(of log: EventLog, topic: String, partition: Int32, after offset: Int64, from checkpoint: CheckpointInfo) throws {
        let start = offset + 1
        try checkRetained(log, topic: topic, partition: partition, from: start)
        guard let chain = checkpoint.chainHashes[partition] else { return }
        try log.reader(topic: topic, partition: partition).forEach(from: start) { record in
            if record.offset == start, !record.chainFollows(chain) {
                throw ProjectionError(path: checkpoint.path, "partition \(partition): the log after offset \(offset) does not chain from the checkpoint")
            }
            return false
        }
    }

    /// Throws if retention removed `partition`'s records at `start`: a replay from there
    /// cannot be made (it must start from a checkpoint at or after the retention base).
    static func checkRetained(_ log: EventLog, topic: String, partition: Int32, from start: Int64) throws {
        if let base = try log.retentionBase(topic: topic, partition: partition), start < base.baseOffset {
            throw ProjectionError(
                path: log.directory(topic: topic, partition: partition),
                "the log is retained from offset \(base.baseOffset) (older segments were removed): a replay must start "
                    + "from a checkpoint at or after offset \(base.baseOffset - 1), not from offset \(start)")
        }
    }

    /// Folds every record after `state`'s positions into it; returns how many.
    /// - Throws: `EventLogError` for damage, `ProjectionError` if `checkpoint` does not
    ///   match the log.
    @discardableResult
    package static func replay(
        into state: inout ProjectionState, log: EventLog, topic: String, checkingChainFrom checkpoint: CheckpointInfo? = nil,
        upTo limit: LogPosition? = nil, partitions only: [Int32]? = nil
    ) throws -> Int {
        let parser = EventParser()
        var replayed = 0
        for (logTopic, partition) in try log.partitions() where logTopic == topic {
            if let limit, limit.partition != partition { continue }
            if let only, !only.contains(partition) { continue }
            replayed += try replay(
                partition: partition, into: &state, log: log, topic: topic, parser: parser, checkingChainFrom: checkpoint, through: limit?.offset)
        }
        return replayed
    }

    /// `replay` of one partition: folds its records after `state`'s position in it, through
    /// offset `limit` (nil: to the end); returns how many. `unreadable` is told of each
    /// event record that does not parse (folding it also counts it in the state).
    /// - Throws: as `replay`.
    @discardableResult
    static func replay(
        partition: Int32, into state: inout ProjectionState, log: EventLog, topic: String, parser: EventParser,
        checkingChainFrom checkpoint: CheckpointInfo? = nil, through limit: Int64?,
        unreadable: ((_ offset: Int64, _ error: EventValidationError) -> Void)? = nil
    ) throws -> Int {
        let start = (state.positions[partition] ?? -1) + 1
        try checkRetained(log, topic: topic, partition: partition, from: start)
        var replayed = 0
        var expectedChain = checkpoint?.chainHashes[partition]
        // Events are folded one record behind the parse: the event-id window's slot for
        // an event is fetched into the cache while the next record is parsed (the
        // window's table is megabytes; looked up at once, that was a miss per event).
        var pending = PendingFold()
        defer { pending.fold(into: &state) }
        try log.reader(topic: topic, partition: partition).forEach(from: start) { record in
            if let limit, record.offset > limit { return false }
            if let chain = expectedChain {
                guard record.chainFollows(chain) else {
                    throw ProjectionError(
                        path: checkpoint?.path ?? "", "partition \(partition): the log after offset \(start - 1) does not chain from the checkpoint")
                }
                expectedChain = nil
            }
            let position = LogPosition(partition: partition, offset: record.offset)
            StoredRecord.read(
                record, parser: parser,
                event: { event in
                    let idHash = state.prefetch(event, partition: partition)
                    pending.fold(into: &state)
                    pending.hold(event, idHash: idHash, at: position, chainHash: record.chainHash)
                },
                other: { other in
                    pending.fold(into: &state)
                    if let unreadable, case .unreadable(let error) = other { unreadable(record.offset, error) }
                    state.fold(other, at: position, chainHash: record.chainHash)
                })
            replayed += 1
            return true
        }
        return replayed
    }
}

/// The one event a replay holds back while it parses the next record (see `replay`).
///
/// A concrete type with a flag, not an optional tuple: destroying an optional tuple went
/// through the runtime's generic tuple metadata, and taking an event out of an optional
/// copied its 163 bytes several times over, for every record.
private struct PendingFold {
    private var event = Event(eventId: "", deviceId: "", occurredAt: 0, chatId: nil, payload: .chatCleared)
    private var isHeld = false
    private var idHash: UInt64 = 0
    private var position = LogPosition(partition: 0, offset: 0)
    private var chainHash = SHA256Digest.zero

    /// Holds `event` until the next `fold(into:)`; nothing must be held already.
    mutating func hold(_ event: consuming Event, idHash: UInt64, at position: LogPosition, chainHash: SHA256Digest) {
        self.event = event
        self.isHeld = true
        self.idHash = idHash
        self.position = position
        self.chainHash = chainHash
    }

    /// Applies the held event, if any, and holds nothing after.
    mutating func fold(into state: inout ProjectionState) {
        guard isHeld else { return }
        isHeld = false
        state.apply(event, eventIdHash: idHash, at: position, chainHash: chainHash)
    }
}
