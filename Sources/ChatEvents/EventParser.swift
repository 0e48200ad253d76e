/// Parses raw Kafka values into typed events, byte by byte, without an intermediate tree.
///
/// Every value is either an `Event` or an `EventValidationError` naming the reason, the
/// field and the byte offset; nothing in the input can make it crash. Strict by design:
/// unknown keys, duplicate keys, `null` for optional fields, invalid UTF-8 and fractional
/// numbers are all rejected (schema v1 is closed; new fields come with a new version).
/// An unknown `type` with a valid envelope is accepted as `.unknown`.
package struct EventParser: Sendable {
    /// The limits applied to each value.
    package var limits: EventLimits

    /// Creates a parser with schema v1's limits unless told otherwise.
    package init(limits: EventLimits = .default) {
        self.limits = limits
    }

    /// Parses one Kafka value.
    ///
    /// - Parameter kafkaKey: when given, must equal the event's `deviceId` byte for byte.
    /// - Throws: `EventValidationError` for anything that is not a valid schema-v1 event.
    package func parse(_ value: UnsafeRawBufferPointer, kafkaKey: UnsafeRawBufferPointer? = nil)
        throws(EventValidationError) -> Event
    {
        guard value.count <= limits.maxEventBytes else {
            throw EventValidationError(
                code: .tooLarge, path: "", byteOffset: limits.maxEventBytes,
                message: "event of \(value.count) bytes exceeds the limit of \(limits.maxEventBytes)")
        }
        guard value.count > 0, let base = value.baseAddress else {
            throw EventValidationError(code: .invalidJSON, path: "", byteOffset: 0, message: "empty value")
        }
        let bytes = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: value.count)
        var reader = JSONReader(bytes: bytes, limits: limits)
        defer { reader.releaseScratch() }
        let event = try parseEnvelope(&reader)
        // A `ledger.erased` event names its device by digest; ingest checks the key against it.
        if let kafkaKey, event.type != EventType.ledgerErased.rawValue {
            let matches = event.deviceId.utf8.elementsEqual(kafkaKey)
            guard matches else {
                throw EventValidationError(
                    code: .keyMismatch, path: "deviceId", byteOffset: 0,
                    message: "the Kafka key \(Self.quoted(kafkaKey)) is not the deviceId")
            }
        }
        return event
    }

    /// A Kafka key for a message: in quotes, bytes that are no UTF-8 replaced, and cut after
    /// the longest id the schema allows (a key can be anything a producer sends).
    static func quoted(_ key: UnsafeRawBufferPointer) -> String {
        let limit = EventLimits.default.maxIdentifierBytes
        let text = String(decoding: key.prefix(limit), as: UTF8.self)
        return "\"" + text + "\"" + (key.count > limit ? " (cut; \(key.count) bytes)" : "")
    }

    /// Parses one Kafka value held in an array; see `parse(_:kafkaKey:)`.
    package func parse(_ value: [UInt8], kafkaKey: [UInt8]? = nil) throws(EventValidationError) -> Event {
        let result: Result<Event, EventValidationError> = value.withUnsafeBytes { valueBytes in
            guard let kafkaKey else { return Result { () throws(EventValidationError) in try parse(valueBytes) } }
            return kafkaKey.withUnsafeBytes { keyBytes in
                Result { () throws(EventValidationError) in try parse(valueBytes, kafkaKey: keyBytes) }
            }
        }
        return try result.get()
    }

    /// Parses a `data` object on its own, for an event of `type` that ChatLedger makes from
    /// a request body (the write API): the rules of `data` inside an event, nothing may
    /// follow the object, and error paths are relative to it (`archived`, not `data.archived`).
    /// - Throws: `EventValidationError`: `too_large` beyond `maxBytes`, `invalid_json` for an
    ///   empty body, whatever `data` inside an event would get otherwise.
    package func parseData(_ bytes: [UInt8], type: EventType, maxBytes: Int) throws(EventValidationError) -> EventPayload {
        guard bytes.count <= maxBytes else {
            throw EventValidationError(
                code: .tooLarge, path: "", byteOffset: maxBytes, message: "body of \(bytes.count) bytes exceeds the limit of \(maxBytes)")
        }
        let result: Result<EventPayload, EventValidationError> = bytes.withUnsafeBufferPointer { buffer in
            guard !buffer.isEmpty else {
                return .failure(EventValidationError(code: .invalidJSON, path: "", byteOffset: 0, message: "empty body"))
            }
            var reader = JSONReader(bytes: buffer, limits: limits)
            defer { reader.releaseScratch() }
            return Result { () throws(EventValidationError) in
                let payload = try parsePayload(.known(type), &reader)
                try reader.expectEnd()
                return payload
            }
        }
        do {
            return try result.get()
        } catch {
            let path = error.path == "data" ? "" : error.path.hasPrefix("data.") ? String(error.path.dropFirst(5)) : error.path
            throw EventValidationError(code: error.code, path: path, byteOffset: error.byteOffset, message: error.message)
        }
    }

    // MARK: - Envelope

    private enum ParsedType {
        case known(EventType)
        case unknown(String)
    }

    private static let envelopeKeys = KeyTable([
        "schemaVersion", "eventId", "deviceId", "type", "occurredAt", "chatId", "data", "source",
    ])
    private static let requiredEnvelopeKeys = envelopeKeys.mask(
        "schemaVersion", "eventId", "deviceId", "type", "occurredAt")
    private static let typeNames = EnumTable<EventType>()

    private func parseEnvelope(_ reader: inout JSONReader) throws(EventValidationError) -> Event {
        var eventId = InlineString()
        var deviceId = ""
        var occurredAt: Int64 = 0
        var chatId: InlineString?
        var type = ParsedType.unknown("")
        var payload: EventPayload?
        var deferredDataPosition: Int?
        var deferredDataKey: Range<Int>?
        var typeSeen = false
        var sourceBox: EventSource.Box?

        try reader.beginObject("the event")
        try reader.readFields(Self.envelopeKeys, required: Self.requiredEnvelopeKeys) {
            field, reader throws(EventValidationError) in
            switch field {
            case 0:
                let start = reader.position
                let version = try reader.readInt64()
                guard version == Int64(Event.supportedSchemaVersion) else {
                    throw reader.failure(
                        .unsupportedSchemaVersion,
                        "schemaVersion \(version) is not supported (this build reads \(Event.supportedSchemaVersion))",
                        at: start)
                }
            case 1: eventId = try reader.readInlineIdentifier(maxBytes: limits.maxIdentifierBytes)
            case 2: deviceId = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            case 3:
                let start = reader.position
                let name = try reader.readStringBytes(maxBytes: limits.maxIdentifierBytes)
                guard !name.isEmpty else { throw reader.failure(.invalidValue, "must not be empty", at: start) }
                if let known = Self.typeNames.names.index(of: name) {
                    type = .known(Self.typeNames.cases[known])
                } else {
                    type = .unknown(String(decoding: name, as: UTF8.self))
                }
                typeSeen = true
            case 4: occurredAt = try reader.readTimestamp()
            case 5: chatId = try reader.readInlineIdentifier(maxBytes: limits.maxAddressBytes)
            case 7: sourceBox = EventSource.Box(try parseSource(&reader))
            default:
                if typeSeen {
                    payload = try parsePayload(type, &reader)
                } else {
                    // `data` before `type`: validate it now, interpret it once the type is known.
                    deferredDataPosition = reader.position
                    deferredDataKey = reader.keyRange
                    guard reader.peek() == UInt8(ascii: "{") else {
                        throw reader.wrongValue(expected: "an object")
                    }
                    try reader.skipValue()
                }
            }
        }
        try reader.expectEnd()

        // Taken out of the optional, not copied from it: a copy retained every string of
        // the payload only to release them again (7% of a replay's instructions).
        let parsedPayload: EventPayload
        if let payload = payload.take() {
            parsedPayload = payload
        } else if let deferredDataPosition {
            var dataReader = JSONReader(bytes: reader.bytes, position: deferredDataPosition, limits: limits)
            defer { dataReader.releaseScratch() }
            dataReader.keyRange = deferredDataKey
            parsedPayload = try parsePayload(type, &dataReader)
        } else {
            parsedPayload = try payloadWithoutData(type, at: reader.position)
        }
        try checkChatId(present: chatId != nil, type: type)
        if case .ledgerErased = parsedPayload, !LedgerErasure.isDigestName(deviceId) {
            throw EventValidationError(
                code: .invalidValue, path: "deviceId", byteOffset: 0,
                message: "a ledger.erased event names its device as sha256: and 64 lowercase hex digits")
        }
        return Event(
            eventIdText: eventId, deviceId: consume deviceId, occurredAt: occurredAt, chatIdText: chatId,
            payload: consume parsedPayload, sourceBox: sourceBox)
    }

    private static let sourceKeys = KeyTable(["format", "topic", "partition", "offset", "keyId"])
    /// `topic`, `partition`, `offset`: the Kafka record a bridge source names.
    private static let recordKeys: UInt32 = 0b1110
    private static let keyIdKey: UInt32 = 0b10000

    /// The envelope's optional `source`: the bridge record the adapter stage made the event
    /// from (`format`, `topic`, `partition`, `offset`), or the write-API request
    /// (`"format":"api"`, `keyId`). Each form is closed: the other form's fields are unknown.
    private func parseSource(_ reader: inout JSONReader) throws(EventValidationError) -> EventSource {
        try reader.beginObject("source")
        let savedPath = reader.containerPath
        reader.containerPath = "source"
        defer { reader.containerPath = savedPath }
        var format = ""
        var topic = ""
        var partition: Int32 = 0
        var offset: Int64 = 0
        var keyId = ""
        var seen: UInt32 = 0
        try reader.readFields(Self.sourceKeys, required: 0b1) { field, reader throws(EventValidationError) in
            seen |= 1 << UInt32(field)
            switch field {
            case 0: format = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            case 1: topic = try reader.readIdentifier(maxBytes: limits.maxAddressBytes)
            case 2:
                let start = reader.position
                let value = try reader.readInt64()
                guard value >= 0, value <= Int64(Int32.max) else {
                    throw reader.failure(.invalidValue, "must be a Kafka partition (0 to \(Int32.max))", at: start)
                }
                partition = Int32(value)
            case 3: offset = try reader.readTimestamp()
            default: keyId = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            }
        }
        if format == EventSource.apiFormat {
            if seen & Self.recordKeys != 0 {
                let name = Self.sourceKeys.names[(seen & Self.recordKeys).trailingZeroBitCount]
                throw EventValidationError(
                    code: .unknownField, path: "source." + name, byteOffset: reader.position,
                    message: "an api source names the key that wrote, not a Kafka record")
            }
            guard seen & Self.keyIdKey != 0 else {
                throw EventValidationError(
                    code: .missingField, path: "source.keyId", byteOffset: reader.position,
                    message: "\"keyId\" is required when format is api")
            }
            return .api(keyId: keyId)
        }
        if seen & Self.keyIdKey != 0 {
            throw EventValidationError(
                code: .unknownField, path: "source.keyId", byteOffset: reader.position,
                message: "only an api source has a keyId")
        }
        let missing = Self.recordKeys & ~seen
        if missing != 0 {
            let name = Self.sourceKeys.names[missing.trailingZeroBitCount]
            throw EventValidationError(
                code: .missingField, path: "source." + name, byteOffset: reader.position, message: "\"\(name)\" is required")
        }
        return .bridgeRecord(format: format, topic: topic, partition: partition, offset: offset)
    }

    private func checkChatId(present: Bool, type: ParsedType) throws(EventValidationError) {
        guard case .known(let known) = type else { return }
        if known.isDeviceLevel, present {
            throw EventValidationError(
                code: .unknownField, path: "chatId", byteOffset: 0,
                message: "\(known.rawValue) is device-level and takes no chatId")
        }
        if !known.isDeviceLevel, !present {
            throw EventValidationError(
                code: .missingField, path: "chatId", byteOffset: 0, message: "\"chatId\" is required for \(known.rawValue)")
        }
    }

    /// The payload of a type whose `data` was left out: allowed where `data` has no
    /// required field.
    private func payloadWithoutData(_ type: ParsedType, at position: Int) throws(EventValidationError) -> EventPayload {
        switch type {
        case .unknown(let name): return .unknown(type: name)
        case .known(.chatRead): return .chatRead(ChatRead())
        case .known(.chatMarkedUnread): return .chatMarkedUnread
        case .known(.chatCleared): return .chatCleared
        case .known(.chatDeleted): return .chatDeleted
        case .known(.chatUpdated): return .chatUpdated(ChatUpdated())
        case .known(let known):
            throw EventValidationError(
                code: .missingField, path: "data", byteOffset: position,
                message: "\"data\" is required for \(known.rawValue)")
        }
    }

    // MARK: - Payloads

    private func parsePayload(_ type: ParsedType, _ reader: inout JSONReader) throws(EventValidationError) -> EventPayload {
        guard case .known(let known) = type else {
            guard reader.peek() == UInt8(ascii: "{") else { throw reader.wrongValue(expected: "an object") }
            try reader.skipValue()
            if case .unknown(let name) = type { return .unknown(type: name) }
            return .unknown(type: "")
        }
        try reader.beginObject("data")
        let savedPath = reader.containerPath
        reader.containerPath = "data"
        defer { reader.containerPath = savedPath }
        switch known {
        case .messageCreated: return .messageCreated(try parseMessageCreated(&reader))
        case .messageEdited: return .messageEdited(try parseMessageEdited(&reader))
        case .messageRevoked: return .messageRevoked(try parseMessageRevoked(&reader))
        case .messageStatus: return .messageStatus(try parseMessageStatus(&reader))
        case .messageReaction: return .messageReaction(try parseMessageReaction(&reader))
        case .chatRead: return .chatRead(try parseChatRead(&reader))
        case .chatMarkedUnread, .chatCleared, .chatDeleted:
            try reader.readFields(Self.noKeys, required: 0) { _, _ throws(EventValidationError) in }
            return known == .chatMarkedUnread ? .chatMarkedUnread : known == .chatCleared ? .chatCleared : .chatDeleted
        case .chatArchived: return .chatArchived(archived: try parseSingleBool(Self.archivedKeys, &reader))
        case .chatPinned: return .chatPinned(pinned: try parseSingleBool(Self.pinnedKeys, &reader))
        case .chatMuted: return .chatMuted(muteUntil: try parseChatMuted(&reader))
        case .chatUpdated: return .chatUpdated(try parseChatUpdated(&reader))
        case .chatSnapshot: return .chatSnapshot(try parseChatSnapshot(&reader))
        case .groupParticipants: return .groupParticipants(try parseGroupParticipants(&reader))
        case .accountSettings:
            return .accountSettings(keepChatsArchived: try parseSingleBool(Self.settingsKeys, &reader))
        case .contactAliased:
            var alias = ""
            try reader.readFields(Self.aliasKeys, required: 1) { _, reader throws(EventValidationError) in
                alias = try reader.readIdentifier(maxBytes: limits.maxAddressBytes)
            }
            return .contactAliased(ContactAliased(alias: alias))
        case .ledgerErased:
            return .ledgerErased(try parseLedgerErasure(&reader))
        }
    }

    private static let erasureKeys = KeyTable(["scope", "subject", "reason"])
    private static let erasureScopeNames = EnumTable<ErasureScope>()

    private func parseLedgerErasure(_ reader: inout JSONReader) throws(EventValidationError) -> LedgerErasure {
        var erasure = LedgerErasure(scope: .device, reason: "")
        try reader.readFields(Self.erasureKeys, required: 0b101) { field, reader throws(EventValidationError) in
            switch field {
            case 0: erasure.scope = try reader.readEnum(Self.erasureScopeNames)
            case 1: erasure.subject = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            default: erasure.reason = try reader.readString(maxBytes: limits.maxTextBytes)
            }
        }
        if let subject = erasure.subject, !LedgerErasure.isDigestName(subject) {
            throw EventValidationError(
                code: .invalidValue, path: "data.subject", byteOffset: reader.position, message: "subject is sha256: and 64 lowercase hex digits")
        }
        if (erasure.scope == .device) != (erasure.subject == nil) {
            throw EventValidationError(
                code: erasure.subject == nil ? .missingField : .unknownField, path: "data.subject", byteOffset: reader.position,
                message: "a chat or contact erasure names its subject; a device erasure does not")
        }
        if erasure.reason.isEmpty {
            throw EventValidationError(code: .invalidValue, path: "data.reason", byteOffset: reader.position, message: "reason is empty")
        }
        return erasure
    }

    private static let aliasKeys = KeyTable(["alias"])

    private static let noKeys = KeyTable([])
    private static let archivedKeys = KeyTable(["archived"])
    private static let pinnedKeys = KeyTable(["pinned"])
    private static let settingsKeys = KeyTable(["keepChatsArchived"])

    private func parseSingleBool(_ keys: KeyTable, _ reader: inout JSONReader) throws(EventValidationError) -> Bool {
        var value = false
        try reader.readFields(keys, required: 1) { _, reader throws(EventValidationError) in
            value = try reader.readBool()
        }
        return value
    }

    private static let messageCreatedKeys = KeyTable([
        "messageId", "fromMe", "kind", "preview", "senderId", "hasMedia",
    ])

    private func parseMessageCreated(_ reader: inout JSONReader) throws(EventValidationError) -> MessageCreated {
        var message = MessageCreated(messageIdText: InlineString(), fromMe: false, kind: .text, preview: "")
        try reader.readFields(Self.messageCreatedKeys, required: 0b1111) { field, reader throws(EventValidationError) in
            switch field {
            case 0: message.messageIdText = try reader.readInlineIdentifier(maxBytes: limits.maxIdentifierBytes)
            case 1: message.fromMe = try reader.readBool()
            case 2: message.kind = try reader.readEnum(Self.kindNames)
            case 3: message.preview = try reader.readString(maxBytes: limits.maxTextBytes)
            case 4: message.senderIdText = try reader.readInlineIdentifier(maxBytes: limits.maxAddressBytes)
            default: message.hasMedia = try reader.readBool()
            }
        }
        return consume message
    }

    private static let messageEditedKeys = KeyTable(["messageId", "preview"])

    private func parseMessageEdited(_ reader: inout JSONReader) throws(EventValidationError) -> MessageEdited {
        var edit = MessageEdited(messageId: "", preview: "")
        try reader.readFields(Self.messageEditedKeys, required: 0b11) { field, reader throws(EventValidationError) in
            if field == 0 {
                edit.messageId = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            } else {
                edit.preview = try reader.readString(maxBytes: limits.maxTextBytes)
            }
        }
        return edit
    }

    private static let messageRevokedKeys = KeyTable(["messageId", "scope"])

    private func parseMessageRevoked(_ reader: inout JSONReader) throws(EventValidationError) -> MessageRevoked {
        var revoke = MessageRevoked(messageId: "", scope: .everyone)
        try reader.readFields(Self.messageRevokedKeys, required: 0b11) { field, reader throws(EventValidationError) in
            if field == 0 {
                revoke.messageId = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            } else {
                revoke.scope = try reader.readEnum(Self.scopeNames)
            }
        }
        return revoke
    }

    private static let messageStatusKeys = KeyTable(["messageIds", "status", "selfDevice"])

    private func parseMessageStatus(_ reader: inout JSONReader) throws(EventValidationError) -> MessageStatus {
        var status = MessageStatus(messageIds: [], status: .pending)
        try reader.readFields(Self.messageStatusKeys, required: 0b11) { field, reader throws(EventValidationError) in
            switch field {
            case 0: status.messageIds = try reader.readIdentifierList(maxBytes: limits.maxIdentifierBytes)
            case 1: status.status = try reader.readEnum(Self.ackNames)
            default: status.selfDevice = try reader.readBool()
            }
        }
        return status
    }

    private static let messageReactionKeys = KeyTable(["targetMessageId", "senderId", "emoji"])

    private func parseMessageReaction(_ reader: inout JSONReader) throws(EventValidationError) -> MessageReaction {
        var reaction = MessageReaction(targetMessageId: "", senderId: "", emoji: "")
        try reader.readFields(Self.messageReactionKeys, required: 0b111) { field, reader throws(EventValidationError) in
            switch field {
            case 0: reaction.targetMessageId = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            case 1: reaction.senderId = try reader.readIdentifier(maxBytes: limits.maxAddressBytes)
            default: reaction.emoji = try reader.readString(maxBytes: limits.maxEmojiBytes)
            }
        }
        return reaction
    }

    private static let chatReadKeys = KeyTable(["upToMessageId"])

    private func parseChatRead(_ reader: inout JSONReader) throws(EventValidationError) -> ChatRead {
        var read = ChatRead()
        try reader.readFields(Self.chatReadKeys, required: 0) { _, reader throws(EventValidationError) in
            read.upToMessageId = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
        }
        return read
    }

    private static let chatMutedKeys = KeyTable(["muteUntil"])

    private func parseChatMuted(_ reader: inout JSONReader) throws(EventValidationError) -> Int64 {
        var muteUntil: Int64 = 0
        try reader.readFields(Self.chatMutedKeys, required: 1) { _, reader throws(EventValidationError) in
            muteUntil = try reader.readMuteUntil()
        }
        return muteUntil
    }

    private static let chatUpdatedKeys = KeyTable(["name", "isGroup", "readOnly"])

    private func parseChatUpdated(_ reader: inout JSONReader) throws(EventValidationError) -> ChatUpdated {
        var update = ChatUpdated()
        try reader.readFields(Self.chatUpdatedKeys, required: 0) { field, reader throws(EventValidationError) in
            switch field {
            case 0: update.name = try reader.readString(maxBytes: limits.maxTextBytes)
            case 1: update.isGroup = try reader.readBool()
            default: update.readOnly = try reader.readBool()
            }
        }
        return update
    }

    private static let chatSnapshotKeys = KeyTable([
        "name", "isGroup", "unreadCount", "markedUnread", "archived", "pinned", "muteUntil", "timestamp",
        "lastMessage",
    ])

    private func parseChatSnapshot(_ reader: inout JSONReader) throws(EventValidationError) -> ChatSnapshot {
        var snapshot = ChatSnapshot(
            name: "", isGroup: false, unreadCount: 0, markedUnread: false, archived: false, pinned: false,
            muteUntil: 0, timestamp: 0, lastMessage: nil)
        try reader.readFields(Self.chatSnapshotKeys, required: 0b1_1111_1111) {
            field, reader throws(EventValidationError) in
            switch field {
            // null: no name (as the API renders an unnamed chat).
            case 0: snapshot.name = reader.readNullIfPresent() ? "" : try reader.readString(maxBytes: limits.maxTextBytes)
            case 1: snapshot.isGroup = try reader.readBool()
            case 2: snapshot.unreadCount = try reader.readCount()
            case 3: snapshot.markedUnread = try reader.readBool()
            case 4: snapshot.archived = try reader.readBool()
            case 5: snapshot.pinned = try reader.readBool()
            case 6: snapshot.muteUntil = try reader.readMuteUntil()
            case 7: snapshot.timestamp = try reader.readTimestamp()
            default:
                if reader.readNullIfPresent() {
                    snapshot.lastMessage = nil
                } else {
                    snapshot.lastMessage = try parseSnapshotMessage(&reader)
                }
            }
        }
        return snapshot
    }

    private static let snapshotMessageKeys = KeyTable([
        "id", "fromMe", "kind", "preview", "timestamp", "ack", "revoked",
    ])

    private func parseSnapshotMessage(_ reader: inout JSONReader) throws(EventValidationError) -> SnapshotMessage {
        try reader.beginObject("lastMessage")
        let savedPath = reader.containerPath
        reader.containerPath = "data.lastMessage"
        defer { reader.containerPath = savedPath }
        var message = SnapshotMessage(id: "", fromMe: false, kind: .text, preview: "", timestamp: 0)
        try reader.readFields(Self.snapshotMessageKeys, required: 0b1_1111) { field, reader throws(EventValidationError) in
            switch field {
            case 0: message.id = try reader.readIdentifier(maxBytes: limits.maxIdentifierBytes)
            case 1: message.fromMe = try reader.readBool()
            case 2: message.kind = try reader.readEnum(Self.kindNames)
            case 3: message.preview = try reader.readString(maxBytes: limits.maxTextBytes)
            case 4: message.timestamp = try reader.readTimestamp()
            // null: no ack (as the API renders an incoming last message).
            case 5: message.ack = reader.readNullIfPresent() ? nil : try reader.readEnum(Self.ackNames)
            default: message.revoked = try reader.readBool()
            }
        }
        return message
    }

    private static let groupParticipantsKeys = KeyTable(["action", "participants", "includesMe"])

    private func parseGroupParticipants(_ reader: inout JSONReader) throws(EventValidationError) -> GroupParticipants {
        var change = GroupParticipants(action: .add, participants: [], includesMe: false)
        try reader.readFields(Self.groupParticipantsKeys, required: 0b111) { field, reader throws(EventValidationError) in
            switch field {
            case 0: change.action = try reader.readEnum(Self.actionNames)
            case 1: change.participants = try reader.readIdentifierList(maxBytes: limits.maxAddressBytes)
            default: change.includesMe = try reader.readBool()
            }
        }
        return change
    }

    private static let kindNames = EnumTable<MessageKind>()
    private static let ackNames = EnumTable<AckStatus>()
    private static let scopeNames = EnumTable<RevokeScope>()
    private static let actionNames = EnumTable<ParticipantAction>()
}

