import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Ingest
import KafkaTestSupport
import LedgerSupport
import Testing

/// Erasure through the pipeline, as ingest applies a `ledger.erased` event consumed from Kafka.
@Suite("Erasure: a ledger.erased event drops what it names from the fold, the log and the checkpoints")
struct ErasureTests {
    let topic = "wa.device-events"
    /// Ids and texts of the erased device, none of which may stay on disk.
    let erasedDevice = "dev-forget-me"
    let erasedChat = "4915550999001@c.us"
    let erasedPreview = "private-preview-of-forget-me"
    let keptDevice = "dev-keep"

    final class Feed {
        var offset: Int64 = 0
        let pipeline: IngestPipeline

        init(_ pipeline: IngestPipeline) { self.pipeline = pipeline }

        func accept(key: String, value: [UInt8], partition: Int32 = 0) throws {
            defer { offset += 1 }
            try Array(key.utf8).withUnsafeBytes { keyBuffer in
                try value.withUnsafeBytes { valueBuffer in
                    try pipeline.accept(partition: partition, offset: offset, timestamp: 1_000 + offset, key: keyBuffer, value: valueBuffer)
                }
            }
        }
    }

    func message(_ device: String, chat: String, index: Int, preview: String) -> [UInt8] {
        EventEncoder.encode(Event(
            eventId: "\(device)-m\(index)", deviceId: device, occurredAt: Int64(10_000 + index), chatId: chat,
            payload: .messageCreated(MessageCreated(messageId: "\(device)-msg-\(index)", fromMe: index % 3 == 0, kind: .text, preview: preview))))
    }

    /// Thousands of events of the erased device, interleaved with another's, checkpoints
    /// on the way, a dead letter of it; then its erasure and more events of the other.
    func ingestAndErase(_ directory: String, scope: (chat: String?, contact: String?) = (nil, nil)) throws -> (IngestPipeline, Feed) {
        let pipeline = try IngestPipeline(
            log: EventLog(dataDirectory: directory),
            options: .init(topic: topic, fsync: .never, maxSegmentBytes: 256 << 10, checkpointEveryRecords: 1_000))
        let feed = Feed(pipeline)
        for index in 0..<3_000 {
            let chat = index % 2 == 0 ? erasedChat : "4915550999\(100 + index % 7)@c.us"
            try feed.accept(key: erasedDevice, value: message(erasedDevice, chat: chat, index: index, preview: "\(erasedPreview) \(index)"))
            if index % 3 == 0 {
                try feed.accept(key: keptDevice, value: message(keptDevice, chat: "4915550111\(index % 5)@c.us", index: index, preview: "kept \(index)"))
            }
            if index == 1_500 { try feed.accept(key: erasedDevice, value: Array("{\"deviceId\":\"\(erasedDevice)\" broken".utf8)) }
            if index % 500 == 499 {
                try pipeline.commitBatch()
                pipeline.waitUntilApplied()
                try pipeline.checkpointIfDue(force: true)
            }
        }
        try pipeline.commitBatch()
        let request = try ErasureRequest(deviceId: erasedDevice, chatId: scope.chat, contactId: scope.contact, reason: "GDPR art. 17, request 42")
        let record = request.record(eventId: "erasure-1", occurredAt: 99_000)
        try feed.accept(key: erasedDevice, value: record.value)
        for index in 0..<20 {
            try feed.accept(key: keptDevice, value: message(keptDevice, chat: "49155501119@c.us", index: 5_000 + index, preview: "after \(index)"))
        }
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        return (pipeline, feed)
    }

    /// Every file under `directory` with its bytes (what an erasure must leave no trace in).
    static func files(_ directory: String) throws -> [(path: String, bytes: [UInt8])] {
        try DirectoryFiles.all(under: directory)
    }

