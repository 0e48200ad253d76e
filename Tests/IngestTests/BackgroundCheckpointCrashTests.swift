#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import Dispatch
import EventLog
import Foundation
import Ingest
import KafkaTestSupport
import Testing

/// A real ingest process (`CheckpointCrashWriter`) writes checkpoints in the background;
/// it is SIGKILLed while one is being written (its temporary file complete and synced, not
/// yet renamed), after ingest has gone on past it.
@Suite("Background checkpoints under SIGKILL")
struct BackgroundCheckpointCrashTests {
    /// The events the child ingests, offset by offset (its `traffic()`).
    static func events(_ count: Int) -> [Event] {
        var model = TrafficModel(.init(devices: 40, chatsPerDevice: 30, seed: 77, duplicateRate: 0.02))
        return (0..<count).map { _ in model.next().event }
    }

    static func fold(_ events: ArraySlice<Event>) -> ProjectionState {
        var state = ProjectionState()
        for (offset, event) in zip(events.indices, events) { state.apply(event, at: LogPosition(partition: 0, offset: Int64(offset))) }
        return state
    }

    /// Whether two states hold the same fold (the reference fold has no chain hashes).
    static func sameFold(_ a: ProjectionState, _ b: ProjectionState) -> Bool {
        a.digest == b.digest && a.positions == b.positions && a.counts == b.counts && a.eventIds == b.eventIds
    }

    @Test("SIGKILL during a background checkpoint: ingest had gone on meanwhile, the previous checkpoint loads and replays to the log's state, the next run checkpoints again")
    func sigkillDuringBackgroundCheckpoint() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-crash-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let limit = 6_000
        let process = Process()
        process.executableURL = ChatLedgerProcess.builtProduct("CheckpointCrashWriter")
        process.arguments = [data, String(limit), "1000"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        // A watchdog, not synchronisation: a child stuck (ingest blocked by the checkpoint)
        // is killed, its output ends, and the expectations below fail instead of hanging.
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }

        var lines = ChildLineReader(descriptor: output.fileHandleForReading.fileDescriptor)
        var pausedAt: Int64?
        var lastBatch: Int64 = -1
        var batchesWhilePaused = 0
        while let line = lines.nextLine() {
            if line.hasPrefix("paused ") {
                #expect(line == "paused 2")
                pausedAt = lastBatch
            } else if line.hasPrefix("batch "), let offset = Int64(line.dropFirst("batch ".count)) {
                lastBatch = offset
                if pausedAt != nil { batchesWhilePaused += 1 }
            } else if line == "done" {
                break
            } else {
                Issue.record("unexpected output: \(line)")
            }
        }
        kill(pid, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
        let paused = try #require(pausedAt, "checkpoint 2 never reached its rename")
        #expect(lastBatch == Int64(limit - 1), "ingest finished while checkpoint 2 was in flight")
        #expect(batchesWhilePaused >= 1, "ingest went on while checkpoint 2 was being written (paused after \(paused))")

        let checkpoints = CheckpointStore(dataDirectory: data)
        #expect(checkpoints.sequences() == [1], "checkpoint 2 was never renamed into place")
        #expect(FileManager.default.fileExists(atPath: checkpoints.path(2) + ".tmp"), "the kill came during checkpoint 2's write")
        let events = Self.events(limit)
        let (first, info) = try checkpoints.read(1)
        let firstOffset = try #require(info.positions[0])
        #expect(firstOffset >= 999 && firstOffset < paused, "checkpoint 1 is the one before the kill")
        #expect(Self.sameFold(first, Self.fold(events[...Int(firstOffset)])), "checkpoint 1 holds the state at its position")
        #expect(info.stateDigest == Self.fold(events[...Int(firstOffset)]).digest)

        let log = EventLog(dataDirectory: data)
        let loaded = try ProjectionRecovery.load(log: log, topic: "wa.device-events", checkpoints: checkpoints)
        #expect(loaded.checkpoint?.sequence == 1)
        #expect(Self.sameFold(loaded.state, Self.fold(events[...])), "checkpoint 1 plus the log after it is the state of the whole log")

        // Ingest starts again there and writes the next checkpoint over the leftover temporary file.
        let pipeline = try IngestPipeline(log: log, options: .init(topic: "wa.device-events", fsync: .batch))
        #expect(pipeline.store.snapshot() == loaded.state, "ingest restarts from checkpoint 1 and the log")
        try pipeline.close()
        #expect(checkpoints.sequences() == [1, 2])
        let (second, _) = try checkpoints.read(2)
        #expect(second == loaded.state, "checkpoint 2, written over the leftover temporary file, reads back")
    }
}
