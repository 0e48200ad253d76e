import ChatEvents

/// Evolution API's Kafka events (v2.3.4+) as canonical events.
///
/// Evolution publishes one record per event on `<prefix>.<instance>.<event>` (or
/// `<prefix>.global.<event>`), value `{event, instance, data, server_url, date_time,
/// sender, apikey, timestamp}`. The device is the record's `instance` (the Kafka key
/// cannot be trusted: global topics key by `<instance>-<event>`); time is
/// `data.messageTimestamp` (seconds) for messages, else the envelope's `timestamp` (ms;
/// `date_time` is local wall-clock time with a `Z` and is never used). The `apikey` is
/// kept only to scrub it from what is written about the record.
///
/// Mapping (BRIDGES.md §2.3): `messages.upsert`, `send.message`, `messages.set` →
/// `message.created` (reactions → `message.reaction`); `messages.update` → `message.status`
/// or `message.edited` (its `status: "DELETED"` of ≤ 2.3.6 is *not* a delete, and a status on
/// an incoming message means something only as `READ`/`PLAYED`, read on the phone);
/// `messages.delete` (both shapes) → `message.revoked`; `messages.edited` and
/// `send.message.update` (`MESSAGE_EDIT`, key in the sender's view) → `message.edited`;
/// `chats.upsert`/`chats.set` names, `groups.upsert`, `groups.update` → `chat.updated`;
/// `chats.delete` → `chat.deleted`; `group-participants.update` → `group.participants`.
/// Wherever a record shows a LID next to its phone id (`remoteJidAlt`, `participantAlt`,
/// `participantsData`, participant objects) the phone id is used and a `contact.aliased`
/// event records the pair. `unreadMessages` is never used (Evolution's counts are wrong),
/// and `chats.update` carries nothing (Evolution strips it to the chat id).
public struct EvolutionAdapter: BridgeAdapter {
    public static let formatName = "evolution"
    public var format: String { Self.formatName }
    /// Records larger than this are dead letters without being parsed.
    public var maxRecordBytes: Int

    public init(maxRecordBytes: Int = 16 << 20) {
        self.maxRecordBytes = maxRecordBytes
    }

    /// Every event name of Evolution 2.3.x (`src/api/types/wa.types.ts`); others are unknown.
    public static let knownEvents: Set<String> = [
        "application.startup", "instance.create", "instance.delete", "qrcode.updated", "connection.update",
        "status.instance", "messages.set", "messages.upsert", "messages.edited", "messages.update", "messages.delete",
        "send.message", "send.message.update", "contacts.set", "contacts.upsert", "contacts.update", "presence.update",
        "chats.set", "chats.update", "chats.upsert", "chats.delete", "groups.upsert", "groups.update",
        "group-participants.update", "call", "typebot.start", "typebot.change-status", "labels.edit",
        "labels.association", "creds.update", "messaging-history.set", "remove.instance", "logout.instance",
    ]

    public func adapt(_ record: BridgeRecord, tape: JSONTape) -> AdaptedRecord {
        var result = AdaptedRecord()
        guard let value = record.value else {
            result.deadLetter("invalid_json", "a tombstone (no value)")
            return result
        }
        guard value.count <= maxRecordBytes else {
            result.secret = SecretScrubber.secretValue(in: value)
            result.deadLetter("too_large", "a record of \(value.count) bytes exceeds the limit of \(maxRecordBytes)")
            return result
        }
        do {
            try tape.parse(value)
        } catch {
            result.secret = SecretScrubber.secretValue(in: value)
            result.deadLetter(error.code.rawValue, error.description)
            return result
        }
        var context = EvolutionContext(record: record, format: format)
        do {
            try context.map(tape.root, into: &result)
        } catch {
            result.deadLetter(error.code, error.description)
        }
        return result
    }
}

/// Why a record cannot be mapped: a dead letter's code and the field it concerns.
struct AdaptError: Error, CustomStringConvertible {
    var code: String
    var path: String
    var message: String

