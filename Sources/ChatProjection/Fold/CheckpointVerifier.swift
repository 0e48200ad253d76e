import EventLog
import LedgerSupport

/// Checks every checkpoint of a data directory against the log: its CRC and digest, its
/// attestation (when a key is given), and that a replay of the log from the start up to
/// its positions gives the same state digest and chain hashes (`chatledger verify`).
package enum CheckpointVerifier {
    /// What was found for one checkpoint.
    package struct Check: Sendable {
        package var sequence: UInt64
        package var path: String
        package var positions: [Int32: Int64] = [:]
        /// nil when the checkpoint cannot be read.
        package var stateDigest: String?
        /// nil: not checked (no attestation key).
        package var attestationValid: Bool?
        /// Each broken rule, as one line.
        package var problems: [String] = []
        /// Stored events the replay could not parse (each also logged with its position).
        package var unreadableEvents = 0

        /// Whether every rule holds.
        package var holds: Bool { problems.isEmpty }
    }

    /// Checks every checkpoint in `checkpoints` against `log`'s partitions of `topic`, in
    /// sequence order. Never throws: what cannot be read is a problem of its checkpoint.
    package static func verify(log: EventLog, topic: String, checkpoints: CheckpointStore, attestationKey: [UInt8]? = nil) -> [Check] {
        let partitions = (try? log.partitions().filter { $0.topic == topic }.map(\.partition)) ?? []
        var pass = VerificationPass(log: log, topic: topic, partitions: partitions, collectsUnreadable: false)
        return verify(&pass, checkpoints: checkpoints, attestationKey: attestationKey)
    }

    /// `verify` and `UnreadableEventScan.scan` in one ordered pass over each partition:
    /// every record is read and parsed once, the replay carried from one checkpoint to
    /// the next. Same checks, same findings, in the same order as the two apart.
    /// - Throws: `EventLogError` when the log's partitions cannot be listed.
    package static func verifyWithUnreadableEvents(
        log: EventLog, topic: String, checkpoints: CheckpointStore, attestationKey: [UInt8]? = nil
    ) throws -> (checks: [Check], unreadable: [UnreadableEventScan.Finding]) {
        let partitions = try log.partitions().filter { $0.topic == topic }.map(\.partition)
        var pass = VerificationPass(log: log, topic: topic, partitions: partitions, collectsUnreadable: true)
        let checks = verify(&pass, checkpoints: checkpoints, attestationKey: attestationKey)
        return (checks, pass.finish())
    }

    /// Checks each checkpoint against a replay to its positions. The replay of one
    /// checkpoint goes on from the previous one's when that is the same as a replay from
    /// the start: it stopped at or before this one's positions in every partition this
    /// one names, folded no other partition, and met no error. Otherwise (positions going
    /// back, a partition fewer, damage) it starts again from the start state, as every
    /// replay once did.
    ///
    /// Partitions are folded in ascending order up to each checkpoint, so a device whose
    /// events are in two partitions (partitions added to the topic) is folded in the order
    /// the checkpoints cut the log, which is the order ingest folded them in.
    private static func verify(_ pass: inout VerificationPass, checkpoints: CheckpointStore, attestationKey: [UInt8]?) -> [Check] {
        // From the retention base when retention removed a partition's start: worked out once.
        let start = Result { try ProjectionRecovery.verificationStart(log: pass.log, topic: pass.topic, checkpoints: checkpoints) }
        var carried: ProjectionState?
        return checkpoints.sequences().map { sequence in
            var check = Check(sequence: sequence, path: checkpoints.path(sequence))
            do {
                if let attestationKey {
                    check.attestationValid = try checkpoints.checkAttestation(sequence, key: attestationKey)
                    if check.attestationValid == false {
                        check.problems.append("the checkpoint's attestation is missing or does not match under the key given")
                    }
                }
                let (checkpointState, info) = try checkpoints.read(sequence)
                check.positions = info.positions
                check.stateDigest = info.stateDigest.hex
                // A checkpoint of an older format is compared as loading reads it: with this
                // build's device versions (`ErasureRefold.upgradeVersions`).
                var expected = info.stateDigest
                var upgraded = checkpointState
                if try ErasureRefold.upgradeVersions(in: &upgraded, readWith: info, log: pass.log, topic: pass.topic) > 0 { expected = upgraded.digest }
                var replayed: ProjectionState
                if let previous = carried.take(), let base = try? start.get(), continues(previous, from: base, to: info.positions) {
                    replayed = previous
                } else {
                    replayed = try start.get()
                }
                for (partition, offset) in info.positions.sorted(by: { $0.key < $1.key }) {
                    try pass.fold(partition, into: &replayed, through: offset)
                    if replayed.positions[partition] != offset {
                        check.problems.append(
                            "position \(partition):\(offset) is beyond the log (it ends at \(replayed.positions[partition].map(String.init) ?? "nothing"))")
                    } else if replayed.chainHashes[partition] != info.chainHashes[partition] {
                        check.problems.append("chain hash at \(partition):\(offset) differs from the log's")
                    }
                }
                check.unreadableEvents = replayed.counts.unreadable
                if replayed.digest != expected {
                    check.problems.append(
                        "state digest \(expected.hex.prefix(16)) differs from a replay of the log (\(replayed.digest.hex.prefix(16)))")
                }
                carried = replayed
            } catch {
                check.problems.append("\(error)")
            }
            return check
        }
    }

    /// Whether replaying on from `state` (a replay from `base`) to `positions` gives what a
    /// replay from `base` to them gives: every partition it moved is one of `positions`,
    /// not past it.
    private static func continues(_ state: ProjectionState, from base: ProjectionState, to positions: [Int32: Int64]) -> Bool {
        state.positions.allSatisfy { partition, offset in
            guard let target = positions[partition] else { return offset == base.positions[partition] }
            return offset <= target
        }
    }
}