    @Test("a device with thousands of events erased: gone from the fold, no id or preview of it in any file, verify clean with the redactions counted, replay from zero equal to live")
    func deviceErasure() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (pipeline, _) = try ingestAndErase(directory)
        #expect(pipeline.store.device(erasedDevice) == nil)
        #expect(pipeline.store.device(keptDevice)?.chats.count == 6)
        #expect(pipeline.counters.erasures == 1 && pipeline.counters.redactedRecords == 3_002, "3,000 events, a dead letter, the erasure's own key")
        try pipeline.close()

        let found = try Self.files(directory).filter { file in
            [erasedDevice, erasedPreview, "\(erasedDevice)-msg-", "4915550999001"].contains { file.bytes.firstRange(of: Array($0.utf8)) != nil }
        }
        #expect(found.isEmpty, "\(found.map(\.path))")
        #expect(try Self.files(directory).contains { $0.bytes.firstRange(of: Array("kept 3".utf8)) != nil }, "the other device's data stays")

        let log = EventLog(dataDirectory: directory)
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.erasures.count == 1 && verification.erasures.first?.redactedRecords == 3_001)
        #expect(verification.erasures.first?.erasure.deviceDigest == SHA256.hash(Array(erasedDevice.utf8)))

        let checkpoints = CheckpointStore(dataDirectory: directory)
        #expect(checkpoints.sequences().count >= 1)
        for sequence in checkpoints.sequences() {
            let (_, info) = try checkpoints.read(sequence)
            #expect((info.positions[0] ?? -1) >= 3_001 + 1_000, "no checkpoint from before the erasure is left")
        }

        let live = try IngestPipeline(log: log, options: .init(topic: topic, fsync: .never))
        let replayed = try ProjectionRecovery.replayFromZero(log: log, topic: topic)
        #expect(replayed.state.devices[erasedDevice] == nil)
        #expect(replayed.state.digest == live.store.snapshot().digest)
        #expect(replayed.state.devices[keptDevice] == live.store.device(keptDevice))
    }

    @Test("a chat erasure drops that chat of the device and redacts its records' values; the device's other chats stay; verify is clean")
    func chatErasure() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (pipeline, _) = try ingestAndErase(directory, scope: (erasedChat, nil))
        let device = try #require(pipeline.store.device(erasedDevice))
        #expect(device.chat(erasedChat) == nil && device.chats.count == 7)
        try pipeline.close()
        let found = try Self.files(directory).filter { file in
            ["\(erasedPreview) 0\"", "\(erasedPreview) 2\"", "4915550999001"].contains { file.bytes.firstRange(of: Array($0.utf8)) != nil }
        }
        #expect(found.isEmpty, "\(found.map(\.path))")
        let verification = try LogVerifier.verify(EventLog(dataDirectory: directory))
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.erasures.first?.redactedRecords == 1_501, "1,500 events of the chat and the device's dead letter")
        let replayed = try ProjectionRecovery.replayFromZero(log: EventLog(dataDirectory: directory), topic: topic)
        #expect(replayed.state.devices[erasedDevice] == device, "the device was refolded from the redacted log: a replay gives it, version and all")
        let live = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: topic, fsync: .never))
        #expect(replayed.state.digest == live.store.snapshot().digest)
    }

    @Test("an erasure whose key is not the device it names is a dead letter, and erases nothing")
    func mismatchedKeyIsADeadLetter() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: topic, fsync: .never))
        let feed = Feed(pipeline)
        try feed.accept(key: erasedDevice, value: message(erasedDevice, chat: erasedChat, index: 0, preview: "hello"))
        let record = try ErasureRequest(deviceId: erasedDevice, reason: "r").record(eventId: "e", occurredAt: 1)
        try feed.accept(key: "someone-else", value: record.value)
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        #expect(pipeline.store.device(erasedDevice) != nil)
        #expect(pipeline.counters.deadLettersByReason["key_mismatch"] == 1 && pipeline.counters.erasures == 0)
        try pipeline.close()
    }
}

