import ChatEvents
@testable import ChatProjection
import EventLog
import Foundation
import Testing

/// A value written back over a chat erasure's marker keeps the chain (the marker held the
/// value's digest), so only the event's chat can tell that the record should be redacted.
@Suite("verify finds a value put back under a chat erasure")
struct ErasureVerifierTests {
    static let topic = DeviceEventsTopic.defaultName
    static let erasedChat = "491555000001@c.us"

    static func message(_ chat: String, offset: Int64) -> LogRecord {
        let event = Event(
            eventId: "e\(offset)", deviceId: "dev-a", occurredAt: offset, chatId: chat,
            payload: .messageCreated(MessageCreated(messageId: "m\(offset)", fromMe: false, kind: .text, preview: "secret \(offset)")))
        return LogRecord(offset: offset, key: Array("dev-a".utf8), value: EventEncoder.encode(event))
    }

    /// (position, length) of a segment's first record frame.
    static func firstFrame(_ bytes: [UInt8]) -> Range<Int> {
        let position = Int(bytes[10]) | Int(bytes[11]) << 8
        let length = 8 + (Int(bytes[position]) | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2]) << 16 | Int(bytes[position + 3]) << 24)
        return position..<(position + length)
    }

    static func segment(_ log: EventLog) throws -> String {
        let directory = log.directory(topic: topic, partition: 0)
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }.sorted().first)
        return directory + "/" + name
    }

    @Test("after a chat erasure nothing is found; the first record's original frame written back (the chain still holds) is found, naming the erasure")
    func valuePutBackUnderChatErasure() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-verifier-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let writer = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        try writer.append([Self.message(Self.erasedChat, offset: 0), Self.message("491555000002@c.us", offset: 1), Self.message(Self.erasedChat, offset: 2)])
        let erasure = Event(
            eventId: "erase", deviceId: DeviceProjection.digestName("dev-a"), occurredAt: 9, chatId: nil,
            payload: .ledgerErased(LedgerErasure(scope: .chat, subject: DeviceProjection.digestName(Self.erasedChat), reason: "r")))
        try writer.append([LogRecord(offset: 3, key: Array("dev-a".utf8), value: EventEncoder.encode(erasure), reason: LogErasure.reason(.chat))])
        guard case .ledgerErased(let erased) = erasure.payload else { return }
        let selector = try #require(ErasureSelector(erased, deviceDigestName: erasure.deviceId, erasureOffset: 3))
        #expect(try selector.redact(in: writer).redacted == 3, "records 0 and 2, and the erasure's own key")
        try writer.sync()
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean)
        let erasures = verification.erasures.map(\.erasure)
        #expect(ErasureVerifier.unredactedValues(log: log, topic: Self.topic, erasures: erasures).isEmpty)

        // The original first record, as a copy made before the erasure holds it.
        let original = directory + "-original"
        defer { try? FileManager.default.removeItem(atPath: original) }
        let copy = try EventLog(dataDirectory: original).openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        try copy.append([Self.message(Self.erasedChat, offset: 0)])
        try copy.sync()
        let copyBytes = try Array(Data(contentsOf: URL(fileURLWithPath: try Self.segment(EventLog(dataDirectory: original)))))
        let path = try Self.segment(log)
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.replaceSubrange(Self.firstFrame(bytes), with: copyBytes[Self.firstFrame(copyBytes)])
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        #expect(!(try LogVerifier.verify(log).problems.contains { $0.message.contains("chain") }), "the chain cannot tell")
        #expect(ErasureVerifier.unredactedValues(log: log, topic: Self.topic, erasures: erasures) == [.init(partition: 0, offset: 0, erasureOffset: 3)])
    }

    @Test("records of a version 1 segment (chained over their bytes) that a chat erasure names are left whole by design: no finding")
    func oldSegmentsAreNoFinding() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-verifier-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let old = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never, chain: .overBodies))
        try old.append([Self.message(Self.erasedChat, offset: 0)])
        try old.sync()
        let writer = try log.openWriter(topic: Self.topic, partition: 0, options: .init(fsync: .never))
        try writer.append([Self.message(Self.erasedChat, offset: 1)])
        let erasure = Event(
            eventId: "erase", deviceId: DeviceProjection.digestName("dev-a"), occurredAt: 9, chatId: nil,
            payload: .ledgerErased(LedgerErasure(scope: .chat, subject: DeviceProjection.digestName(Self.erasedChat), reason: "r")))
        try writer.append([LogRecord(offset: 2, key: Array("dev-a".utf8), value: EventEncoder.encode(erasure), reason: LogErasure.reason(.chat))])
        guard case .ledgerErased(let erased) = erasure.payload else { return }
        let outcome = try #require(ErasureSelector(erased, deviceDigestName: erasure.deviceId, erasureOffset: 2)).redact(in: writer)
        #expect(outcome.unredactable == 1 && outcome.redacted == 2, "offset 0 stays whole; offset 1 and the erasure's key are redacted")
        try writer.sync()
        let verification = try LogVerifier.verify(log)
        #expect(ErasureVerifier.unredactedValues(log: log, topic: Self.topic, erasures: verification.erasures.map(\.erasure)).isEmpty)
    }
}
