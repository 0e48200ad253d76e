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
/// `send.message.update` (key in the sender's view) → `message.edited` (`MESSAGE_EDIT`) or
/// `message.revoked` (`REVOKE`, for when Evolution publishes no `messages.delete`);
/// `chats.upsert`/`chats.set` names, `groups.upsert`, `groups.update` → `chat.updated`;
/// `chats.delete` → `chat.deleted`; `group-participants.update` → `group.participants`.
/// Wherever a record shows a LID next to its phone id (`remoteJidAlt`, `participantAlt`,
/// `participantsData`, participant objects) the phone id is used and a `contact.aliased`
/// event records the pair. `unreadMessages` is never used (Evolution's counts are wrong),
/// and `chats.update` carries nothing (Evolution strips it to the chat id).
package struct EvolutionAdapter: BridgeAdapter {
    package static let formatName = "evolution"
    package var format: String { Self.formatName }
    /// Records larger than this are dead letters without being parsed.
    package var maxRecordBytes: Int

    package init(maxRecordBytes: Int = 16 << 20) {
        self.maxRecordBytes = maxRecordBytes
    }

    /// Every event name of Evolution 2.3.x (`src/api/types/wa.types.ts`); others are unknown.
    package static let knownEvents: Set<String> = [
        "application.startup", "instance.create", "instance.delete", "qrcode.updated", "connection.update",
        "status.instance", "messages.set", "messages.upsert", "messages.edited", "messages.update", "messages.delete",
        "send.message", "send.message.update", "contacts.set", "contacts.upsert", "contacts.update", "presence.update",
        "chats.set", "chats.update", "chats.upsert", "chats.delete", "groups.upsert", "groups.update",
        "group-participants.update", "call", "typebot.start", "typebot.change-status", "labels.edit",
        "labels.association", "creds.update", "messaging-history.set", "remove.instance", "logout.instance",
    ]

    package func adapt(_ record: BridgeRecord, tape: JSONTape) -> AdaptedRecord {
        MappingContext.adapt(record, tape: tape, format: format, maxRecordBytes: maxRecordBytes) { context, root, result throws(AdaptError) in
            try context.mapEvolution(root, into: &result)
        }
    }
}

/// Evolution's envelope and the events only Evolution has (its `messages.update`,
/// `messages.delete` and `messages.edited` shapes).
extension MappingContext {

    mutating func mapEvolution(_ root: JSONValue, into result: inout AdaptedRecord) throws(AdaptError) {
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
        ownId = Self.address(root["sender"])
        envelopeTime = BaileysContent.epochMillis(root["timestamp"]) ?? max(0, record.timestamp)
        result.time = envelopeTime
        var reasons: [String] = []
        let data = root["data"]
        switch eventName {
        case "messages.upsert", "send.message":
            try Self.forEachObject(try required(data, "data"), "data") { message, path throws(AdaptError) in
                try mapMessage(message, path, sentThroughAPI: eventName == "send.message", ownStatus: true, reasons: &reasons)
            }
        case "messages.set":
            // History comes newest first (Baileys sorts it so; Evolution publishes it as it is):
            // mapped oldest first, so an own reply reads the messages before it instead of
            // their arriving after it, as late ones.
            let messages = try required(data, "data")
            var ordered: [(element: JSONValue, path: String, time: Int64)] = []
            try Self.forEachObject(messages, "data") { message, path throws(AdaptError) in
                ordered.append((message, path, BaileysContent.epochMillis(message["messageTimestamp"]) ?? envelopeTime))
            }
            for (message, path, _) in ordered.enumerated().sorted(by: { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }).map(\.element) {
                try mapMessage(message, path, sentThroughAPI: false, ownStatus: true, reasons: &reasons)
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
            emit(
                chatId: chatId, at: envelopeTime, .messageEdited(MessageEdited(messageId: messageId, preview: Self.editPreview(edited))),
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
        guard let status = BaileysContent.ackStatus(statusValue) else {
            reasons.append("unknown_status")
            return
        }
        emitReceipt(status, messageId: messageId, chatId: chatId, fromMe: fromMe, isGuess: isGuess, at: envelopeTime, reasons: &reasons)
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
    /// *sender's* view (a contact's edit names the account itself as `remoteJid`, by its
    /// phone id or by its LID, which the record does not give). `MESSAGE_EDIT` →
    /// `message.edited`; `REVOKE` → `message.revoked`: Evolution also publishes it as
    /// `messages.delete`, except when its database lacks the original message (it then
    /// skips the delete), and a second revoke of a message changes nothing. The chat is the
    /// message's own (`chatIsGuess`); a LID here is never taken for an alias of it, since it
    /// may be the account's.
    mutating func mapProtocolMessage(_ message: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let type = message["type"]
        let isEdit = type?.string == "MESSAGE_EDIT" || type?.int64 == 14
        let isRevoke = type?.string == "REVOKE" || type?.int64 == 0
        guard isEdit || isRevoke else {
            reasons.append("protocol_message")  // not chat-list facts
            return
        }
        let key = try requiredObject(message["key"], path + ".key")
        let messageId = try requiredIdentifier(key["id"], path + ".key.id")
        let chatId = try requiredAddress(key["remoteJid"], path + ".key.remoteJid")
        let payload: EventPayload
        if isEdit {
            let preview: String
            if case .message(_, let text, _) = BaileysContent.describe(message["editedMessage"]) { preview = text } else { preview = "" }
            payload = .messageEdited(MessageEdited(messageId: messageId, preview: preview))
        } else {
            payload = .messageRevoked(MessageRevoked(messageId: messageId, scope: .everyone))
        }
        let isOwn = chatId == ownId
        let isLid = WhatsAppID.domain(of: chatId) == .lid
        emit(
            chatId: chatId, at: BaileysContent.epochMillis(message["timestampMs"]) ?? envelopeTime, payload,
            waitsFor: messageId, chatIsGuess: isOwn || isLid, dropIfUnresolved: isOwn, guessMayBeOwn: isLid)
    }
}
