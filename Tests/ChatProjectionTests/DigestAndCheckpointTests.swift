import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport
import Testing

@Suite("Digests and checkpoints")
struct DigestAndCheckpointTests {
    static func traffic(_ count: Int, seed: UInt64 = 21) -> [Event] {
        var model = TrafficModel(.init(devices: 6, chatsPerDevice: 25, seed: seed, duplicateRate: 0.02))
        return (0..<count).map { _ in model.next().event }
    }

    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-projection-\(UUID().uuidString)").path
    }

    static func fold(_ events: some Sequence<Event>, into state: inout ProjectionState, startingAt offset: Int64 = 0) {
        for (index, event) in events.enumerated() { state.apply(event, at: LogPosition(partition: 0, offset: offset + Int64(index))) }
    }

    @Test("a replay from a checkpoint taken at any split point gives the digest of one replay from zero")
    func checkpointAtAnySplitPoint() throws {
        let events = Self.traffic(4_000)
        var whole = ProjectionState(eventIdWindow: 500)  // small window: eviction happens too
        Self.fold(events, into: &whole)
        var random = SeededGenerator(seed: 8)
        let splits = [0, 1, 2, events.count - 1, events.count] + (0..<30).map { _ in Int(random.next() % UInt64(events.count)) }
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = CheckpointStore(dataDirectory: directory, retain: 2)
        for split in splits {
            var first = ProjectionState(eventIdWindow: 500)
            Self.fold(events[..<split], into: &first)
            let info = try store.write(first, topic: "wa.device-events")
            var (resumed, readInfo) = try store.read(info.sequence)
            #expect(readInfo.stateDigest == first.digest)
            #expect(resumed == first, "a checkpoint round-trips the whole state")
            Self.fold(events[split...], into: &resumed, startingAt: Int64(split))
            #expect(resumed.digest == whole.digest, "split at \(split)")
        }
        #expect(store.sequences().count == 2, "old checkpoints are pruned")
    }

    @Test("the digest does not depend on the order chats and devices were created in")
    func digestIgnoresInsertionOrder() {
        var script = Script()
        script.incoming("a@c.us", "M1", at: 100)
        script.incoming("b@c.us", "M2", at: 200)
        var other = Script()
        other.incoming("b@c.us", "M2", at: 200)
        other.incoming("a@c.us", "M1", at: 100)
        var first = ProjectionState()
        var second = ProjectionState()
        Self.fold(script.events, into: &first)
        Self.fold(other.events, into: &second)
        #expect(first.digest == second.digest)
        // and it does see a difference
        var third = ProjectionState()
        other.add("a@c.us", at: 300, .chatMarkedUnread)
        Self.fold(other.events, into: &third)
        #expect(third.digest != first.digest)
    }

    @Test("on start the newest checkpoint is loaded and only the log after it is replayed")
    func loadCheckpointAndReplayTail() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let events = Self.traffic(3_000)
        let writer = try log.openWriter(topic: "wa.device-events", partition: 0)
        for (index, event) in events.enumerated() {
            let value = EventEncoder.encode(event)
            try writer.stage(LogRecord(offset: Int64(index), key: Array(event.deviceId.utf8), value: value))
            if index == 10 {  // a dead letter in the middle
                try writer.stage(LogRecord(kind: .deadLetter, offset: 100_000, key: nil, value: [0x7B], reason: "invalid_json : x"))
                break
            }
        }
        try writer.commit()
        let more = try log.openWriter(topic: "wa.device-events", partition: 1)
        for (index, event) in events.enumerated() where index > 10 {
            try more.stage(LogRecord(offset: Int64(index), key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
        }
        try more.commit()
        let checkpoints = CheckpointStore(dataDirectory: directory)

        let fromZero = try ProjectionRecovery.load(log: log, topic: "wa.device-events", checkpoints: checkpoints)
        #expect(fromZero.checkpoint == nil)
        #expect(fromZero.replayedRecords == 3_001, "11 events and a dead letter in partition 0, 2,989 events in partition 1")
        #expect(fromZero.state.counts.deadLetters == 1)

        // A checkpoint part-way through partition 1.
        var partial = ProjectionState()
        try ProjectionRecovery.replay(into: &partial, log: log, topic: "wa.device-events", upTo: LogPosition(partition: 0, offset: 100_000))
        try ProjectionRecovery.replay(into: &partial, log: log, topic: "wa.device-events", upTo: LogPosition(partition: 1, offset: 1_500))
        try checkpoints.write(partial, topic: "wa.device-events")
        let resumed = try ProjectionRecovery.load(log: log, topic: "wa.device-events", checkpoints: checkpoints)
        #expect(resumed.checkpoint != nil)
        #expect(resumed.replayedRecords == 3_000 - 1_500 - 1)
        #expect(resumed.state.digest == fromZero.state.digest)
    }

    @Test("replay (which folds one record behind its parse) gives the state of applying the same records one by one, at every stopping point, with dead letters and duplicates among them")
    func replayEqualsRecordByRecordFold() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: "wa.device-events", partition: 0)
        // Every seventh record a dead letter, runs of two at times; 2 % duplicates; a window
        // of 300 ids, so evictions happen too.
        var records: [(event: Event?, offset: Int64)] = []
        var offset: Int64 = 0
        for (index, event) in Self.traffic(2_000, seed: 33).enumerated() {
            if index % 7 == 3 || index % 91 == 4 {
                try writer.stage(LogRecord(kind: .deadLetter, offset: offset, key: nil, value: [0x7B], reason: "invalid_json : x"))
                records.append((nil, offset))
                offset += 1
            }
            try writer.stage(LogRecord(offset: offset, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
            records.append((event, offset))
            offset += 1
        }
        try writer.commit()

        var random = SeededGenerator(seed: 12)
        let stops = [0, 1, 2, 3, 4, records.count - 1] + (0..<25).map { _ in Int(random.next() % UInt64(records.count)) }
        for stop in stops {
            var expected = ProjectionState(eventIdWindow: 300)
            for (event, offset) in records[...stop] {
                let position = LogPosition(partition: 0, offset: offset)
                if let event { expected.apply(event, at: position) } else { expected.skip(at: position) }
            }
            var replayed = ProjectionState(eventIdWindow: 300)
            let count = try ProjectionRecovery.replay(
                into: &replayed, log: log, topic: "wa.device-events", upTo: LogPosition(partition: 0, offset: records[stop].offset))
            #expect(count == stop + 1)
            #expect(replayed.digest == expected.digest, "stopped at record \(stop)")
            #expect(replayed.positions == expected.positions && replayed.counts == expected.counts, "stopped at record \(stop)")
            #expect(replayed.eventIds == expected.eventIds, "stopped at record \(stop)")
        }
    }

    @Test("a replay from zero with partitions on several threads gives exactly the state of a one-thread replay; a device found in two partitions makes it fold on one thread")
    func parallelReplayFromZero() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let topic = "wa.device-events"
        var writers: [Int32: PartitionWriter] = [:]
        var next: [Int32: Int64] = [:]
        func append(_ event: Event, partition: Int32) throws {
            if writers[partition] == nil { writers[partition] = try log.openWriter(topic: topic, partition: partition) }
            let offset = next[partition, default: 0]
            try writers[partition]?.stage(LogRecord(offset: offset, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event)))
            next[partition] = offset + 1
        }
        // Each device on one partition, as the Kafka key makes it; 2 % redelivered duplicates.
        for event in Self.traffic(6_000, seed: 5) {
            try append(event, partition: Int32(Int(event.deviceId.utf8.last ?? 0) % 4))
        }
        try writers[1]?.stage(LogRecord(kind: .deadLetter, offset: next[1, default: 0], key: nil, value: [0x7B], reason: "invalid_json : x"))
        next[1, default: 0] += 1
        for writer in writers.values { try writer.commit() }

        var oneThread = ProjectionState()
        let oneThreadCount = try ProjectionRecovery.replay(into: &oneThread, log: log, topic: topic)
        let (parallel, parallelCount, threads) = try ProjectionRecovery.replayFromZero(log: log, topic: topic, threads: 3)
        #expect(writers.count == 4)
        #expect(threads == 3, "partitions folded on three threads")
        #expect(parallelCount == oneThreadCount)
        #expect(parallel.digest == oneThread.digest)
        #expect(parallel.positions == oneThread.positions && parallel.chainHashes == oneThread.chainHashes)
        #expect(parallel.counts == oneThread.counts, "the same applied, duplicate, ignored and dead-letter counts")
        #expect(oneThread.counts.duplicate > 0 && oneThread.counts.deadLetters == 1)

        // One device's event on a second partition: the fold order would matter, so one thread folds.
        let stray = try #require(Self.traffic(1, seed: 99).first)
        let home = Int32(Int(stray.deviceId.utf8.last ?? 0) % 4)
        try append(stray, partition: (home + 1) % 4)
        for writer in writers.values { try writer.commit() }
        var sequential = ProjectionState()
        try ProjectionRecovery.replay(into: &sequential, log: log, topic: topic)
        // One partition per thread, so the device's two partitions are on different threads.
        let (fallback, _, fallbackThreads) = try ProjectionRecovery.replayFromZero(log: log, topic: topic, threads: 4)
        #expect(fallbackThreads == 1)
        #expect(fallback == sequential)
        // With fewer threads the two partitions may share one, which folds them in order.
        let (shared, _, _) = try ProjectionRecovery.replayFromZero(log: log, topic: topic, threads: 2)
        #expect(shared.digest == sequential.digest)
    }

    @Test("a damaged checkpoint falls back to an older one, then to a full replay, with a warning")
    func damagedCheckpointFallsBack() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let events = Self.traffic(500)
        let writer = try log.openWriter(topic: "t", partition: 0)
        try writer.append(events.enumerated().map { LogRecord(offset: Int64($0.offset), key: nil, value: EventEncoder.encode($0.element)) })
        let checkpoints = CheckpointStore(dataDirectory: directory)
        var state = ProjectionState()
        try ProjectionRecovery.replay(into: &state, log: log, topic: "t", upTo: LogPosition(partition: 0, offset: 199))
        let older = try checkpoints.write(state, topic: "t")
        try ProjectionRecovery.replay(into: &state, log: log, topic: "t", upTo: LogPosition(partition: 0, offset: 399))
        let newer = try checkpoints.write(state, topic: "t")
        let full = try ProjectionRecovery.load(log: log, topic: "t", checkpoints: checkpoints).state.digest

        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: newer.path)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: newer.path))
        let warnings = Warnings()
        let fallback = try ProjectionRecovery.load(log: log, topic: "t", checkpoints: checkpoints, logger: warnings.logger)
        #expect(fallback.checkpoint?.sequence == older.sequence)
        #expect(fallback.replayedRecords == 300)
        #expect(fallback.state.digest == full)
        #expect(warnings.lines.contains { $0.contains("CRC mismatch") })

        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: older.path))
        let replay = try ProjectionRecovery.load(log: log, topic: "t", checkpoints: checkpoints, logger: warnings.logger)
        #expect(replay.checkpoint == nil)
        #expect(replay.replayedRecords == 500)
        #expect(replay.state.digest == full)
    }

    @Test("a checkpoint that does not match the log (the log was replaced) is not used")
    func checkpointMustChainIntoTheLog() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let events = Self.traffic(100)
        let writer = try log.openWriter(topic: "t", partition: 0)
        try writer.append(events.enumerated().map { LogRecord(offset: Int64($0.offset), key: nil, value: EventEncoder.encode($0.element)) })
        var state = ProjectionState()
        try ProjectionRecovery.replay(into: &state, log: log, topic: "t", upTo: LogPosition(partition: 0, offset: 49))
        var forged = state
        Self.fold([Script.event(chat: "x@c.us")], into: &forged, startingAt: 49)  // positions stay, chain hash becomes zero
        let checkpoints = CheckpointStore(dataDirectory: directory)
        try checkpoints.write(forged, topic: "t")
        let warnings = Warnings()
        let loaded = try ProjectionRecovery.load(log: log, topic: "t", checkpoints: checkpoints, logger: warnings.logger)
        #expect(loaded.checkpoint == nil)
        #expect(warnings.lines.contains { $0.contains("does not chain") })
    }
}

/// Collects warning lines.
final class Warnings: Sendable {
    private let collected = Mutex<[String]>([])
    var lines: [String] { collected.withLock { $0 } }
    var logger: Logger { Logger(label: "test", minimumLevel: .warning) { line in self.collected.withLock { $0.append(line) } } }
}

import Synchronization

extension Script {
    static func event(chat: String) -> Event {
        Event(eventId: "forged", deviceId: "dev-1", occurredAt: 1, chatId: chat, payload: .chatMarkedUnread)
    }
}
