import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport

/// `bench verify`: a log of `events` simulated events (8 partitions, a device's events in
/// one), then `verify` (every CRC and chain hash) and a replay from zero into the
/// projection, both from the page cache; then checkpoints over it, checked as `verify`
/// checks them.
enum VerifyBenchmark {
    static let topic = DeviceEventsTopic.defaultName

    static func run(events count: Int, directory: String) throws -> BenchReport {
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        var writers: [PartitionWriter] = []
        for partition: Int32 in 0..<8 {
            writers.append(try log.openWriter(topic: topic, partition: partition, options: .init(fsync: .never)))
        }
        var next = [Int64](repeating: 0, count: 8)
        var model = TrafficModel(.init(devices: 10_000, chatsPerDevice: 50, seed: 17))
        let buildSeconds = try measureSeconds {
            for index in 0..<count {
                let event = model.next().event
                let partition = Int(stableHash(event.deviceId) % 8)
                let value = EventEncoder.encode(event)
                let key = Array(event.deviceId.utf8)
                try key.withUnsafeBytes { keyBytes in
                    try value.withUnsafeBytes { valueBytes in
                        try writers[partition].stage(offset: next[partition], timestamp: 1_767_225_600_000 + Int64(index), key: keyBytes, value: valueBytes)
                    }
                }
                next[partition] += 1
                if index % 4096 == 4095 { for writer in writers { try writer.commit() } }
            }
            for writer in writers { try writer.sync() }
        }

        var verifiedRecords = 0
        var bytes = 0
        let verifySeconds = try measureSeconds {
            let verification = try LogVerifier.verify(log)
            guard verification.isClean else { throw BenchFailure("the bench log does not verify: \(verification.problems.first!)") }
            verifiedRecords = verification.partitions.reduce(0) { $0 + $1.records }
            bytes = verification.partitions.reduce(0) { $0 + $1.bytes }
        }
        var state = ProjectionState()
        // Each replay twice, alternating, best of two: the first pass also pays for growing
        // the heap, which would otherwise favour whichever runs second.
        var replayed = 0
        var parallel = ProjectionState()
        var oneThreadSeconds = Double.infinity
        var replaySeconds = Double.infinity
        for _ in 0..<2 {
            // The previous pass's states are freed here, outside the timings: assigned inside
            // the parallel timing, the old state's teardown (a million chats) counted against
            // the second parallel pass.
            state = ProjectionState()
            parallel = ProjectionState()
            oneThreadSeconds = min(oneThreadSeconds, try measureSeconds {
                replayed = try ProjectionRecovery.replay(into: &state, log: log, topic: topic)
            })
            replaySeconds = min(replaySeconds, try measureSeconds {
                (parallel, replayed, _) = try ProjectionRecovery.replayFromZero(log: log, topic: topic)
            })
        }
        guard parallel.digest == state.digest, parallel.positions == state.positions else {
            throw BenchFailure("the parallel replay's state differs from the one-thread replay's")
        }
        let checkpoints = try checkpointPhase(log: log, directory: directory, ends: next)
        var report = BenchReport(bench: "verify")
        report.add("verify_mb_per_s", Double(bytes) / verifySeconds / 1e6, "MB/s")
        report.add("verify_events_per_s", Double(verifiedRecords) / verifySeconds, "events/s")
        report.add("replay_from_zero_events_per_s", Double(replayed) / replaySeconds, "events/s")
        report.add("replay_from_zero_mb_per_s", Double(bytes) / replaySeconds / 1e6, "MB/s")
        report.add("replay_one_thread_events_per_s", Double(replayed) / oneThreadSeconds, "events/s")
        report.add("replay_parallel_vs_one_thread", oneThreadSeconds / replaySeconds, "ratio")
        report.add("log_bytes", Double(bytes), "bytes")
        report.add("events", Double(verifiedRecords), "events")
        report.add("build_events_per_s", Double(count) / buildSeconds, "events/s")
        report.notes.append("8 partitions; replay = read + CRC + parse + fold, from zero: partitions over \(ProcessInfo.processInfo.activeProcessorCount) threads, next to one thread (same digest); \(state.devices.count) devices")
        report.add("checkpoints_verify_cpu_s", checkpoints.onePass, "s")
        report.add("checkpoints_replay_each_cpu_s", checkpoints.replayEach, "s")
        report.add("checkpoints_replay_each_vs_one_pass", checkpoints.replayEach / checkpoints.onePass, "ratio")
        report.add("checkpoints_read_and_digest_cpu_s", checkpoints.readAndDigest, "s")
        report.notes.append(
            "checkpoints: \(checkpointCount) written at each partition's \((1...checkpointCount).map { "\($0)/\(checkpointCount)" }.joined(separator: ", ")), "
                + "then checked with the unreadable-event scan as verify does: in one pass (checkpoints_verify_cpu_s) and, as before, "
                + "a replay from the start per checkpoint and a scan of the log after (checkpoints_replay_each_cpu_s); one run each, "
                + "CPU time of the one thread both run on; "
                + "both read every checkpoint and digest a state per checkpoint, which alone takes checkpoints_read_and_digest_cpu_s")
        return report
    }

