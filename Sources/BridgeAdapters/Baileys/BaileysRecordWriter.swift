import ChatEvents

/// Writes canonical events as the Baileys events that state them (the simulated bridge of
/// `BridgeTraffic`), with the canonical events each means when the `baileys` adapter reads it.
///
/// Ids in Baileys' form (`@s.whatsapp.net`); about a third of 1:1 contacts are addressed by
/// their LID as Baileys 7 does (messages under the LID with `remoteJidAlt`, receipts and
/// chat actions under the LID alone), their pair taught first by `lid-mapping.update`.
/// Numbers vary as in real captures (seconds as numbers, numeric strings or Longs; enums
/// as numbers or names). What Baileys cannot say is not written: `chat.cleared` (no
/// handler), a read up to a message (the phone's "mark as read" reads the whole chat).
struct BaileysRecordWriter: Sendable {
    private var taught = Set<String>()
    private var counter: UInt64 = 0

    /// The Baileys form of a canonical id.
    static func jid(_ id: String) -> String {
        WhatsAppID.domain(of: id) == .phone ? WhatsAppID.user(of: id) + "@s.whatsapp.net" : id
    }

    /// The LID a 1:1 contact is addressed by, when it is one of the LID contacts.
    static func lid(of chatId: String) -> String? {
        guard WhatsAppID.domain(of: chatId) == .phone, let last = WhatsAppID.user(of: chatId).last, "012".contains(last) else { return nil }
        return "1409" + String(WhatsAppID.user(of: chatId).reversed()) + "@lid"
    }

    private mutating func variant() -> UInt64 {
        counter &+= 1
        return counter % 3
    }

    /// Seconds as a number, a numeric string or a Long, in turn.
    private mutating func seconds(_ milliseconds: Int64) -> JSONLiteral {
        let value = milliseconds / 1000
        switch variant() {
        case 0: return .integer(value)
        case 1: return .string(String(value))
        default: return .object([("low", .integer(Int64(Int32(truncatingIfNeeded: value)))), ("high", .integer(value >> 32)), ("unsigned", false)])
        }
    }