    static func missing(_ path: String) -> AdaptError { AdaptError(code: "missing_field", path: path, message: "is required") }

    static func wrongType(_ path: String, expected: String, found: JSONValue) -> AdaptError {
        AdaptError(code: "wrong_type", path: path, message: "must be \(expected), not \(found.kindName)")
    }

    static func invalid(_ path: String, _ message: String) -> AdaptError { AdaptError(code: "invalid_value", path: path, message: message) }

    var description: String { "\(path): \(message)" }
}

/// The mapping of one record: its envelope, and the events made so far.
struct EvolutionContext {
    let record: BridgeRecord
    let format: String
    var deviceId = ""
    /// The connected account's own id (`sender`), canonical.
    var ownId: String?
    /// The envelope's time (ms): `timestamp`, else Kafka's.
    var envelopeTime: Int64 = 0
    private var nextIndex = 0
    private var aliases = Set<String>()
    private(set) var events: [AdaptedEvent] = []

    init(record: BridgeRecord, format: String) {
        self.record = record
        self.format = format
    }

    static let maxIdentifierBytes = 128

    // MARK: - Envelope

    mutating func map(_ root: JSONValue, into result: inout AdaptedRecord) throws(AdaptError) {
        guard root.kind == .object else {
            throw AdaptError(code: "wrong_type", path: "", message: "the record is \(root.kindName), not an object")
        }
        if let secret = root["apikey"]?.stringBytes, !secret.isEmpty { result.secret = secret }
        let eventName = try requiredString(root["event"], "event")
        guard EvolutionAdapter.knownEvents.contains(eventName) else {
            result.skipReasons.append("unknown_event")
            return
        }
        result.eventName = eventName
        let instance = try requiredString(root["instance"], "instance")
        guard instance.utf8.count <= Self.maxIdentifierBytes else { throw .invalid("instance", "longer than 128 bytes") }
        deviceId = instance
        if let sender = root["sender"]?.string { ownId = WhatsAppID.canonical(sender) }
        envelopeTime = EvolutionContext.epochMillis(root["timestamp"]) ?? max(0, record.timestamp)
        result.time = envelopeTime
        var reasons: [String] = []
        let data = root["data"]
        switch eventName {
        case "messages.upsert", "send.message":
            try Self.forEachObject(try required(data, "data"), "data") { message, path throws(AdaptError) in
                try mapMessage(message, path, sentThroughAPI: eventName == "send.message", reasons: &reasons)
            }
        case "messages.set":
            try Self.forEachObject(try required(data, "data"), "data") { message, path throws(AdaptError) in
                try mapMessage(message, path, sentThroughAPI: false, reasons: &reasons)
            }
        case "messages.update":
            try Self.forEachObject(try required(data, "data"), "data") { update, path throws(AdaptError) in
                try mapUpdate(update, path, reasons: &reasons)
            }
        case "messages.delete":
            try Self.forEachObject(try required(data, "data"), "data") { delete, path throws(AdaptError) in
                try mapDelete(delete, path)
            }
        case "messages.edited", "send.message.update":
            try Self.forEachObject(try required(data, "data"), "data") { protocolMessage, path throws(AdaptError) in
                try mapProtocolMessage(protocolMessage, path, reasons: &reasons)
            }
        case "chats.upsert", "chats.set":
            try Self.forEachObject(try required(data, "data"), "data") { chat, path throws(AdaptError) in
                try mapChatName(chat, path, idKey: "remoteJid", nameKey: "name", isGroup: nil)
            }
        case "groups.upsert", "groups.update":
            try Self.forEachObject(try required(data, "data"), "data") { group, path throws(AdaptError) in
                try mapGroupParticipantsAliases(group["participants"], participantsData: nil, path)
                try mapChatName(group, path, idKey: "id", nameKey: "subject", isGroup: true)
            }
        case "chats.delete":
            try mapChatsDelete(try required(data, "data"))
        case "group-participants.update":
            try Self.forEachObject(try required(data, "data"), "data") { update, path throws(AdaptError) in
                try mapParticipants(update, path, reasons: &reasons)
            }
        case "chats.update":
            reasons.append("stripped_by_evolution")  // only {remoteJid, instanceId} reach Kafka
        default:
            reasons.append("ignored_event")  // contacts, presence, connection, calls, labels, ...
        }
        result.events = events
        if events.isEmpty && reasons.isEmpty { reasons.append("no_chat_list_effect") }
        result.skipReasons.append(contentsOf: reasons)
    }