    /// Checkpoints the bench writes over the log (at equal steps through every partition).
    static let checkpointCount = 4

    /// Writes `checkpointCount` checkpoints of replays to equal steps through each
    /// partition (`ends`: each partition's next offset), then times `verify`'s check of
    /// them with its unreadable-event scan in one pass, and the way it was made before:
    /// a replay from nothing per checkpoint, then a scan of the whole log. Both must agree.
    /// - Returns: CPU seconds of each (one thread: the machine's other load left out).
    private static func checkpointPhase(
        log: EventLog, directory: String, ends: [Int64]
    ) throws -> (onePass: Double, replayEach: Double, readAndDigest: Double) {
        let store = CheckpointStore(dataDirectory: directory, retain: checkpointCount)
        var folded = ProjectionState()
        for step in 1...checkpointCount {
            for (partition, end) in ends.enumerated() {
                let last = end * Int64(step) / Int64(checkpointCount) - 1
                try ProjectionRecovery.replay(into: &folded, log: log, topic: topic, upTo: LogPosition(partition: Int32(partition), offset: last))
            }
            try store.write(folded, topic: topic)
        }
        folded = ProjectionState()
        var onePass: (checks: [CheckpointVerifier.Check], unreadable: [UnreadableEventScan.Finding]) = ([], [])
        let onePassSeconds = try threadCPUSeconds {
            onePass = try CheckpointVerifier.verifyWithUnreadableEvents(log: log, topic: topic, checkpoints: store)
        }
        var held: [Bool] = []
        var unreadable: [UnreadableEventScan.Finding] = []
        let replayEachSeconds = try threadCPUSeconds {
            for sequence in store.sequences() {
                let (_, info) = try store.read(sequence)
                var replayed = ProjectionState()
                for (partition, offset) in info.positions.sorted(by: { $0.key < $1.key }) {
                    try ProjectionRecovery.replay(into: &replayed, log: log, topic: topic, upTo: LogPosition(partition: partition, offset: offset))
                }
                held.append(replayed.digest == info.stateDigest && replayed.positions == info.positions)
            }
            unreadable = try UnreadableEventScan.scan(log: log, topic: topic)
        }
        guard onePass.checks.count == checkpointCount, onePass.checks.allSatisfy(\.holds), held == onePass.checks.map(\.holds),
            unreadable == onePass.unreadable
        else {
            throw BenchFailure("the bench's checkpoints do not verify alike in one pass and replayed each: \(onePass.checks.map(\.problems))")
        }
        let readAndDigestSeconds = try threadCPUSeconds {
            for sequence in store.sequences() {
                let (state, info) = try store.read(sequence)
                guard state.digest == info.stateDigest else { throw BenchFailure("checkpoint \(sequence) does not digest to its own digest") }
            }
        }
        return (onePassSeconds, replayEachSeconds, readAndDigestSeconds)
    }
}
