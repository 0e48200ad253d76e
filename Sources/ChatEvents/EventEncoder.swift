/// Writes events as canonical JSON: one byte sequence per event.
///
/// Canonical form (documented in `schemas/README.md`): the envelope's keys in the schema's order
/// (`schemaVersion`, `eventId`, `deviceId`, `type`, `occurredAt`, `chatId`, `data`,
/// `source`; `source`'s as `format, topic, partition, offset` or `format, keyId`),
/// each `data` object's keys in the schema's order, absent optionals left out, no
/// whitespace, and the shortest escapes (`\"`, `\\`, `\b\f\n\r\t`, `\u00XX` for other
/// control characters; everything else as raw UTF-8). `parse(encode(e)) == e` for every
/// event, and encoding is deterministic, so equal events give equal bytes.
package enum EventEncoder {
    /// The canonical JSON bytes of `event`.
    ///
    /// Written once into a scratch buffer on the stack (a heap one for the event that
    /// outgrows it), then copied into an array of exactly that size: one pass over the
    /// event instead of a measuring pass and a writing pass.
    package static func encode(_ event: Event) -> [UInt8] {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: scratchBytes) { scratch in
            var writer = Writer(sink: BufferSink(scratch))
            write(event, &writer)
            let sink = writer.sink
            defer { sink.deallocateIfGrown() }
            return [UInt8](unsafeUninitializedCapacity: sink.written) { buffer, count in
                if let source = sink.buffer.baseAddress, sink.written > 0 {
                    buffer.baseAddress!.initialize(from: source, count: sink.written)
                }
                count = sink.written
            }
        }
    }

    /// Bytes of stack the encoder writes into first: most events take a few hundred. At most
    /// 1024: a larger temporary allocation goes to the heap (the standard library's limit for
    /// the stack, and on Linux the runtime allows no more).
    package static let scratchBytes = 1024

    private static func write(_ event: Event, _ writer: inout Writer) {
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
    }

    private static func writePayload(_ payload: EventPayload, _ writer: inout Writer) {
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

    // MARK: - Writing

    /// Compact JSON for the encoder's fixed shape: keys are the schema's (plain ASCII,
    /// written as they are), values escaped the shortest way; commas tracked as JSONWriter
    /// tracks them.
    private struct Writer {
        var sink: BufferSink
        private var needsComma = false

        init(sink: BufferSink) { self.sink = sink }

        @inline(__always)
        private mutating func separate() {
            if needsComma { sink.byte(UInt8(ascii: ",")) }
        }

        mutating func beginObject() {
            separate()
            sink.byte(UInt8(ascii: "{"))
            needsComma = false
        }

        mutating func endObject() {
            sink.byte(UInt8(ascii: "}"))
            needsComma = true
        }

        /// `"name":` (the value written next needs no comma).
        mutating func key(_ name: StaticString) {
            sink.key(name, comma: needsComma)
            needsComma = false
        }

        mutating func string(_ value: String) {
            var value = value
            value.withUTF8 { string(utf8: $0) }
        }

        mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
            separate()
            sink.string(utf8)
            needsComma = true
        }

        mutating func field(_ name: StaticString, _ value: String) {
            key(name)
            string(value)
        }

        mutating func field(_ name: StaticString, _ value: InlineString) {
            key(name)
            if var inline = value.inlineUTF8 {
                withUnsafeBytes(of: &inline.words) { raw in
                    string(utf8: UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: inline.count))
                }
            } else {
                string(value.string)
            }
        }

        mutating func field(_ name: StaticString, _ value: Int64) {
            key(name)
            sink.integer(value)
            needsComma = true
        }

        mutating func field(_ name: StaticString, _ value: Bool) {
            key(name)
            let text: StaticString = value ? "true" : "false"
            sink.plain(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
            needsComma = true
        }

        mutating func null() {
            separate()
            let text: StaticString = "null"
            sink.plain(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
            needsComma = true
        }

        mutating func stringArray(_ values: [String]) {
            separate()
            sink.byte(UInt8(ascii: "["))
            needsComma = false
            for value in values { string(value) }
            sink.byte(UInt8(ascii: "]"))
            needsComma = true
        }
    }
}

/// Writes into a buffer it was given and, should the event outgrow that, into heap buffers
/// of its own, twice as large each time (`deallocateIfGrown()` frees the last one).
private struct BufferSink {
    private(set) var buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var written = 0
    private var grown = false

    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

    func deallocateIfGrown() {
        if grown { buffer.deallocate() }
    }

    @inline(__always)
    private mutating func reserve(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        if written + count > buffer.count { grow(toHold: written + count) }
        defer { written += count }
        return buffer.baseAddress! + written
    }

    @inline(never)
    private mutating func grow(toHold needed: Int) {
        let larger = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(needed, buffer.count * 2, 64))
        if written > 0 { larger.baseAddress!.initialize(from: buffer.baseAddress!, count: written) }
        deallocateIfGrown()
        buffer = larger
        grown = true
    }

    /// Bytes that need no escaping.
    mutating func plain(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        reserve(bytes.count).initialize(from: source, count: bytes.count)
    }

    mutating func byte(_ byte: UInt8) { reserve(1).initialize(to: byte) }

    /// `"name":`, after a comma when `comma`.
    mutating func key(_ name: StaticString, comma: Bool) {
        let count = name.utf8CodeUnitCount
        var out = reserve(count + (comma ? 4 : 3))
        if comma {
            out.initialize(to: UInt8(ascii: ","))
            out += 1
        }
        out.initialize(to: UInt8(ascii: "\""))
        (out + 1).initialize(from: name.utf8Start, count: count)
        (out + 1 + count).initialize(to: UInt8(ascii: "\""))
        (out + 2 + count).initialize(to: UInt8(ascii: ":"))
    }

    /// A JSON string of `utf8`, quoted, with the shortest escapes.
    mutating func string(_ utf8: UnsafeBufferPointer<UInt8>) {
        byte(UInt8(ascii: "\""))
        var runStart = 0
        while true {
            let index = JSONWriter.endOfPlainText(utf8, from: runStart)
            if index > runStart { plain(UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
            guard index < utf8.count else { break }
            runStart = index + 1
            let escape: UInt8
            switch utf8[index] {
            case UInt8(ascii: "\""): escape = UInt8(ascii: "\"")
            case UInt8(ascii: "\\"): escape = UInt8(ascii: "\\")
            case 0x08: escape = UInt8(ascii: "b")
            case 0x0C: escape = UInt8(ascii: "f")
            case 0x0A: escape = UInt8(ascii: "n")
            case 0x0D: escape = UInt8(ascii: "r")
            case 0x09: escape = UInt8(ascii: "t")
            case let control:
                let hex: StaticString = "0123456789abcdef"
                let out = reserve(6)
                (out[0], out[1], out[2], out[3]) = (UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"))
                out[4] = hex.utf8Start[Int(control >> 4)]
                out[5] = hex.utf8Start[Int(control & 0xF)]
                continue
            }
            let out = reserve(2)
            (out[0], out[1]) = (UInt8(ascii: "\\"), escape)
        }
        byte(UInt8(ascii: "\""))
    }

    mutating func integer(_ value: Int64) {
        var digits = 1
        var rest = value.magnitude
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        let out = reserve(digits + (value < 0 ? 1 : 0))
        var position = digits + (value < 0 ? 1 : 0)
        if value < 0 { out[0] = UInt8(ascii: "-") }
        var magnitude = value.magnitude
        repeat {
            position -= 1
            out[position] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
    }
}