    mutating func write(_ event: Event) -> [WrittenEvent] {
        var written: [WrittenEvent] = []
        let chatId = event.chatId ?? ""
        let own = BridgeTraffic.ownId(of: event.deviceId)
        let lid = Self.lid(of: chatId)
        if let lid, taught.insert(event.deviceId + " " + chatId).inserted {
            written.append(WrittenEvent(
                event: "lid-mapping.update", body: .object([("lid", .string(lid)), ("pn", .string(Self.jid(chatId)))]),
                meaning: [event.meaning(.contactAliased(ContactAliased(alias: lid)), at: event.occurredAt)]))
        }
        /// The chat as Baileys names it outside messages: the LID for LID contacts.
        let actionJid = lid ?? Self.jid(chatId)
        let isGroup = WhatsAppID.domain(of: chatId) == .group
        switch event.payload {
        case .messageCreated(let message):
            written.append(messageUpsert(event, message, lid: lid, own: own))
        case .messageStatus(let status):
            guard let messageId = status.messageIds.first else { break }
            if status.selfDevice == true, isGroup {
                let body: JSONLiteral = .array([.object([
                    ("key", .object([("remoteJid", .string(chatId)), ("fromMe", false), ("id", .string(messageId))])),
                    ("receipt", .object([("userJid", .string(WhatsAppID.user(of: own) + ":7@s.whatsapp.net")), ("readTimestamp", .integer(event.occurredAt / 1000))])),
                ])])
                written.append(WrittenEvent(event: "message-receipt.update", body: body, meaning: [
                    event.meaning(.messageStatus(MessageStatus(messageIds: [messageId], status: .read, selfDevice: true)), at: event.wholeSeconds),
                ]))
            } else {
                let numbers: [AckStatus: Int64] = [.error: 0, .pending: 1, .server: 2, .delivered: 3, .read: 4, .played: 5]
                let names: [AckStatus: String] = [.error: "ERROR", .pending: "PENDING", .server: "SERVER_ACK", .delivered: "DELIVERY_ACK", .read: "READ", .played: "PLAYED"]
                let fromMe = status.selfDevice != true
                let statusValue: JSONLiteral = variant() == 0 ? .string(names[status.status] ?? "READ") : .integer(numbers[status.status] ?? 4)
                let body: JSONLiteral = .array([.object([
                    ("key", .object([("remoteJid", .string(actionJid)), ("fromMe", .bool(fromMe)), ("id", .string(messageId))])),
                    ("update", .object([("status", statusValue)])),
                ])])
                written.append(WrittenEvent(event: "messages.update", body: body, meaning: [
                    event.meaning(.messageStatus(MessageStatus(messageIds: [messageId], status: status.status, selfDevice: fromMe ? nil : true))),
                ]))
            }
        case .chatRead:
            written.append(chatsUpdate(event, actionJid, [("unreadCount", 0)], meaning: [.chatRead(ChatRead())]))
        case .chatMarkedUnread:
            written.append(chatsUpdate(event, actionJid, [("unreadCount", -1)], meaning: [.chatMarkedUnread]))
        case .chatArchived(let archived):
            written.append(chatsUpdate(event, actionJid, [("archived", .bool(archived))], meaning: [.chatArchived(archived: archived)]))
        case .chatPinned(let pinned):
            written.append(chatsUpdate(event, actionJid, [("pinned", pinned ? .integer(event.occurredAt) : .null)], meaning: [.chatPinned(pinned: pinned)]))
        case .chatMuted(let until):
            written.append(chatsUpdate(event, actionJid, [("muteEndTime", until == 0 ? .null : .integer(until))], meaning: [.chatMuted(muteUntil: until)]))
        case .chatUpdated(let update):
            var fields: [(String, JSONLiteral)] = []
            var meaning: [EventPayload] = []
            if let name = update.name, !name.isEmpty {
                fields.append(("name", .string(name)))
                meaning.append(.chatUpdated(ChatUpdated(name: name, isGroup: isGroup ? true : nil)))
            }
            if let readOnly = update.readOnly {
                fields.append(("readOnly", .bool(readOnly)))
                meaning.append(.chatUpdated(ChatUpdated(readOnly: readOnly)))
            }
            if !fields.isEmpty { written.append(chatsUpdate(event, actionJid, fields, meaning: meaning)) }
        case .messageReaction(let reaction):
            let reactionKey: [(String, JSONLiteral)] =
                isGroup
                ? [("remoteJid", .string(chatId)), ("fromMe", false), ("id", .string("R" + reaction.targetMessageId)), ("participant", .string(Self.jid(reaction.senderId)))]
                : [("remoteJid", .string(Self.jid(reaction.senderId))), ("fromMe", false), ("id", .string("R" + reaction.targetMessageId))]
            let body: JSONLiteral = .array([.object([
                ("key", .object([("remoteJid", .string(Self.jid(chatId))), ("fromMe", false), ("id", .string(reaction.targetMessageId))])),
                ("reaction", .object([
                    ("key", .object(reactionKey)), ("text", reaction.emoji.isEmpty ? .null : .string(reaction.emoji)),
                    ("senderTimestampMs", .string(String(event.occurredAt))),
                ])),
            ])])
            written.append(WrittenEvent(event: "messages.reaction", body: body, meaning: [event.meaning(event.payload)]))
        case .messageEdited(let edit):
            let body: JSONLiteral = .array([.object([
                ("key", .object([("remoteJid", .string(actionJid)), ("fromMe", false), ("id", .string(edit.messageId))])),
                ("update", .object([("message", .object([("editedMessage", .object([("message", .object([("conversation", .string(edit.preview))]))]))]))])),
            ])])
            written.append(WrittenEvent(event: "messages.update", body: body, meaning: [event.meaning(event.payload)]))
        case .messageRevoked(let revoke):
            let key: JSONLiteral = .object([("remoteJid", .string(actionJid)), ("fromMe", false), ("id", .string(revoke.messageId))])
            if revoke.scope == .everyone {
                let stub: JSONLiteral = variant() == 0 ? "REVOKE" : 1
                written.append(WrittenEvent(
                    event: "messages.update", body: .array([.object([("key", key), ("update", .object([("message", .null), ("messageStubType", stub)]))])]),
                    meaning: [event.meaning(event.payload)]))
            } else {
                written.append(WrittenEvent(event: "messages.delete", body: .object([("keys", .array([key]))]), meaning: [event.meaning(event.payload)]))
            }
        case .chatDeleted:
            written.append(WrittenEvent(event: "chats.delete", body: .array([.string(actionJid)]), meaning: [event.meaning(.chatDeleted)]))
        case .chatSnapshot(let snapshot):
            written.append(history(event, snapshot))
        case .groupParticipants(let change):
            written.append(participants(event, change, own: own))
        case .accountSettings(let keep):
            written.append(WrittenEvent(
                event: "creds.update", body: .object([("accountSettings", .object([("unarchiveChats", .bool(!keep))]))]),
                meaning: [event.meaning(event.payload)]))
        case .chatCleared, .contactAliased, .ledgerErased, .unknown:
            break  // Baileys has no handler for a cleared chat; an erasure is ChatLedger's own
        }
        return written
    }