@Suite("Erasure of a contact")
struct ContactErasureTests {
    @Test("a contact erasure drops the contact's chat under either id (phone id and LID linked by contact.aliased) and nothing else")
    func contactUnderEitherId() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: "wa.device-events", fsync: .never))
        var offset: Int64 = 0
        func accept(_ event: Event) throws {
            defer { offset += 1 }
            let value = EventEncoder.encode(event)
            try Array("dev-c".utf8).withUnsafeBytes { key in
                try value.withUnsafeBytes { try pipeline.accept(partition: 0, offset: offset, timestamp: offset, key: key, value: $0) }
            }
        }
        func message(_ chat: String, _ index: Int) -> Event {
            Event(eventId: "e\(index)", deviceId: "dev-c", occurredAt: Int64(index), chatId: chat,
                  payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "secret \(index)")))
        }
        try accept(Event(eventId: "alias", deviceId: "dev-c", occurredAt: 0, chatId: "491701234567@c.us",
                         payload: .contactAliased(ContactAliased(alias: "140913951141911@lid"))))
        for index in 1...20 { try accept(message(index % 2 == 0 ? "491701234567@c.us" : "140913951141911@lid", index)) }
        for index in 21...25 { try accept(message("491709999999@c.us", index)) }
        let request = try ErasureRequest(deviceId: "dev-c", contactId: "140913951141911@lid", reason: "request 9")
        try accept(request.event(eventId: "erase", occurredAt: 99))
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        let device = try #require(pipeline.store.device("dev-c"))
        #expect(device.chats.count == 1 && device.chat("491709999999@c.us") != nil)
        #expect(device.chat("491701234567@c.us") == nil && device.chat("140913951141911@lid") == nil)
        #expect(pipeline.counters.redactedRecords == 22, "the alias event, 20 messages, the erasure's key")
        try pipeline.close()
        #expect(try LogVerifier.verify(EventLog(dataDirectory: directory)).isClean)
    }
}

@Suite("Erasure interrupted")
struct InterruptedErasureTests {
    @Test("an erasure in the log whose redaction never ran (a crash right after it was written) is completed when ingest starts: verify is clean, nothing of the device is left")
    func completedAtStart() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        // The log as a crash leaves it: the erasure record written, nothing redacted yet.
        let writer = try log.openWriter(topic: "wa.device-events", partition: 0, options: .init(fsync: .never))
        for index in 0..<100 {
            let device = index % 2 == 0 ? "dev-crash" : "dev-other"
            let event = Event(
                eventId: "e\(index)", deviceId: device, occurredAt: Int64(index), chatId: "4915550\(index % 4)@c.us",
                payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "preview of \(device)")))
            try writer.append([LogRecord(offset: Int64(index), key: Array(device.utf8), value: EventEncoder.encode(event))])
        }
        let erasure = try ErasureRequest(deviceId: "dev-crash", reason: "r").record(eventId: "erase", occurredAt: 100)
        try writer.append([LogRecord(offset: 100, key: erasure.key, value: erasure.value, reason: LogErasure.reason(.device))])
        try writer.sync()
        #expect(try !LogVerifier.verify(log).isClean, "before: the erasure's records are whole")

        let pipeline = try IngestPipeline(log: log, options: .init(topic: "wa.device-events", fsync: .never))
        #expect(pipeline.store.device("dev-crash") == nil && pipeline.store.device("dev-other") != nil)
        #expect(pipeline.counters.redactedRecords == 51)
        try pipeline.close()
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        #expect(verification.erasures.first?.redactedRecords == 50)
        let leaked = try FileManager.default.subpathsOfDirectory(atPath: directory).filter { name in
            FileManager.default.contents(atPath: directory + "/" + name)?.range(of: Data("dev-crash".utf8)) != nil
        }
        #expect(leaked.isEmpty, "\(leaked)")
    }
}
