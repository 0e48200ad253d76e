import BridgeAdapters
import ChatEvents
import Foundation
import Testing

/// Node.js, where Debian and the official images install it.
let nodeExecutable: String? = ["/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// The Node.js publishers of `deploy/bridges/` (run with `node` against a stubbed library
/// emitter and a stubbed producer, `deploy/bridges/testing/scenario.js`) write records the
/// adapters read: what each would send to Kafka becomes the canonical events it means.
@Suite("deploy/bridges publishers → adapters (node is installed by deploy/local.sh test)")
struct PublisherRecordsTests {
    static let node = nodeExecutable
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The records the publisher of `format` sends in the scripted session, adapted.
    func adapted(_ format: String) throws -> [AdaptedRecord] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.node))
        process.arguments = [Self.repository.appendingPathComponent("deploy/bridges/testing/emit-records.js").path, format]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let adapter = try #require(BridgeFormats.adapter(named: format))
        let tape = JSONTape()
        return try data.split(separator: UInt8(ascii: "\n")).enumerated().map { offset, line in
            let record = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: String])
            let result = adapter.adapt(
                BridgeRecord(topic: record["topic"] ?? "", partition: 0, offset: Int64(offset), key: Array((record["key"] ?? "").utf8), value: Array((record["value"] ?? "").utf8)),
                tape: tape)
            #expect(!result.isDeadLetter, "\(result.outcome): \(record["value"] ?? "")")
            #expect(result.events.allSatisfy { $0.event.deviceId == record["key"] }, "key = deviceId")
            return result
        }
    }

    @Test("the publishers' own tests pass (node --test deploy/bridges/test/: order, envelope, no key material, no QR code, failed sends)")
    func nodeTests() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.node))
        process.arguments = ["--test", Self.repository.appendingPathComponent("deploy/bridges/test").path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text.suffix(3000))")
        #expect(text.contains("# fail 0"))
    }

    @Test("the Baileys publisher's records: history snapshot and LID pair, the image under the phone id (a buffered flush's chats.update after its messages), the increment skipped, presence ignored, the account setting, read and pin, the revoke")
    func baileys() throws {
        let records = try adapted("baileys")
        #expect(records.map { $0.events.map(\.event.type) } == [
            ["contact.aliased", "chat.snapshot"], ["contact.aliased", "message.created"], [], [], ["account.settings"],
            ["chat.read", "chat.pinned"], ["message.revoked"],
        ])
        #expect(records[2].skipReasons == ["unread_increment"])
        #expect(records[3].skipReasons == ["ignored_event"])
        guard case .messageCreated(let message)? = records[1].events.last?.event.payload else {
            Issue.record("no message")
            return
        }
        #expect(message == MessageCreated(messageId: "A1", fromMe: false, kind: .image, preview: "look", senderId: "491701234567@c.us", hasMedia: true))
        #expect(records[1].events.last?.event.occurredAt == 1_767_366_770_000, "a Long of seconds")
    }

    @Test("the whatsapp-web.js publisher's records: the message once (message skipped), the absolute count as a snapshot, read, archived, revoked")
    func wwebjs() throws {
        let records = try adapted("wwebjs")
        #expect(records.map { $0.events.map(\.event.type) } == [
            ["message.created"], [], ["chat.snapshot"], ["chat.read"], ["chat.archived"], ["message.revoked"],
        ])
        #expect(records[1].skipReasons == ["also_in_message_create"])
        guard case .chatSnapshot(let snapshot)? = records[2].events.first?.event.payload else {
            Issue.record("no snapshot")
            return
        }
        #expect(snapshot.unreadCount == 1 && snapshot.name == "Ana" && snapshot.lastMessage?.id == "3A1")
        #expect(records[5].events.map(\.event.payload) == [.messageRevoked(MessageRevoked(messageId: "3A1", scope: .everyone))], "the revoked message, not the notice")
    }
}
