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
        try checkpoints.write(ProjectionRecovery.replayFromZero(log: log, topic: Self.topic).state, topic: Self.topic)
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
        #expect(dropped != ingested, "the fold's drop alone is not what ingest holds (its version counts the erased chat's events)")
        #expect(served == ingested, "serve's refold is ingest's")
        #expect(loaded.state.devices["dev-y"] == pipeline.store.device("dev-y"))
        try pipeline.close()
    }
}