// MARK: - Typed reads

extension JSONReader {
    /// Reads the members of the object just entered: rejects unknown and duplicate keys,
    /// hands each known one (by its index in `keys`) to `readValue`, and checks that every
    /// key in the `required` bit mask was present.
    mutating func readFields(
        _ keys: KeyTable, required: UInt32,
        _ readValue: (Int, inout JSONReader) throws(EventValidationError) -> Void
    ) throws(EventValidationError) {
        var seen: UInt32 = 0
        var isFirst = true
        // Writers (ChatLedger's encoder among them) put keys in the schema's order, which is
        // the table's: the key after field i is most likely field i + 1, and is matched in
        // place before the key is scanned as a string at all.
        var likely = 0
        while true {
            let field: Int
            if readKeyIfSpelled(keys, likely, isFirst: &isFirst) {
                field = likely
            } else {
                guard let key = try nextKey(isFirst: &isFirst) else { break }
                guard let found = keys.index(of: key) else {
                    throw failure(.unknownField, "unknown field \"\(String(decoding: key, as: UTF8.self))\"")
                }
                field = found
            }
            likely = field + 1
            let bit: UInt32 = 1 << UInt32(field)
            guard seen & bit == 0 else {
                throw failure(.duplicateKey, "key \"\(keys.names[field])\" appears twice")
            }
            seen |= bit
            try readValue(field, &self)
        }
        let missing = required & ~seen
        if missing != 0 {
            let name = keys.names[missing.trailingZeroBitCount]
            throw EventValidationError(
                code: .missingField, path: containerPath.isEmpty ? name : containerPath + "." + name,
                byteOffset: position, message: "\"\(name)\" is required")
        }
    }

