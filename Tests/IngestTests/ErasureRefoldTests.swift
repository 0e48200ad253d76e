import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Ingest
import Testing

/// `ErasureRefold`: the refold `serve` does after a chat or contact erasure, from a log
/// ingest may not have redacted yet, gives the device ingest holds.
@Suite("Erasure refold from an unredacted log")
struct ErasureRefoldTests {
    static let topic = "wa.device-events"

    @Test("serve loading a checkpoint written before a chat erasure (the log after it not yet redacted) refolds the device as ingest does at its start: the same device, version included")
    func loadAfterCheckpointBeforeErasure() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-refold-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        var offset: Int64 = 0
        func append(_ key: String, _ value: [UInt8], reason: String = "") throws {
            try writer.append([LogRecord(offset: offset, key: Array(key.utf8), value: value, reason: reason)])
            offset += 1
        }
        func message(_ device: String, _ chat: String, _ index: Int) -> [UInt8] {
            EventEncoder.encode(Event(
                eventId: "\(device)-\(index)", deviceId: device, occurredAt: Int64(index), chatId: chat,
                payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "p\(index)"))))
        }
        for index in 0..<40 { try append(index % 4 == 0 ? "dev-y" : "dev-x", message(index % 4 == 0 ? "dev-y" : "dev-x", "49155500\(index % 3)@c.us", index)) }
        try writer.sync()
        let checkpoints = CheckpointStore(dataDirectory: directory)
        let checkpointed = try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic).state
        try checkpoints.write(checkpointed, topic: Self.topic)
        // Written by ingest after that checkpoint; a crash before its redaction and its checkpoint.
        let erasure = try ErasureRequest(deviceId: "dev-x", chatId: "491555001@c.us", reason: "r").record(eventId: "erase", occurredAt: 50)
        try append("dev-x", erasure.value, reason: LogErasure.reason(.chat))
        for index in 50..<55 { try append("dev-x", message("dev-x", "491555002@c.us", index)) }
        try writer.sync()

        var loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: checkpoints)
        let dropped = try #require(loaded.state.devices["dev-x"])
        #expect(try ErasureRefold.refoldErasedDevices(in: &loaded.state, log: log, topic: Self.topic, after: loaded.checkpoint?.positions ?? [:]) == 1)
        let served = try #require(loaded.state.devices["dev-x"])
        #expect(served.chat("491555001@c.us") == nil)

        let pipeline = try IngestPipeline(log: log, options: .init(topic: Self.topic, fsync: .never))
        let ingested = try #require(pipeline.store.device("dev-x"))
        #expect(dropped.version == ingested.version, "the fold's drop reaches ingest's version too: the erasure's offset + 1, then one per event")
        #expect(served == ingested, "serve's refold is ingest's")
        #expect(served.version > checkpointed.version(of: "dev-x") + 5, "above every version before the erasure, even after 5 more events")
        #expect(loaded.state.devices["dev-y"] == pipeline.store.device("dev-y"))
        try pipeline.close()
    }

    @Test("a contact erasure by the phone id also redacts the records of the contact's LID written before the contact.aliased event that links them (the fold had merged them into the contact's chat); nothing of the contact is left in the log or the fold, and serve's refold agrees")
    func aliasBeforeItsLink() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-alias-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let pipeline = try IngestPipeline(log: log, options: .init(topic: Self.topic, fsync: .never))
        var offset: Int64 = 0
        func accept(_ event: Event) throws {
            defer { offset += 1 }
            let value = EventEncoder.encode(event)
            try Array("dev-l".utf8).withUnsafeBytes { key in
                try value.withUnsafeBytes { try pipeline.accept(partition: 0, offset: offset, timestamp: offset, key: key, value: $0) }
            }
        }
        func message(_ chat: String, _ index: Int, _ preview: String) -> Event {
            Event(eventId: "e\(index)", deviceId: "dev-l", occurredAt: Int64(index), chatId: chat,
                  payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: preview)))
        }
        let phone = "491701234567@c.us", lid = "140913951141911@lid"
        for index in 0..<6 { try accept(message(lid, index, "lid-secret \(index)")) }  // before anything links the LID to the phone id
        try accept(message(phone, 6, "phone-secret 6"))
        try accept(Event(eventId: "alias", deviceId: "dev-l", occurredAt: 7, chatId: phone, payload: .contactAliased(ContactAliased(alias: lid))))
        for index in 8..<12 { try accept(message(index % 2 == 0 ? phone : lid, index, "merged-secret \(index)")) }
        for index in 12..<15 { try accept(message("491709999999@c.us", index, "kept \(index)")) }
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        #expect(pipeline.store.device("dev-l")?.chat(phone) != nil && pipeline.store.device("dev-l")?.chat(lid) != nil, "one chat under both ids")

        let erasure = try ErasureRequest(deviceId: "dev-l", contactId: phone, reason: "request 11")
        try accept(erasure.event(eventId: "erase", occurredAt: 99))
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        let device = try #require(pipeline.store.device("dev-l"))
        #expect(device.chats.count == 1 && device.chat("491709999999@c.us") != nil, "only the other chat: \(device.chats.count) chats")
        #expect(pipeline.counters.redactedRecords == 13, "6 LID messages before the link, the phone message, the alias event, 4 after it, the erasure's key")
        var served = ProjectionState()
        let parser = EventParser()
        try log.reader(topic: Self.topic, partition: 0).forEach { record in
            served.fold(StoredRecord(record, parser: parser), at: LogPosition(partition: 0, offset: record.offset), chainHash: record.chainHash)
            return true
        }
        #expect(served.devices["dev-l"] == device, "a replay of the redacted log gives ingest's device")
        #expect(try ErasureRefold.device("dev-l", log: log, topic: Self.topic, partition: 0, through: offset - 1) == device, "and so does serve's refold")
        try pipeline.close()
        let leaks = try ErasureTests.files(directory).filter { file in
            ["lid-secret", "phone-secret", "merged-secret"].contains { file.bytes.firstRange(of: Array($0.utf8)) != nil }
        }
        #expect(leaks.isEmpty, "\(leaks.map(\.path))")
        #expect(try LogVerifier.verify(log).isClean)
    }
}
