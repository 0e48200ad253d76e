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
        // From the retention base when retention removed a partition's start: worked out once.
        let start = Result { try ProjectionRecovery.verificationStart(log: log, topic: topic, checkpoints: checkpoints) }
        return checkpoints.sequences().map { sequence in
            var check = Check(sequence: sequence, path: checkpoints.path(sequence))
            do {
                if let attestationKey {
                    check.attestationValid = try checkpoints.checkAttestation(sequence, key: attestationKey)
                    if check.attestationValid == false {
                        check.problems.append("the checkpoint's attestation is missing or does not match under the key given")
                    }
                }
                let (_, info) = try checkpoints.read(sequence)
                check.positions = info.positions
                check.stateDigest = info.stateDigest.hex
                var replayed = try start.get()
                for (partition, offset) in info.positions.sorted(by: { $0.key < $1.key }) {
                    try ProjectionRecovery.replay(into: &replayed, log: log, topic: topic, upTo: LogPosition(partition: partition, offset: offset))
                    if replayed.positions[partition] != offset {
                        check.problems.append(
                            "position \(partition):\(offset) is beyond the log (it ends at \(replayed.positions[partition].map(String.init) ?? "nothing"))")
                    } else if replayed.chainHashes[partition] != info.chainHashes[partition] {
                        check.problems.append("chain hash at \(partition):\(offset) differs from the log's")
                    }
                }
                check.unreadableEvents = replayed.counts.unreadable
                if replayed.digest != info.stateDigest {
                    check.problems.append(
                        "state digest \(info.stateDigest.hex.prefix(16)) differs from a replay of the log (\(replayed.digest.hex.prefix(16)))")
                }
            } catch {
                check.problems.append("\(error)")
            }
            return check
        }
    }
}