    private func chatsUpdate(_ event: Event, _ jid: String, _ fields: [(String, JSONLiteral)], meaning: [EventPayload]) -> WrittenEvent {
        WrittenEvent(event: "chats.update", body: .array([.object([("id", .string(jid))] + fields)]), meaning: meaning.map { event.meaning($0) })
    }

    /// The content object of a message and the kind and preview the adapter reads from it.
    private mutating func content(_ message: MessageCreated) -> (content: JSONLiteral?, stub: Int64?, kind: MessageKind, preview: String) {
        let preview = message.preview
        switch message.kind {
        case .text:
            if variant() == 0 {
                return (.object([("extendedTextMessage", .object([("text", .string(preview))])), ("messageContextInfo", .object([]))]), nil, .text, preview)
            }
            return (.object([("conversation", .string(preview))]), nil, .text, preview)
        case .image: return (.object([("imageMessage", .object([("mimetype", "image/jpeg"), ("caption", .string(preview)), ("jpegThumbnail", "/9j/4AAQ")]))]), nil, .image, preview)
        case .video: return (.object([("videoMessage", .object([("caption", .string(preview))]))]), nil, .video, preview)
        case .audio: return (.object([("audioMessage", .object([("ptt", true), ("seconds", 4)]))]), nil, .audio, "")
        case .document: return (.object([("documentWithCaptionMessage", .object([("message", .object([("documentMessage", .object([("caption", .string(preview))]))]))]))]), nil, .document, preview)
        case .sticker: return (.object([("stickerMessage", .object([("mimetype", "image/webp")]))]), nil, .sticker, "")
        case .location: return (.object([("locationMessage", .object([("degreesLatitude", 52), ("degreesLongitude", 13), ("name", .string(preview))]))]), nil, .location, preview)
        case .contact: return (.object([("contactMessage", .object([("displayName", .string(preview)), ("vcard", "BEGIN:VCARD\nEND:VCARD")]))]), nil, .contact, preview)
        case .call: return (nil, 40, .call, "")
        case .system: return (nil, 21, .system, "changed the subject to \"\(preview)\"")
        }
    }

    private mutating func messageUpsert(_ event: Event, _ message: MessageCreated, lid: String?, own: String) -> WrittenEvent {
        let chatId = event.chatId ?? ""
        let isGroup = WhatsAppID.domain(of: chatId) == .group || WhatsAppID.domain(of: chatId) == .statusBroadcast
        var key: [(String, JSONLiteral)] = [("remoteJid", .string(lid ?? Self.jid(chatId))), ("fromMe", .bool(message.fromMe)), ("id", .string(message.messageId))]
        if lid != nil { key += [("remoteJidAlt", .string(Self.jid(chatId))), ("addressingMode", "lid")] }
        if isGroup, !message.fromMe, let sender = message.senderId { key.append(("participant", .string(Self.jid(sender)))) }
        let (content, stub, kind, preview) = content(message)
        var fields: [(String, JSONLiteral)] = [("key", .object(key)), ("messageTimestamp", seconds(event.occurredAt)), ("pushName", "Ana")]
        if let content { fields.append(("message", content)) }
        if let stub {
            fields.append(("messageStubType", .integer(stub)))
            fields.append(("messageStubParameters", .array(kind == .system ? [.string(message.preview)] : [])))
        }
        if message.fromMe { fields.append(("status", 2)) }
        let sender = message.fromMe ? own : (isGroup ? message.senderId.flatMap(WhatsAppID.canonical) : chatId)
        let hasMedia = [.image, .video, .audio, .document, .sticker].contains(kind)
        let meaning = event.meaning(
            .messageCreated(MessageCreated(
                messageId: message.messageId, fromMe: message.fromMe, kind: kind, preview: preview, senderId: sender, hasMedia: hasMedia ? true : nil)),
            at: event.wholeSeconds)
        let type: JSONLiteral = variant() == 0 ? "append" : "notify"
        // The adapter says again what remoteJidAlt teaches (one fact: its id is the pair's).
        let aliased = lid.map { [event.meaning(.contactAliased(ContactAliased(alias: $0)))] } ?? []
        // An own message's SERVER_ACK is its status.
        let acked = message.fromMe ? [event.meaning(.messageStatus(MessageStatus(messageIds: [message.messageId], status: .server)), at: event.wholeSeconds)] : []
        return WrittenEvent(
            event: "messages.upsert", body: .object([("messages", .array([.object(fields)])), ("type", type)]), meaning: aliased + [meaning] + acked)
    }

