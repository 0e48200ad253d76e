import ChatEvents
@testable import ChatProjection
import EventLog
import Foundation
import LedgerSupport
import Testing

/// A checkpoint of format 3, written by a build whose refold after a chat or contact
/// erasure set the device's version to the count of its surviving events (and whose device
/// erasures forgot the version), is read with this build's versions: loading it, the audit
/// view from it and `verify` all agree with a replay of the log from zero.
@Suite("Checkpoints of older formats are brought to this build's fold (versions after erasures, aliases before a first chat, incoming messages behind a reply)")
struct CheckpointUpgradeTests {
    static let topic = DeviceEventsTopic.defaultName

    /// A redacted log: dev-a's messages on two chats, a chat erasure of one; dev-b's
    /// messages, a device erasure of it; every erasure redacted as ingest redacts it.
    /// Returns the writer, for more records, and the next offset.
    static func redactedLog(_ log: EventLog) throws -> (PartitionWriter, Int64) {
        let writer = try log.openWriter(topic: topic, partition: 0, options: .init(fsync: .never))
        var offset: Int64 = 0
        func append(_ event: Event, key: String) throws {
            let reason: String
            if case .ledgerErased(let erasure) = event.payload {
                reason = LogErasure.reason(erasure.scope == .device ? .device : .chat)
            } else {
                reason = ""
            }
            try writer.append([LogRecord(offset: offset, key: Array(key.utf8), value: EventEncoder.encode(event), reason: reason)])
            if case .ledgerErased(let erasure) = event.payload,
                let selector = ErasureSelector(erasure, deviceDigestName: event.deviceId, erasureOffset: offset)
            {
                _ = try selector.redact(in: writer)
            }
            offset += 1
        }
        for index in 0..<20 {
            try append(message("dev-a", chat: index % 2 == 0 ? "491555000001@c.us" : "491555000002@c.us", index: index), key: "dev-a")
            if index % 4 == 0 { try append(message("dev-b", chat: "491555000003@c.us", index: index), key: "dev-b") }
        }
        try append(erasure("dev-a", chat: "491555000001@c.us", id: "erase-a"), key: "dev-a")
        try append(erasure("dev-b", chat: nil, id: "erase-b"), key: "dev-b")
        for index in 20..<23 { try append(message("dev-a", chat: "491555000002@c.us", index: index), key: "dev-a") }
        try writer.sync()
        return (writer, offset)
    }