    // MARK: - Messages

    /// `messages.upsert`, `send.message` and each of `messages.set`: a message, a reaction
    /// or something that is not a chat-list message.
    mutating func mapMessage(_ message: JSONValue, _ path: String, sentThroughAPI: Bool, reasons: inout [String]) throws(AdaptError) {
        let key = try requiredObject(message["key"], path + ".key")
        var chatId = try requiredAddress(key["remoteJid"], path + ".key.remoteJid")
        let fromMeField = try optionalBool(key["fromMe"], path + ".key.fromMe")
        let fromMe = sentThroughAPI || fromMeField
        chatId = try resolveAlias(chatId, alt: key["remoteJidAlt"], path + ".key.remoteJidAlt")
        var senderId = try optionalAddress(key["participant"], path + ".key.participant")
        if let participant = senderId {
            senderId = try resolveAlias(participant, alt: key["participantAlt"], path + ".key.participantAlt")
        }
        // Baileys files a broadcast-list message under the sender's own chat.
        if WhatsAppID.domain(of: chatId) == .broadcast, let sender = senderId { chatId = sender }
        let occurredAt = EvolutionContext.epochMillis(message["messageTimestamp"]) ?? envelopeTime
        let content = BaileysContent.describe(message["message"], typeHint: message["messageType"]?.string)
        switch content {
        case .notAMessage:
            reasons.append("not_a_message")
        case .reaction(let target, let emoji):
            guard let reactor = senderId ?? (fromMe ? ownId : personalChat(chatId)) else {
                reasons.append("reaction_sender_unknown")
                return
            }
            guard target.utf8.count <= Self.maxIdentifierBytes else { throw .invalid(path + ".message.reactionMessage.key.id", "longer than 128 bytes") }
            emit(
                chatId: chatId, at: occurredAt,
                .messageReaction(MessageReaction(targetMessageId: target, senderId: reactor, emoji: BaileysContent.truncated(emoji, maxBytes: 64))))
        case .message(let kind, let preview, let hasMedia):
            var messageId = try optionalIdentifier(key["id"], path + ".key.id") ?? ""
            if messageId.isEmpty {
                // Evolution has published messages with an empty id (issue #2466): still a
                // message that counts, under an id of its own derived from the record.
                messageId = "x-" + EventIdentity.eventId(
                    format: format, topic: record.topic, partition: record.partition, offset: record.offset, index: nextIndex)
            }
            let sender = senderId ?? (fromMe ? ownId : personalChat(chatId))
            emit(
                chatId: chatId, at: occurredAt,
                .messageCreated(MessageCreated(
                    messageId: messageId, fromMe: fromMe, kind: kind, preview: preview, senderId: sender, hasMedia: hasMedia ? true : nil)))
            // Evolution's own rule: an incoming message is unread while its status is
            // DELIVERY_ACK; one that arrives READ (history, another device) is read already.
            if !fromMe, let status = Self.ackStatus(message["status"]), status == .read || status == .played {
                emit(
                    chatId: chatId, at: occurredAt,
                    .messageStatus(MessageStatus(messageIds: [messageId], status: status, selfDevice: true)))
            }
        }
    }

