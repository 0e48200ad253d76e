#if canImport(Glibc)
import Glibc
#endif
import ChatProjection
import EventLog
import Foundation
import LedgerSupport

/// `chatledger verify`: checks the whole event log (every CRC, the hash chain, offsets,
/// segment links, indexes); one line per problem; exit 0 only if everything holds. Gaps
/// (records the broker had lost before ingest read them) are reported, one line each;
/// with `--strict` any gap fails the run too.
enum VerifyCommand: Command {
    static let spec = CommandSpec(
        name: "verify", synopsis: "verify [--data DIR] [--json] [--strict]",
        summary: "Check every record's checksum, the hash chain, offsets and indexes; exit 0 only if all hold.",
        options: [
            .data, .topic, .flag("json", "Print the summary as one JSON object."),
            .flag("strict", "Also exit 1 when the log has a gap (records the broker had lost before ingest read them)."),
            CommandSpec.Option("attest-key", "FILE", "Also require every checkpoint's attestation under the key in FILE."),
        ])

    /// What `verify` found for one checkpoint.
    struct CheckpointCheck {
        var sequence: UInt64
        var path: String
        var positions: [Int32: Int64] = [:]
        var stateDigest: String?
        /// nil: not checked (no `--attest-key`).
        var attestationValid: Bool?
        var problems = 0

        var holds: Bool { problems == 0 }
    }

