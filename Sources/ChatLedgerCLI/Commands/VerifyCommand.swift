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

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        guard let data = ReadOnlyDataDirectory.existing(arguments, command: "verify") else { return 1 }
        let started = ContinuousClock.now
        let attestationKey = try arguments.string("attest-key").map { try AttestationKey.read($0, arguments) }
        let log = EventLog(dataDirectory: data)
        let topic = arguments.value(.topic)
        var verification = try LogVerifier.verify(log)
        // Every checkpoint against a replay of the log, and the stored events this build
        // cannot parse (the log holds, it is as received, but a projection built now differs
        // from the one built when they were ingested), in one pass over each partition.
        let (checkpoints, unreadable) = try CheckpointVerifier.verifyWithUnreadableEvents(
            log: log, topic: topic, checkpoints: CheckpointStore(dataDirectory: data), attestationKey: attestationKey)
        for check in checkpoints {
            verification.problems += check.problems.map { .init(path: check.path, byteOffset: nil, kafkaOffset: nil, message: $0) }
        }
        // A value put back under a chat or contact erasure (the chain cannot tell).
        for finding in ErasureVerifier.unredactedValues(log: log, topic: topic, erasures: verification.erasures.map(\.erasure)) {
            verification.problems.append(.init(
                path: log.directory(topic: topic, partition: finding.partition), byteOffset: nil, kafkaOffset: finding.offset,
                message: "record named by the erasure at offset \(finding.erasureOffset) holds its value (not redacted)"))
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let strict = arguments.flag("strict")
        let register = GapRegister(topic: "", gaps: verification.gaps, dataDirectory: data)
        let acknowledged = Set(verification.gaps.indices.filter { register.isAcknowledged(verification.gaps[$0]) })
        if arguments.flag("json") {
            print(json(verification, unreadable: unreadable, checkpoints: checkpoints, acknowledged: acknowledged, strict: strict, seconds: seconds))
        } else {
            print(text(verification, unreadable: unreadable, checkpoints: checkpoints, acknowledged: acknowledged, strict: strict, seconds: seconds), terminator: "")
        }
        return verification.isClean && !(strict && !verification.gaps.isEmpty) ? 0 : 1
    }

    /// One line for a gap: the partition, the lost range and what the record says.
    static func gapLine(_ gap: LogGap, acknowledged: Bool) -> String {
        "gap: \(gap.topic)/\(gap.partition) offsets \(gap.firstLostOffset)..\(gap.lastLostOffset) lost at the broker "
            + "(\(gap.lostRecords) records; its log then started at \(gap.brokerLogStartOffset); found "
            + "\(TimeArgument.iso8601(milliseconds: gap.detectedAt)); \(acknowledged ? "acknowledged" : "not acknowledged")): \(gap.reason)"
    }

    /// At most this many unreadable events are listed one by one (all are counted).
    static let unreadableLinesShown = 100

    /// One line for a stored event this build cannot parse.
    static func unreadableLine(_ finding: UnreadableEventScan.Finding) -> String {
        "unreadable event: partition \(finding.position.partition) offset \(finding.position.offset) does not parse with this build: \(finding.error)"
    }

    static func text(
        _ verification: LogVerification, unreadable: [UnreadableEventScan.Finding], checkpoints: [CheckpointVerifier.Check], acknowledged: Set<Int>, strict: Bool, seconds: Double
    ) -> String {
        var lines: [String] = verification.problems.map { "problem: \($0)" }
        lines += verification.gaps.indices.map { gapLine(verification.gaps[$0], acknowledged: acknowledged.contains($0)) }
        lines += verification.erasures.map(\.description)
        lines += unreadable.prefix(unreadableLinesShown).map(unreadableLine)
        if unreadable.count > unreadableLinesShown {
            lines.append("unreadable events: \(unreadable.count - unreadableLinesShown) more not listed")
        }
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
            (verification.gaps.isEmpty
                ? "" : "; \(verification.gaps.count) \(verification.gaps.count == 1 ? "gap" : "gaps"), \(lost) offsets lost at the broker")
            + (unreadable.isEmpty ? "" : "; \(unreadable.count) stored events unreadable by this build")
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
        _ verification: LogVerification, unreadable: [UnreadableEventScan.Finding], checkpoints: [CheckpointVerifier.Check], acknowledged: Set<Int>, strict: Bool, seconds: Double
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
            "unreadableEvents": unreadable.count,
            "unreadable": unreadable.prefix(unreadableLinesShown).map { finding -> [String: Any] in
                [
                    "partition": Int(finding.position.partition), "offset": finding.position.offset, "code": finding.error.code.description,
                    "error": finding.error.description,
                ]
            },
            "seconds": seconds, "checkpointsVerified": checkpoints.filter(\.holds).count,
            "erasures": verification.erasures.map(\.jsonObject),
            "checkpoints": checkpoints.map { check -> [String: Any] in
                var object: [String: Any] = [
                    "sequence": check.sequence, "path": check.path, "holds": check.holds, "problems": check.problems.count,
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