    /// `messages.update`: a receipt or (2.3.7+) an edit, keyed in the account's view.
    mutating func mapUpdate(_ update: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let messageId = try requiredIdentifier(update["keyId"], path + ".keyId")
        let chatId = try requiredAddress(update["remoteJid"], path + ".remoteJid")
        let fromMe = try optionalBool(update["fromMe"], path + ".fromMe")
        if WhatsAppID.domain(of: chatId) == .statusBroadcast {
            reasons.append("status_broadcast")
            return
        }
        let isGuess = WhatsAppID.domain(of: chatId) == .lid
        if let edited = update["message"]?["editedMessage"] {
            let inner = edited["message"]
            let content = inner?["protocolMessage"]?["editedMessage"] ?? inner
            let preview: String
            if case .message(_, let text, _) = BaileysContent.describe(content) { preview = text } else { preview = "" }
            emit(
                chatId: chatId, at: envelopeTime, .messageEdited(MessageEdited(messageId: messageId, preview: preview)),
                waitsFor: messageId, chatIsGuess: isGuess)
            return
        }
        if let polls = update["pollUpdates"], !polls.isNull {
            reasons.append("poll_update")
            return
        }
        guard let statusValue = update["status"], !statusValue.isNull else {
            reasons.append("no_status")
            return
        }
        if statusValue.string == "DELETED" {
            // ≤ 2.3.6 wrote DELETED for any update without a status (edits, stars): not a delete.
            reasons.append("status_deleted_is_not_a_delete")
            return
        }
        guard let status = Self.ackStatus(statusValue) else {
            reasons.append("unknown_status")
            return
        }
        if fromMe {
            emit(
                chatId: chatId, at: envelopeTime, .messageStatus(MessageStatus(messageIds: [messageId], status: status)),
                waitsFor: messageId, chatIsGuess: isGuess)
        } else if status == .read || status == .played {
            // An incoming message read on another of the account's devices (Baileys read-self).
            emit(
                chatId: chatId, at: envelopeTime,
                .messageStatus(MessageStatus(messageIds: [messageId], status: status, selfDevice: true)),
                waitsFor: messageId, chatIsGuess: isGuess)
        } else {
            reasons.append("receipt_without_effect")  // delivery of an incoming message
        }
    }

    /// `messages.delete`: shape A is the revoked message's key (`{remoteJid, fromMe, id, ...}`),
    /// shape B (a delete through Evolution's API) has the key in `key` and a database id in `id`.
    mutating func mapDelete(_ delete: JSONValue, _ path: String) throws(AdaptError) {
        let key: JSONValue
        let keyPath: String
        if let nested = delete["key"], nested.kind == .object {
            (key, keyPath) = (nested, path + ".key")
        } else {
            (key, keyPath) = (delete, path)
        }
        let messageId = try requiredIdentifier(key["id"], keyPath + ".id")
        var chatId = try requiredAddress(key["remoteJid"], keyPath + ".remoteJid")
        chatId = try resolveAlias(chatId, alt: key["remoteJidAlt"], keyPath + ".remoteJidAlt")
        emit(
            chatId: chatId, at: envelopeTime, .messageRevoked(MessageRevoked(messageId: messageId, scope: .everyone)),
            waitsFor: messageId, chatIsGuess: WhatsAppID.domain(of: chatId) == .lid)
    }

