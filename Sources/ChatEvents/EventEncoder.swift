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
    package static func encode(_ event: Event) -> [UInt8] {
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