    static func message(_ device: String, chat: String, index: Int) -> Event {
        Event(eventId: "\(device)-\(index)", deviceId: device, occurredAt: Int64(index), chatId: chat,
              payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "p\(index)")))
    }

    static func erasure(_ device: String, chat: String?, id: String) -> Event {
        Event(eventId: id, deviceId: DeviceProjection.digestName(device), occurredAt: 99, chatId: nil,
              payload: .ledgerErased(LedgerErasure(scope: chat == nil ? .device : .chat, subject: chat.map(DeviceProjection.digestName), reason: "r")))
    }

    /// The state the previous build held for that log: the redacted records passed, and the
    /// erasure records too (its refold never read them), so dev-a's version counts the
    /// events left and dev-b is forgotten.
    static func previousBuildState(_ log: EventLog) throws -> ProjectionState {
        var state = ProjectionState()
        let parser = EventParser()
        try log.reader(topic: topic, partition: 0).forEach { record in
            let stored: StoredRecord = LogErasure(record) != nil ? .redacted : StoredRecord(record, parser: parser)
            state.fold(stored, at: LogPosition(partition: 0, offset: record.offset), chainHash: record.chainHash)
            return true
        }
        return state
    }

    @Test("loading a format 3 checkpoint written after a chat and a device erasure refolds the erased devices: the state, then the log after it, equal a replay from zero (versions above every one before), and verify finds no problem with the checkpoint")
    func format3CheckpointUpgraded() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-upgrade-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        var (writer, offset) = try Self.redactedLog(log)
        let previous = try Self.previousBuildState(log)
        #expect(previous.version(of: "dev-a") == 13 && previous.devices["dev-b"] == nil, "the count of dev-a's events left")
        let checkpoints = CheckpointStore(dataDirectory: directory)
        let info = try checkpoints.write(previous, topic: Self.topic)
        try Data(try OlderCheckpoint.bytes(of: info.path, state: previous, topic: Self.topic, version: 3)).write(to: URL(fileURLWithPath: info.path))
        #expect(try checkpoints.read(info.sequence).1.formatVersion == 3)

        // After the checkpoint: dev-b comes back, dev-a goes on.
        for (index, device) in ["dev-b", "dev-a", "dev-b"].enumerated() {
            let event = Self.message(device, chat: "491555000004@c.us", index: 30 + index)
            try writer.append([LogRecord(offset: offset, key: Array(device.utf8), value: EventEncoder.encode(event))])
            offset += 1
        }
        try writer.sync()

        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        let loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(loaded.checkpoint?.sequence == info.sequence && loaded.replayedRecords == 3, "started from the checkpoint")
        #expect(loaded.state.devices == replayed.devices && loaded.state.erasedDeviceVersions.isEmpty)
        #expect(loaded.state.digest == replayed.digest)
        let devA = try #require(loaded.state.devices["dev-a"]), devB = try #require(loaded.state.devices["dev-b"])
        #expect(devA.version > 20 + 5 && devB.version > 5, "above every version before the erasures: \(devA.version), \(devB.version)")
        #expect(try AuditLog(dataDirectory: directory, topic: Self.topic).device("dev-a", at: LogPosition(partition: 0, offset: offset - 1)) == devA)

        let checks = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(checks.count == 1 && checks.allSatisfy(\.problems.isEmpty), "\(checks.map(\.problems))")
    }

    @Test(
        "loading a format 4 checkpoint whose fold dropped a contact.aliased that came before the device's first chat refolds the devices with an alias (one an erasure names as an erasure refolds it): the state, then the log after it, equal a replay from zero, and verify finds no problem",
        arguments: [false, true])
    func format4CheckpointAliasUpgraded(withErasure: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-upgrade-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        let phone = "491555000009@c.us", lid = "98765432109876@lid", other = "491555000011@c.us"
        var offset: Int64 = 0
        // Keyed by the device (an erasure's own id is a digest), redacted as ingest redacts.
        func append(_ event: Event, key: String = "dev-c") throws {
            let isErasure = if case .ledgerErased = event.payload { true } else { false }
            try writer.append([LogRecord(
                offset: offset, key: Array(key.utf8), value: EventEncoder.encode(event), reason: isErasure ? LogErasure.reason(.chat) : "")])
            if case .ledgerErased(let erased) = event.payload,
                let selector = ErasureSelector(erased, deviceDigestName: event.deviceId, erasureOffset: offset)
            {
                _ = try selector.redact(in: writer)
            }
            offset += 1
        }
        try append(Event(eventId: "alias-c", deviceId: "dev-c", occurredAt: 1, chatId: phone, payload: .contactAliased(ContactAliased(alias: lid))))
        try append(Self.message("dev-c", chat: phone, index: 1))
        try append(Self.message("dev-d", chat: "491555000010@c.us", index: 2), key: "dev-d")
        if withErasure {
            try append(Self.message("dev-c", chat: other, index: 3))
            try append(Self.erasure("dev-c", chat: other, id: "erase-other"))
        }
        try writer.sync()
        // The previous build's state: the same but for dev-c's alias (the device did not
        // exist yet when it came; the alias counted as ignored either way).
        var previous = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        var devC = try #require(previous.devices["dev-c"])
        #expect(!devC.aliases.isEmpty)
        devC.aliases = [:]
        previous.replaceDevice("dev-c", with: devC)
        let checkpoints = CheckpointStore(dataDirectory: directory)
        let info = try checkpoints.write(previous, topic: Self.topic)
        try Data(try OlderCheckpoint.bytes(of: info.path, state: previous, topic: Self.topic, version: 4)).write(to: URL(fileURLWithPath: info.path))
        #expect(try checkpoints.read(info.sequence).1.formatVersion == 4)

        // After the checkpoint: a message under the LID.
        try append(Self.message("dev-c", chat: lid, index: 5))
        try writer.sync()
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        #expect(replayed.devices["dev-c"]?.chats[lid] == nil && replayed.devices["dev-c"]?.chats[phone]?.unreadCount == 2)
        let loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(loaded.checkpoint?.sequence == info.sequence && loaded.replayedRecords == 1, "started from the checkpoint")
        #expect(
            loaded.state.devices == replayed.devices && loaded.state.digest == replayed.digest,
            "versions: \(loaded.state.devices["dev-c"]?.version ?? 0), \(replayed.devices["dev-c"]?.version ?? 0)")
        let checks = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(checks.count == 1 && checks.allSatisfy(\.problems.isEmpty), "\(checks.map(\.problems))")
    }

    @Test("loading a format 5 checkpoint whose fold counted an incoming message that arrived behind a newer own message refolds that device: the state, then the log after it, equal a replay from zero, and verify finds no problem")
    func format5CheckpointLateIncomingUpgraded() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-upgrade-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        let chat = "491555000012@c.us"
        var offset: Int64 = 0
        func append(_ device: String, _ messageId: String, at time: Int64, fromMe: Bool) throws {
            let event = Event(
                eventId: "e-\(messageId)", deviceId: device, occurredAt: time, chatId: chat,
                payload: .messageCreated(MessageCreated(messageId: messageId, fromMe: fromMe, kind: .text, preview: messageId)))
            try writer.append([LogRecord(offset: offset, key: Array(device.utf8), value: EventEncoder.encode(event))])
            offset += 1
        }
        try append("dev-e", "M1", at: 1_000, fromMe: false)
        try append("dev-e", "O3", at: 3_000, fromMe: true)
        try append("dev-e", "M2", at: 1_500, fromMe: false)  // behind the reply: read from format 6 on
        try append("dev-f", "F1", at: 1_000, fromMe: false)
        // dev-g's own message comes from a history snapshot's last message.
        let snapshot = Event(
            eventId: "e-snap", deviceId: "dev-g", occurredAt: 5_000, chatId: chat,
            payload: .chatSnapshot(ChatSnapshot(
                name: "G", isGroup: false, unreadCount: 0, markedUnread: false, archived: false, pinned: false, muteUntil: 0, timestamp: 5_000,
                lastMessage: SnapshotMessage(id: "GO5", fromMe: true, kind: .text, preview: "mine", timestamp: 5_000))))
        try writer.append([LogRecord(offset: offset, key: Array("dev-g".utf8), value: EventEncoder.encode(snapshot))])
        offset += 1
        try append("dev-g", "G2", at: 2_000, fromMe: false)
        try writer.sync()
        // The previous build's state: the late messages counted.
        var previous = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        for device in ["dev-e", "dev-g"] {
            #expect(previous.devices[device]?.chats[chat]?.unreadCount == 0, "this build reads it")
            var projection = try #require(previous.devices[device])
            _ = projection.chats.modify(ChatKey(chat), creating: false) { $0.unreadCount = 1 }
            previous.replaceDevice(device, with: projection)
        }
        let checkpoints = CheckpointStore(dataDirectory: directory)
        let info = try checkpoints.write(previous, topic: Self.topic)
        try Data(try OlderCheckpoint.bytes(of: info.path, state: previous, topic: Self.topic, version: 5)).write(to: URL(fileURLWithPath: info.path))
        #expect(try checkpoints.read(info.sequence).1.formatVersion == 5)

        try append("dev-e", "M4", at: 4_000, fromMe: false)
        try writer.sync()
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        #expect(replayed.devices["dev-e"]?.chats[chat]?.unreadCount == 1)
        let loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(loaded.checkpoint?.sequence == info.sequence && loaded.replayedRecords == 1, "started from the checkpoint")
        #expect(loaded.state.devices == replayed.devices && loaded.state.digest == replayed.digest)
        let checks = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(checks.count == 1 && checks.allSatisfy(\.problems.isEmpty), "\(checks.map(\.problems))")
    }

    @Test("a format 6 checkpoint is read with format 7's rule that an edit leaves a revoked last message empty: the device with an edit after its revoke is refolded, load equals a replay from zero, verify is clean")
    func format6CheckpointEditAfterRevokeUpgraded() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-upgrade-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        let chat = "491555000013@c.us"
        var offset: Int64 = 0
        func append(_ device: String, _ id: String, _ payload: EventPayload) throws {
            let event = Event(eventId: "e-\(device)-\(id)", deviceId: device, occurredAt: 1_000 + offset, chatId: chat, payload: payload)
            try writer.append([LogRecord(offset: offset, key: Array(device.utf8), value: EventEncoder.encode(event))])
            offset += 1
        }
        for device in ["dev-r", "dev-s"] {
            try append(device, "c", .messageCreated(MessageCreated(messageId: "M1", fromMe: false, kind: .text, preview: "secret")))
        }
        try append("dev-r", "r", .messageRevoked(MessageRevoked(messageId: "M1", scope: .everyone)))
        try append("dev-r", "e", .messageEdited(MessageEdited(messageId: "M1", preview: "secret, edited")))  // made before the revoke
        try append("dev-s", "e", .messageEdited(MessageEdited(messageId: "M1", preview: "edited")))  // no revoke: the edit holds
        try writer.sync()
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        #expect(replayed.devices["dev-r"]?.chats[chat]?.lastMessage?.preview == "", "revoked stays empty")
        #expect(replayed.devices["dev-r"]?.chats[chat]?.lastMessage?.revoked == true)
        #expect(replayed.devices["dev-s"]?.chats[chat]?.lastMessage?.preview == "edited")
        // The previous build's state: the edit wrote the text back.
        var previous = replayed
        var projection = try #require(previous.devices["dev-r"])
        _ = projection.chats.modify(ChatKey(chat), creating: false) { $0.lastMessage?.preview = "secret, edited" }
        previous.replaceDevice("dev-r", with: projection)
        let checkpoints = CheckpointStore(dataDirectory: directory)
        let info = try checkpoints.write(previous, topic: Self.topic)
        try Data(try OlderCheckpoint.bytes(of: info.path, state: previous, topic: Self.topic, version: 6)).write(to: URL(fileURLWithPath: info.path))
        #expect(try checkpoints.read(info.sequence).1.formatVersion == 6)
        let loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(loaded.checkpoint?.sequence == info.sequence && loaded.replayedRecords == 0, "started from the checkpoint")
        #expect(loaded.state.devices == replayed.devices && loaded.state.digest == replayed.digest)
        let checks = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: checkpoints)
        #expect(checks.count == 1 && checks.allSatisfy(\.problems.isEmpty), "\(checks.map(\.problems))")
    }

    @Test("a checkpoint written while an erased device has no state keeps its version (format 4 and later), read back equal, digest included")
    func erasedDeviceVersionsRoundTrip() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-upgrade-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        _ = try Self.redactedLog(log)
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic, threads: 1).state
        #expect(replayed.erasedDeviceVersions == [SHA256.hash(Array("dev-b".utf8)): 27], "dev-b erased at offset 26")
        let checkpoints = CheckpointStore(dataDirectory: directory)
        let info = try checkpoints.write(replayed, topic: Self.topic)
        let (read, readInfo) = try checkpoints.read(info.sequence)
        #expect(read == replayed && readInfo.formatVersion == CheckpointStore.version)
        #expect(readInfo.stateDigest == replayed.digest && info.stateDigest == replayed.digest)
        let without = ProjectionState(
            devices: replayed.devices, positions: replayed.positions, chainHashes: replayed.chainHashes, eventIds: replayed.eventIds,
            counts: replayed.counts)
        #expect(without.digest != replayed.digest && without != replayed, "the digest and equality cover the erased devices' versions")
    }
}