    /// Checks every checkpoint: its CRC and digest, and that a replay of the log from the
    /// start up to its positions gives the same state digest and chain hashes. Adds a
    /// problem per failure; returns what it found for each checkpoint.
    static func verifyCheckpoints(data: String, topic: String, attestationKey: [UInt8]?, into verification: inout LogVerification) -> [CheckpointCheck] {
        let store = CheckpointStore(dataDirectory: data)
        let log = EventLog(dataDirectory: data)
        return store.sequences().map { sequence in
            var check = CheckpointCheck(sequence: sequence, path: store.path(sequence))
            func problem(_ message: String) {
                verification.problems.append(.init(path: check.path, byteOffset: nil, kafkaOffset: nil, message: message))
                check.problems += 1
            }
            do {
                if let attestationKey {
                    check.attestationValid = try store.checkAttestation(sequence, key: attestationKey)
                    if check.attestationValid == false { problem("the checkpoint's attestation is missing or does not match under the key given") }
                }
                let (_, info) = try store.read(sequence)
                check.positions = info.positions
                check.stateDigest = info.stateDigest.hex
                // From the retention base when retention removed a partition's start.
                var replayed = try ProjectionRecovery.verificationStart(log: log, topic: topic, checkpoints: store)
                for (partition, offset) in info.positions.sorted(by: { $0.key < $1.key }) {
                    try ProjectionRecovery.replay(into: &replayed, log: log, topic: topic, upTo: LogPosition(partition: partition, offset: offset))
                    if replayed.positions[partition] != offset {
                        problem("position \(partition):\(offset) is beyond the log (it ends at \(replayed.positions[partition].map(String.init) ?? "nothing"))")
                    } else if replayed.chainHashes[partition] != info.chainHashes[partition] {
                        problem("chain hash at \(partition):\(offset) differs from the log's")
                    }
                }
                if replayed.digest != info.stateDigest {
                    problem("state digest \(info.stateDigest.hex.prefix(16)) differs from a replay of the log (\(replayed.digest.hex.prefix(16)))")
                }
            } catch {
                problem("\(error)")
            }
            return check
        }
    }

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let data = arguments.string("data") ?? "./data"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), isDirectory.boolValue else {
            writeStandardError("chatledger verify: no data directory at \(data)\n")
            return 1
        }
        let started = ContinuousClock.now
        let attestationKey = try arguments.string("attest-key").map { try AttestationKey.read($0, arguments) }
        var verification = try LogVerifier.verify(EventLog(dataDirectory: data))
        let checkpoints = verifyCheckpoints(
            data: data, topic: arguments.string("topic") ?? "wa.device-events", attestationKey: attestationKey, into: &verification)
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let strict = arguments.flag("strict")
        let register = GapRegister(topic: "", gaps: verification.gaps, dataDirectory: data)
        let acknowledged = Set(verification.gaps.indices.filter { register.isAcknowledged(verification.gaps[$0]) })
        if arguments.flag("json") {
            print(json(verification, checkpoints: checkpoints, acknowledged: acknowledged, strict: strict, seconds: seconds))
        } else {
            print(text(verification, checkpoints: checkpoints, acknowledged: acknowledged, strict: strict, seconds: seconds), terminator: "")
        }
        return verification.isClean && !(strict && !verification.gaps.isEmpty) ? 0 : 1
    }

    /// One line for a gap: the partition, the lost range and what the record says.
    static func gapLine(_ gap: LogGap, acknowledged: Bool) -> String {
        "gap: \(gap.topic)/\(gap.partition) offsets \(gap.firstLostOffset)..\(gap.lastLostOffset) lost at the broker "
            + "(\(gap.lostRecords) records; its log then started at \(gap.brokerLogStartOffset); found "
            + "\(TimeArgument.iso8601(milliseconds: gap.detectedAt)); \(acknowledged ? "acknowledged" : "not acknowledged")): \(gap.reason)"
    }

    static func text(
        _ verification: LogVerification, checkpoints: [CheckpointCheck], acknowledged: Set<Int>, strict: Bool, seconds: Double
    ) -> String {
        var lines: [String] = verification.problems.map { "problem: \($0)" }
        lines += verification.gaps.indices.map { gapLine(verification.gaps[$0], acknowledged: acknowledged.contains($0)) }
        lines += verification.erasures.map(\.description)
        for partition in verification.partitions {
            let offsets = partition.firstOffset.map { "offsets \($0)..\(partition.lastOffset ?? $0)" } ?? "no records"
            let gaps = partition.gaps == 0 ? "" : ", \(partition.gaps) \(partition.gaps == 1 ? "gap" : "gaps") (\(partition.lostRecords) offsets lost)"
            lines.append(
                "partition \(partition.topic)/\(partition.partition): \(partition.records) records (\(partition.events) events, "
                    + "\(partition.deadLetters) dead letters\(gaps)), \(offsets), \(partition.segments) segments, \(partition.bytes) bytes, "
                    + "chain \(partition.lastChainHash.hex.prefix(16))")
        }
        for (reason, count) in verification.deadLettersByReason.sorted(by: { $0.key < $1.key }) {
            lines.append("dead letters \(reason): \(count)")
        }
        for check in checkpoints {
            let positions = check.positions.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
            let attestation = check.attestationValid.map { $0 ? ", attestation valid" : ", attestation INVALID" } ?? ""
            lines.append(
                "checkpoint \(check.sequence): \(check.holds ? "holds" : "FAILS") at \(positions.isEmpty ? "-" : positions), "
                    + "digest \(check.stateDigest?.prefix(16) ?? "unreadable")\(attestation)")
        }
        let records = verification.partitions.reduce(0) { $0 + $1.records }
        lines.append("checkpoints verified against a replay of the log: \(checkpoints.filter(\.holds).count)")
        let lost = verification.gaps.reduce(Int64(0)) { $0 + $1.lostRecords }
        let gaps =
            verification.gaps.isEmpty
            ? "" : "; \(verification.gaps.count) \(verification.gaps.count == 1 ? "gap" : "gaps"), \(lost) offsets lost at the broker"
        if !verification.isClean {
            lines.append("FAILED: \(verification.problems.count) problems in \(records) records\(gaps)")
        } else if strict && !verification.gaps.isEmpty {
            lines.append("FAILED (--strict): \(records) records hold\(gaps)")
        } else {
            lines.append("ok: \(records) records in \(verification.partitions.count) partitions verified in \(String(format: "%.2f", seconds)) s\(gaps)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func json(
        _ verification: LogVerification, checkpoints: [CheckpointCheck], acknowledged: Set<Int>, strict: Bool, seconds: Double
    ) -> String {
        let partitions: [[String: Any]] = verification.partitions.map { partition in
            var object: [String: Any] = [
                "topic": partition.topic, "partition": Int(partition.partition), "segments": partition.segments,
                "records": partition.records, "events": partition.events, "deadLetters": partition.deadLetters,
                "bytes": partition.bytes, "chainHash": partition.lastChainHash.hex,
            ]
            if partition.gaps > 0 {
                object["gaps"] = partition.gaps
                object["lostRecords"] = partition.lostRecords
            }
            if let first = partition.firstOffset { object["firstOffset"] = first }
            if let last = partition.lastOffset { object["lastOffset"] = last }
            if let first = partition.firstTimestamp { object["firstTimestamp"] = first }
            if let last = partition.lastTimestamp { object["lastTimestamp"] = last }
            return object
        }
        let problems: [[String: Any]] = verification.problems.map { problem in
            var object: [String: Any] = ["path": problem.path, "message": problem.message]
            if let byte = problem.byteOffset { object["byte"] = byte }
            if let offset = problem.kafkaOffset { object["offset"] = offset }
            return object
        }
        let gaps: [[String: Any]] = verification.gaps.indices.map { index in
            let gap = verification.gaps[index]
            return [
                "topic": gap.topic, "partition": Int(gap.partition), "firstLostOffset": gap.firstLostOffset,
                "lastLostOffset": gap.lastLostOffset, "lostRecords": gap.lostRecords, "brokerLogStartOffset": gap.brokerLogStartOffset,
                "detectedAt": gap.detectedAt, "reason": gap.reason, "acknowledged": acknowledged.contains(index),
            ]
        }
        let summary: [String: Any] = [
            "clean": verification.isClean, "records": verification.partitions.reduce(0) { $0 + $1.records },
            "gaps": gaps, "strict": strict, "passed": verification.isClean && !(strict && !verification.gaps.isEmpty),
            "partitions": partitions, "problems": problems, "deadLettersByReason": verification.deadLettersByReason,
            "seconds": seconds, "checkpointsVerified": checkpoints.filter(\.holds).count,
            "erasures": verification.erasures.map(\.jsonObject),
            "checkpoints": checkpoints.map { check -> [String: Any] in
                var object: [String: Any] = [
                    "sequence": check.sequence, "path": check.path, "holds": check.holds, "problems": check.problems,
                    "positions": Dictionary(uniqueKeysWithValues: check.positions.map { (String($0.key), $0.value) }),
                ]
                if let digest = check.stateDigest { object["stateDigest"] = digest }
                if let valid = check.attestationValid { object["attestationValid"] = valid }
                return object
            },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
