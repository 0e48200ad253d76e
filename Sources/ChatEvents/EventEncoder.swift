/// Writes events as canonical JSON: one byte sequence per event.
///
/// Canonical form (documented in `schemas/README.md`): the envelope's keys in SPEC order
/// (`schemaVersion`, `eventId`, `deviceId`, `type`, `occurredAt`, `chatId`, `data`,
/// `source`; `source`'s as `format, topic, partition, offset` or `format, keyId`),
/// each `data` object's keys in the schema's order, absent optionals left out, no
/// whitespace, and the shortest escapes (`\"`, `\\`, `\b\f\n\r\t`, `\u00XX` for other
/// control characters; everything else as raw UTF-8). `parse(encode(e)) == e` for every
/// event, and encoding is deterministic, so equal events give equal bytes.
public enum EventEncoder {
    /// The canonical JSON bytes of `event`.
    public static func encode(_ event: Event) -> [UInt8] {
        var writer = JSONWriter()
        writer.bytes.reserveCapacity(256)
        writer.beginObject()
        writer.field("schemaVersion", Int64(Event.supportedSchemaVersion))
        writer.field("eventId", event.eventIdText)
        writer.field("deviceId", event.deviceId)
        writer.field("type", event.type)
        writer.field("occurredAt", event.occurredAt)
        if let chatId = event.chatIdText { writer.field("chatId", chatId) }
        writer.key("data")
        writer.beginObject()
        writePayload(event.payload, &writer)
        writer.endObject()
        if let source = event.sourceBox?.source {
            writer.key("source")
            writer.beginObject()
            writer.field("format", source.format)
            switch source {
            case .bridgeRecord(_, let topic, let partition, let offset):
                writer.field("topic", topic)
                writer.field("partition", Int64(partition))
                writer.field("offset", offset)
            case .api(let keyId):
                writer.field("keyId", keyId)
            }
            writer.endObject()
        }
        writer.endObject()
        return writer.bytes
    }

    private static func writePayload(_ payload: EventPayload, _ writer: inout JSONWriter) {
        switch payload {
        case .messageCreated(let message):
            writer.field("messageId", message.messageIdText)
            writer.field("fromMe", message.fromMe)
            writer.field("kind", message.kind.rawValue)
            writer.field("preview", message.preview)
            if let senderId = message.senderIdText { writer.field("senderId", senderId) }
            if let hasMedia = message.hasMedia { writer.field("hasMedia", hasMedia) }
        case .messageEdited(let edit):
            writer.field("messageId", edit.messageId)
            writer.field("preview", edit.preview)
        case .messageRevoked(let revoke):
            writer.field("messageId", revoke.messageId)
            writer.field("scope", revoke.scope.rawValue)
        case .messageStatus(let status):
            writer.key("messageIds")
            writer.stringArray(status.messageIds)
            writer.field("status", status.status.rawValue)
            if let selfDevice = status.selfDevice { writer.field("selfDevice", selfDevice) }
        case .messageReaction(let reaction):
            writer.field("targetMessageId", reaction.targetMessageId)
            writer.field("senderId", reaction.senderId)
            writer.field("emoji", reaction.emoji)
        case .chatRead(let read):
            if let upTo = read.upToMessageId { writer.field("upToMessageId", upTo) }
        case .chatMarkedUnread, .chatCleared, .chatDeleted, .unknown:
            break
        case .chatArchived(let archived):
            writer.field("archived", archived)
        case .chatPinned(let pinned):
            writer.field("pinned", pinned)
        case .chatMuted(let muteUntil):
            writer.field("muteUntil", muteUntil)
        case .chatUpdated(let update):
            if let name = update.name { writer.field("name", name) }
            if let isGroup = update.isGroup { writer.field("isGroup", isGroup) }
            if let readOnly = update.readOnly { writer.field("readOnly", readOnly) }
        case .chatSnapshot(let snapshot):
            writer.field("name", snapshot.name)
            writer.field("isGroup", snapshot.isGroup)
            writer.field("unreadCount", snapshot.unreadCount)
            writer.field("markedUnread", snapshot.markedUnread)
            writer.field("archived", snapshot.archived)
            writer.field("pinned", snapshot.pinned)
            writer.field("muteUntil", snapshot.muteUntil)
            writer.field("timestamp", snapshot.timestamp)
            writer.key("lastMessage")
            if let message = snapshot.lastMessage {
                writer.beginObject()
                writer.field("id", message.id)
                writer.field("fromMe", message.fromMe)
                writer.field("kind", message.kind.rawValue)
                writer.field("preview", message.preview)
                writer.field("timestamp", message.timestamp)
                if let ack = message.ack { writer.field("ack", ack.rawValue) }
                if let revoked = message.revoked { writer.field("revoked", revoked) }
                writer.endObject()
            } else {
                writer.null()
            }
        case .groupParticipants(let change):
            writer.field("action", change.action.rawValue)
            writer.key("participants")
            writer.stringArray(change.participants)
            writer.field("includesMe", change.includesMe)
        case .accountSettings(let keepChatsArchived):
            writer.field("keepChatsArchived", keepChatsArchived)
        case .contactAliased(let alias):
            writer.field("alias", alias.alias)
        case .ledgerErased(let erasure):
            writer.field("scope", erasure.scope.rawValue)
            if let subject = erasure.subject { writer.field("subject", subject) }
            writer.field("reason", erasure.reason)
        }
    }
}

/// Appends compact JSON to a byte buffer; tracks commas so callers write fields in order.
public struct JSONWriter: Sendable {
    /// The JSON written so far.
    public var bytes: [UInt8] = []
    private var needsComma = false

    /// Creates an empty writer.
    public init() {}

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes `"name":`; the value written next needs no comma.
    public mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func field(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    /// An id as the parser keeps it, written from its bytes (no `String` made).
    mutating func field(_ name: String, _ value: InlineString) {
        key(name)
        value.withUTF8 { string(utf8: $0) }
    }

    public mutating func field(_ name: String, _ value: Int64) {
        key(name)
        integer(value)
    }

    public mutating func field(_ name: String, _ value: Bool) {
        key(name)
        bool(value)
    }

    public mutating func stringArray(_ values: [String]) {
        beginArray()
        for value in values { string(value) }
        endArray()
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])  // null
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        separate()
        if value {
            bytes.append(contentsOf: [0x74, 0x72, 0x75, 0x65])  // true
        } else {
            bytes.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])  // false
        }
        needsComma = true
    }

    public mutating func integer(_ value: Int64) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
        needsComma = true
    }

    /// Writes a string with the shortest escapes.
    public mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { string(utf8: $0) }
    }

    /// Writes text given as UTF-8 with the shortest escapes.
    mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            runStart = index + 1
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            }
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    @inline(__always)
    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }
}