    /// `messages.edited` / `send.message.update`: a Baileys protocol message, key in the
    /// *sender's* view (a contact's edit names the account's own id as `remoteJid`).
    mutating func mapProtocolMessage(_ message: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let type = message["type"]
        let isEdit = type?.string == "MESSAGE_EDIT" || type?.int64 == 14
        guard isEdit else {
            // REVOKE duplicates messages.delete; the rest are not chat-list facts.
            reasons.append(type?.string == "REVOKE" || type?.int64 == 0 ? "revoke_also_in_messages_delete" : "protocol_message")
            return
        }
        let key = try requiredObject(message["key"], path + ".key")
        let messageId = try requiredIdentifier(key["id"], path + ".key.id")
        let chatId = try requiredAddress(key["remoteJid"], path + ".key.remoteJid")
        let preview: String
        if case .message(_, let text, _) = BaileysContent.describe(message["editedMessage"]) { preview = text } else { preview = "" }
        let isOwn = chatId == ownId
        emit(
            chatId: chatId, at: EvolutionContext.epochMillis(message["timestampMs"]) ?? envelopeTime,
            .messageEdited(MessageEdited(messageId: messageId, preview: preview)),
            waitsFor: messageId, chatIsGuess: isOwn || WhatsAppID.domain(of: chatId) == .lid, dropIfUnresolved: isOwn)
    }

    // MARK: - Chats and groups

    mutating func mapChatName(_ chat: JSONValue, _ path: String, idKey: StaticString, nameKey: StaticString, isGroup: Bool?) throws(AdaptError) {
        // chats.upsert also comes as [{id, name}] with a database id and no chat id: nothing to map.
        guard let idValue = chat[idKey], !idValue.isNull else { return }
        let chatId = try requiredAddress(idValue, path + "." + String(describing: idKey))
        guard let name = chat[nameKey]?.string, !name.isEmpty else { return }
        emit(chatId: chatId, at: envelopeTime, .chatUpdated(ChatUpdated(name: BaileysContent.truncated(name), isGroup: isGroup)))
    }

    mutating func mapChatsDelete(_ data: JSONValue) throws(AdaptError) {
        let items = data.kind == .array ? data.elements : [data]
        for (index, item) in items.enumerated() {
            let path = data.kind == .array ? "data[\(index)]" : "data"
            let value = item.kind == .object ? (item["remoteJid"] ?? item["id"]) : item
            let chatId = try requiredAddress(value, path)
            emit(chatId: chatId, at: envelopeTime, .chatDeleted)
        }
    }

    mutating func mapParticipants(_ update: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let chatId = try requiredAddress(update["id"], path + ".id")
        let actionName = try requiredString(update["action"], path + ".action")
        var action: ParticipantAction
        switch actionName {
        case "add": action = .add
        case "remove": action = .remove
        case "promote": action = .promote
        case "demote": action = .demote
        case "leave": action = .leave
        default:
            reasons.append("participant_action_\(actionName == "modify" ? "modify" : "unknown")")
            return
        }
        let (participants, phoneByLID) = try mapGroupParticipantsAliases(update["participants"], participantsData: update["participantsData"], path)
        guard !participants.isEmpty else {
            reasons.append("no_participants")
            return
        }
        guard participants.count <= 1000 else { throw .invalid(path + ".participants", "more than 1000 participants") }
        if action == .remove, participants.count == 1, let author = update["author"]?.string.flatMap(WhatsAppID.canonical),
            (phoneByLID[author] ?? author) == participants[0]
        {
            action = .leave  // removed by themselves: WhatsApp's "left"
        }
        let includesMe = ownId.map(participants.contains) ?? false
        emit(chatId: chatId, at: envelopeTime, .groupParticipants(GroupParticipants(action: action, participants: participants, includesMe: includesMe)))
    }