    /// A non-empty string of at most `maxBytes`.
    mutating func readIdentifier(maxBytes: Int) throws(EventValidationError) -> String {
        let start = position
        let value = try readString(maxBytes: maxBytes)
        guard !value.isEmpty else { throw failure(.invalidValue, "must not be empty", at: start) }
        return value
    }

    /// `readIdentifier` kept inline when short: no allocation for the usual ids.
    mutating func readInlineIdentifier(maxBytes: Int) throws(EventValidationError) -> InlineString {
        let start = position
        let bytes = try readStringBytes(maxBytes: maxBytes)
        guard !bytes.isEmpty else { throw failure(.invalidValue, "must not be empty", at: start) }
        return InlineString(validatedUTF8: bytes)
    }

    /// A list of 1...`maxListCount` non-empty strings.
    mutating func readIdentifierList(maxBytes: Int) throws(EventValidationError) -> [String] {
        let start = position
        try beginArray("the list")
        var values: [String] = []
        var isFirst = true
        while try nextElement(isFirst: &isFirst) {
            guard values.count < limits.maxListCount else {
                throw failure(.tooLong, "more than \(limits.maxListCount) elements", at: start)
            }
            elementIndex = values.count
            values.append(try readIdentifier(maxBytes: maxBytes))
        }
        elementIndex = nil
        guard !values.isEmpty else { throw failure(.invalidValue, "must not be empty", at: start) }
        return values
    }

    /// Epoch milliseconds, not negative.
    mutating func readTimestamp() throws(EventValidationError) -> Int64 {
        let start = position
        let value = try readInt64()
        guard value >= 0 else { throw failure(.invalidValue, "must not be negative", at: start) }
        return value
    }

    /// A count, not negative.
    mutating func readCount() throws(EventValidationError) -> Int64 {
        try readTimestamp()
    }

    /// `0` unmuted, `-1` forever, else epoch ms.
    mutating func readMuteUntil() throws(EventValidationError) -> Int64 {
        let start = position
        let value = try readInt64()
        guard value >= -1 else { throw failure(.invalidValue, "must be -1, 0 or epoch milliseconds", at: start) }
        return value
    }

    /// One of an enumeration's raw values, matched on the bytes.
    mutating func readEnum<Value>(_ table: EnumTable<Value>) throws(EventValidationError) -> Value {
        let start = position
        let bytes = try readStringBytes(maxBytes: 64)
        guard let index = table.names.index(of: bytes) else {
            throw failure(
                .invalidValue,
                "\"\(String(decoding: bytes, as: UTF8.self))\" is not one of \(table.names.names.joined(separator: ", "))",
                at: start)
        }
        return table.cases[index]
    }
}