    private func history(_ event: Event, _ snapshot: ChatSnapshot) -> WrittenEvent {
        let chatId = event.chatId ?? ""
        var chat: [(String, JSONLiteral)] = [
            ("id", .string(Self.jid(chatId))), ("name", .string(snapshot.name)), ("unreadCount", .integer(snapshot.unreadCount)),
            ("markedAsUnread", .bool(snapshot.markedUnread)), ("archived", .bool(snapshot.archived)),
            ("conversationTimestamp", .integer(snapshot.timestamp / 1000)),
        ]
        if snapshot.pinned { chat.append(("pinned", .integer(snapshot.timestamp / 1000))) }
        if snapshot.muteUntil != 0 { chat.append(("muteEndTime", .integer(snapshot.muteUntil))) }
        var messages: [JSONLiteral] = []
        var last: SnapshotMessage?
        if let message = snapshot.lastMessage {
            messages.append(.object([
                ("key", .object([("remoteJid", .string(Self.jid(chatId))), ("fromMe", .bool(message.fromMe)), ("id", .string(message.id))])),
                ("messageTimestamp", .integer(message.timestamp / 1000)), ("message", .object([("conversation", .string(message.preview))])),
            ]))
            last = SnapshotMessage(id: message.id, fromMe: message.fromMe, kind: .text, preview: message.preview, timestamp: message.timestamp / 1000 * 1000)
        }
        let meaning = ChatSnapshot(
            name: snapshot.name, isGroup: WhatsAppID.domain(of: chatId) == .group, unreadCount: snapshot.unreadCount, markedUnread: snapshot.markedUnread,
            archived: snapshot.archived, pinned: snapshot.pinned, muteUntil: snapshot.muteUntil, timestamp: snapshot.timestamp / 1000 * 1000, lastMessage: last)
        return WrittenEvent(
            event: "messaging-history.set",
            body: .object([("chats", .array([.object(chat)])), ("contacts", .array([])), ("messages", .array(messages)), ("syncType", "RECENT"), ("isLatest", false)]),
            meaning: [event.meaning(.chatSnapshot(meaning))])
    }

    private func participants(_ event: Event, _ change: GroupParticipants, own: String) -> WrittenEvent {
        let participant = change.includesMe ? own : (change.participants.first ?? own)
        let action: String
        let author: String
        switch change.action {
        case .leave: (action, author) = ("remove", participant)
        case .remove: (action, author) = ("remove", participant == own ? "491500000001@c.us" : own)
        default: (action, author) = (change.action.rawValue, own)
        }
        let body: JSONLiteral = .object([
            ("id", .string(event.chatId ?? "")), ("author", .string(Self.jid(author))), ("action", .string(action)),
            ("participants", .array([.object([("id", .string(Self.jid(participant))), ("admin", .null)])])),
        ])
        return WrittenEvent(event: "group-participants.update", body: body, meaning: [
            event.meaning(.groupParticipants(GroupParticipants(action: change.action, participants: [participant], includesMe: change.includesMe))),
        ])
    }
}