    /// Participants as canonical ids (phone form where the record gives it), recording
    /// every LID–phone pair seen: strings (Baileys 6), objects `{id, phoneNumber}`
    /// (Baileys 7) and Evolution's `participantsData: [{jid, phoneNumber}]`.
    @discardableResult
    mutating func mapGroupParticipantsAliases(
        _ participants: JSONValue?, participantsData: JSONValue?, _ path: String
    ) throws(AdaptError) -> (participants: [String], phoneByLID: [String: String]) {
        var phoneByLID: [String: String] = [:]
        for entry in participantsData?.elements ?? [] where entry.kind == .object {
            guard let jid = entry["jid"]?.string.flatMap(WhatsAppID.canonical), let phone = entry["phoneNumber"]?.string.flatMap(WhatsAppID.canonical)
            else { continue }
            if let pair = aliasPair(jid, phone) { phoneByLID[pair.lid] = pair.phone }
        }
        var result: [String] = []
        for (index, entry) in (participants?.elements ?? []).enumerated() {
            let path = "\(path).participants[\(index)]"
            var id: String
            if entry.kind == .object {
                id = try requiredAddress(entry["id"], path + ".id")
                if let phone = entry["phoneNumber"]?.string.flatMap(WhatsAppID.canonical), let pair = aliasPair(id, phone) {
                    phoneByLID[pair.lid] = pair.phone
                }
            } else {
                id = try requiredAddress(entry, path)
            }
            if let phone = phoneByLID[id] { id = phone }
            if !result.contains(id) { result.append(id) }
        }
        return (result, phoneByLID)
    }

    // MARK: - Ids and aliases

    /// `id` in the phone form when `alt` gives the other form of a LID–phone pair (recording
    /// the pair as `contact.aliased`); else `id` itself.
    mutating func resolveAlias(_ id: String, alt: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        guard let alt, let altText = alt.string, let other = WhatsAppID.canonical(altText), other != id else { return id }
        guard let pair = aliasPair(id, other) else { return id }
        return pair.phone
    }

    /// When one of `a` and `b` is a LID and the other a phone id: emits `contact.aliased`
    /// (once per record) and returns the pair.
    mutating func aliasPair(_ a: String, _ b: String) -> (lid: String, phone: String)? {
        let (domainA, domainB) = (WhatsAppID.domain(of: a), WhatsAppID.domain(of: b))
        let pair: (lid: String, phone: String)
        if domainA == .lid, domainB == .phone {
            pair = (a, b)
        } else if domainA == .phone, domainB == .lid {
            pair = (b, a)
        } else {
            return nil
        }
        // Evolution's participantsData falls back to the LID's digits as "phoneNumber".
        guard WhatsAppID.user(of: pair.lid) != WhatsAppID.user(of: pair.phone) else { return nil }
        if aliases.insert(pair.lid + " " + pair.phone).inserted {
            events.append(AdaptedEvent(event: Self.aliasEvent(deviceId: deviceId, phone: pair.phone, lid: pair.lid, at: envelopeTime, source: source)))
        }
        return pair
    }

    /// The `contact.aliased` event for a pair, its id derived from the pair.
    static func aliasEvent(deviceId: String, phone: String, lid: String, at time: Int64, source: EventSource?) -> Event {
        Event(
            eventId: EventIdentity.aliasEventId(deviceId: deviceId, chatId: phone, alias: lid), deviceId: deviceId,
            occurredAt: time, chatId: phone, payload: .contactAliased(ContactAliased(alias: lid)), source: source)
    }

    /// A 1:1 chat's id is also its contact's id; groups and lists have no single sender.
    func personalChat(_ chatId: String) -> String? {
        switch WhatsAppID.domain(of: chatId) {
        case .phone, .lid: return chatId
        default: return nil
        }
    }

    var source: EventSource {
        EventSource(format: format, topic: record.topic, partition: record.partition, offset: record.offset)
    }

    mutating func emit(
        chatId: String, at time: Int64, _ payload: EventPayload, waitsFor: String? = nil, chatIsGuess: Bool = false,
        dropIfUnresolved: Bool = false
    ) {
        let eventId = EventIdentity.eventId(
            format: format, topic: record.topic, partition: record.partition, offset: record.offset, index: nextIndex)
        nextIndex += 1
        let event = Event(eventId: eventId, deviceId: deviceId, occurredAt: max(0, time), chatId: chatId, payload: payload, source: source)
        events.append(AdaptedEvent(event: event, waitsFor: waitsFor, chatIsGuess: chatIsGuess, dropIfUnresolved: dropIfUnresolved))
    }

