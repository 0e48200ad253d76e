import ChatEvents
import EventLog
import LedgerSupport

/// Builds the projection on start: the newest usable checkpoint, then the log after it.
public enum ProjectionRecovery {
    public struct Loaded: Sendable {
        public var state: ProjectionState
        /// The checkpoint started from; nil for a replay from the start of the log.
        public var checkpoint: CheckpointInfo?
        /// Log records folded after the checkpoint.
        public var replayedRecords: Int
    }

    /// Loads the newest checkpoint whose positions still match the log (the record after
    /// each position chains from the checkpoint's hash), falling back to older ones and
    /// finally to a full replay, with a warning for each one skipped.
    public static func load(
        log: EventLog, topic: String, checkpoints: CheckpointStore, eventIdWindow: Int = 1_000_000,
        logger: Logger = Logger(label: "projection")
    ) throws -> Loaded {
        for sequence in checkpoints.sequences().reversed() {
            do {
                var (state, info) = try checkpoints.read(sequence)
                let replayed = try replay(into: &state, log: log, topic: topic, checkingChainFrom: info)
                return Loaded(state: state, checkpoint: info, replayedRecords: replayed)
            } catch {
                logger.warning("skipping a checkpoint that cannot be used", ["sequence": sequence, "error": error])
            }
        }
        var state = ProjectionState(eventIdWindow: eventIdWindow)
        let replayed = try replay(into: &state, log: log, topic: topic)
        return Loaded(state: state, checkpoint: nil, replayedRecords: replayed)
    }

    /// Folds every record after `state`'s positions into it; returns how many.
    /// - Throws: `EventLogError` for damage, `ProjectionError` if `checkpoint` does not
    ///   match the log.
    @discardableResult
    public static func replay(
        into state: inout ProjectionState, log: EventLog, topic: String, checkingChainFrom checkpoint: CheckpointInfo? = nil,
        upTo limit: LogPosition? = nil
    ) throws -> Int {
        let parser = EventParser()
        var replayed = 0
        for (logTopic, partition) in try log.partitions() where logTopic == topic {
            if let limit, limit.partition != partition { continue }
            let start = (state.positions[partition] ?? -1) + 1
            var expectedChain = checkpoint?.chainHashes[partition]
            try log.reader(topic: topic, partition: partition).forEach(from: start) { record in
                if let limit, record.offset > limit.offset { return false }
                if let chain = expectedChain {
                    guard record.chainFollows(chain) else {
                        throw ProjectionError(
                            path: checkpoint?.path ?? "", "partition \(partition): the log after offset \(start - 1) does not chain from the checkpoint")
                    }
                    expectedChain = nil
                }
                let position = LogPosition(partition: partition, offset: record.offset)
                if record.kind == .event, let value = record.value, let event = try? parser.parse(value) {
                    state.apply(event, at: position, chainHash: record.chainHash)
                } else {
                    state.skip(at: position, chainHash: record.chainHash)
                }
                replayed += 1
                return true
            }
        }
        return replayed
    }
}
