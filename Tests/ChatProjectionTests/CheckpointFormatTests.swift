import ChatEvents
@testable import ChatProjection
import EventLog
import Foundation
import LedgerSupport
import Testing

/// Checkpoint format version 2: fixed wire codes, message histories, a window per
/// partition; older versions are skipped and the log replayed.
@Suite("Checkpoint format")
struct CheckpointFormatTests {
    @Test("message kinds and ack states are written as the fixed codes schemas/projection.md lists, not case positions")
    func fixedWireCodes() {
        let kinds: [MessageKind: UInt8] = [
            .text: 0, .image: 1, .video: 2, .audio: 3, .document: 4, .sticker: 5, .location: 6, .contact: 7, .call: 8, .system: 9,
        ]
        #expect(kinds.count == MessageKind.allCases.count)
        for (kind, code) in kinds {
            #expect(ProjectionCodec.WireCode.kind(kind) == code)
            #expect(ProjectionCodec.WireCode.kind(code) == kind)
        }
        let acks: [AckStatus: UInt8] = [.error: 0, .pending: 1, .server: 2, .delivered: 3, .read: 4, .played: 5]
        #expect(acks.count == AckStatus.allCases.count)
        for (ack, code) in acks {
            #expect(ProjectionCodec.WireCode.ack(ack) == code)
            #expect(ProjectionCodec.WireCode.ack(code) == ack)
        }
        #expect(ProjectionCodec.WireCode.kind(10) == nil)
        #expect(ProjectionCodec.WireCode.ack(6) == nil)
    }

    @Test("a checkpoint round-trips unread histories of every kind: hidden snapshot counts, late, read and own messages")
    func historiesRoundTrip() throws {
        var script = Script()
        script.add("a@c.us", at: 100, .chatSnapshot(ChatSnapshot(
            name: "A", isGroup: false, unreadCount: 4, markedUnread: false, archived: false, pinned: false, muteUntil: 0, timestamp: 100,
            lastMessage: SnapshotMessage(id: "S1", fromMe: false, kind: .text, preview: "x", timestamp: 100))))
        for index in 0..<20 { script.incoming("a@c.us", "M\(index)", at: 200 + Int64(index)) }
        script.own("a@c.us", "O1", at: 300)
        script.incoming("a@c.us", "L1", at: 150)
        script.incoming("a@c.us", "SYS", at: 400, kind: .system)
        script.incoming("140913951141911@lid", "LID1", at: 410)
        script.add("a@c.us", at: 420, .contactAliased(ContactAliased(alias: "140913951141911@lid")))
        let (_, state) = script.fold()
        let directory = DigestAndCheckpointTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = CheckpointStore(dataDirectory: directory)
        let info = try store.write(state, topic: "t")
        var (read, _) = try store.read(info.sequence)
        #expect(read == state)
        #expect(read.devices["dev-1"]?.aliases.isEmpty == false, "aliases are part of the checkpoint")
        // The histories came back whole: a read up to the own message reads the late one
        // (L1) and leaves the aliased chat's newer message.
        var original = state
        let readUpToOwn = Event(eventId: "R", deviceId: "dev-1", occurredAt: 500, chatId: "a@c.us", payload: .chatRead(ChatRead(upToMessageId: "O1")))
        original.apply(readUpToOwn, at: LogPosition(partition: 0, offset: 100))
        read.apply(readUpToOwn, at: LogPosition(partition: 0, offset: 100))
        #expect(read.devices["dev-1"]?.chats["a@c.us"]?.unreadCount == 1, "only LID1, newer than O1, is left")
        #expect(read.digest == original.digest)
    }

    @Test("a checkpoint of format version 1 is skipped with a log line naming the version, and the projection is rebuilt from the log")
    func oldVersionIsRebuilt() throws {
        let directory = DigestAndCheckpointTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let events = DigestAndCheckpointTests.traffic(300)
        let writer = try log.openWriter(topic: "t", partition: 0)
        try writer.append(events.enumerated().map { LogRecord(offset: Int64($0.offset), key: nil, value: EventEncoder.encode($0.element)) })
        let checkpoints = CheckpointStore(dataDirectory: directory)
        var state = ProjectionState()
        try ProjectionRecovery.replay(into: &state, log: log, topic: "t", upTo: LogPosition(partition: 0, offset: 199))
        let info = try checkpoints.write(state, topic: "t")
        let full = try ProjectionRecovery.load(log: log, topic: "t", checkpoints: checkpoints)
        #expect(full.checkpoint?.sequence == info.sequence, "a current checkpoint is used")

        // The same file as version 1 wrote it: magic, version 1, …, with a valid CRC.
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: info.path))).dropLast(4)
        bytes[8] = 1
        bytes[9] = 0
        let crc = CRC32C.checksum(Array(bytes))
        let old = Array(bytes) + withUnsafeBytes(of: crc.littleEndian, Array.init)
        try Data(old).write(to: URL(fileURLWithPath: info.path))

        let warnings = Warnings()
        let loaded = try ProjectionRecovery.load(log: log, topic: "t", checkpoints: checkpoints, logger: warnings.logger)
        #expect(loaded.checkpoint == nil)
        #expect(loaded.replayedRecords == 300)
        #expect(loaded.state.digest == full.state.digest)
        #expect(warnings.lines.contains { $0.contains("checkpoint format version 1") && $0.contains("rebuilt from the log") })
    }

    @Test("duplicates are decided per partition: folding partitions interleaved (live) or one after the other (replay) gives the same state")
    func liveAndReplayDecideDuplicatesAlike() throws {
        // Two partitions; partition 1 redelivers an event after partition 0 has seen more
        // events than the window holds, but partition 1 itself has not.
        func event(_ id: String, device: String, at time: Int64) -> Event {
            Event(eventId: id, deviceId: device, occurredAt: time, chatId: "a@c.us", payload: .messageCreated(MessageCreated(
                messageId: "M\(id)", fromMe: false, kind: .text, preview: "x")))
        }
        let partition1 = [event("r1", device: "dev-b", at: 1), event("r2", device: "dev-b", at: 2), event("r1", device: "dev-b", at: 1)]
        let partition0 = (0..<20).map { event("p\($0)", device: "dev-a", at: Int64($0)) }
        var live = ProjectionState(eventIdWindow: 5)
        var offsets: [Int32: Int64] = [0: 0, 1: 0]
        func apply(_ event: Event, _ partition: Int32, to state: inout ProjectionState) {
            state.apply(event, at: LogPosition(partition: partition, offset: offsets[partition]!))
            offsets[partition]! += 1
        }
        apply(partition1[0], 1, to: &live)
        apply(partition1[1], 1, to: &live)
        for event in partition0 { apply(event, 0, to: &live) }
        apply(partition1[2], 1, to: &live)

        offsets = [0: 0, 1: 0]
        var replayed = ProjectionState(eventIdWindow: 5)
        for event in partition0 { apply(event, 0, to: &replayed) }
        for event in partition1 { apply(event, 1, to: &replayed) }
        #expect(live.counts.duplicate == 1)
        #expect(live.digest == replayed.digest)
        #expect(live.eventIds == replayed.eventIds)
        #expect(live.devices["dev-b"]?.chats["a@c.us"]?.unreadCount == 2)
    }
}