    // MARK: - Field readers

    func required(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> JSONValue {
        guard let value, !value.isNull else { throw .missing(path()) }
        return value
    }

    func requiredObject(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> JSONValue {
        let value = try required(value, path())
        guard value.kind == .object else { throw .wrongType(path(), expected: "an object", found: value) }
        return value
    }

    func requiredString(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        let value = try required(value, path())
        guard let text = value.string else { throw .wrongType(path(), expected: "a string", found: value) }
        guard !text.isEmpty else { throw .invalid(path(), "must not be empty") }
        return text
    }

    func requiredIdentifier(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        let text = try requiredString(value, path())
        guard text.utf8.count <= Self.maxIdentifierBytes else { throw .invalid(path(), "longer than 128 bytes") }
        return text
    }

    func optionalIdentifier(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.string else { throw .wrongType(path(), expected: "a string", found: value) }
        guard text.utf8.count <= Self.maxIdentifierBytes else { throw .invalid(path(), "longer than 128 bytes") }
        return text
    }

    func requiredAddress(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        let text = try requiredString(value, path())
        guard let id = WhatsAppID.canonical(text) else { throw .invalid(path(), "not a WhatsApp id (empty or over 256 bytes)") }
        return id
    }

    func optionalAddress(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String? {
        guard let value, !value.isNull, value.string != "" else { return nil }
        return try requiredAddress(value, path())
    }

    func optionalBool(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> Bool {
        guard let value, !value.isNull else { return false }
        guard let flag = value.bool else { throw .wrongType(path(), expected: "a boolean", found: value) }
        return flag
    }

    /// Calls `body` with `data` when it is an object, or with each element when it is an
    /// array of objects (some events carry one, some a list).
    static func forEachObject(
        _ data: JSONValue, _ path: String, _ body: (JSONValue, String) throws(AdaptError) -> Void
    ) throws(AdaptError) {
        switch data.kind {
        case .object:
            try body(data, path)
        case .array:
            for (index, element) in data.elements.enumerated() {
                let elementPath = "\(path)[\(index)]"
                guard element.kind == .object else { throw .wrongType(elementPath, expected: "an object", found: element) }
                try body(element, elementPath)
            }
        default:
            throw .wrongType(path, expected: "an object or an array", found: data)
        }
    }

    // MARK: - Values

    /// Epoch ms from a WhatsApp time: a number, a numeric string, or a protobuf Long
    /// `{low, high, unsigned}`; seconds (anything below 10^11) become ms. Nil if absent or
    /// not a time.
    static func epochMillis(_ value: JSONValue?) -> Int64? {
        guard let value else { return nil }
        var number: Int64?
        switch value.kind {
        case .number: number = value.int64
        case .string: number = value.string.flatMap { Int64($0) }
        case .object:
            if let low = value["low"]?.int64, let high = value["high"]?.int64 {
                number = Int64(UInt32(truncatingIfNeeded: low)) | (high << 32)
            }
        default: break
        }
        guard let number, number >= 0 else { return nil }
        if number < 100_000_000_000 {
            let (milliseconds, overflow) = number.multipliedReportingOverflow(by: 1000)
            return overflow ? nil : milliseconds
        }
        return number
    }

    /// Evolution's status names (`ERROR` ... `PLAYED`) or Baileys' numbers (0...5).
    static func ackStatus(_ value: JSONValue?) -> AckStatus? {
        guard let value else { return nil }
        if let number = value.int64 {
            switch number {
            case 0: return .error
            case 1: return .pending
            case 2: return .server
            case 3: return .delivered
            case 4: return .read
            case 5: return .played
            default: return nil
            }
        }
        switch value.string {
        case "ERROR": return .error
        case "PENDING": return .pending
        case "SERVER_ACK": return .server
        case "DELIVERY_ACK": return .delivered
        case "READ": return .read
        case "PLAYED": return .played
        default: return nil
        }
    }
}
