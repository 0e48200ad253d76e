import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport

/// `bench verify`: a log of `events` simulated events (8 partitions, a device's events in
/// one), then `verify` (every CRC and chain hash) and a replay from zero into the
/// projection, both from the page cache.
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
        return report
    }
}
