import ChatEvents

/// Writes canonical events as the whatsapp-web.js client events that state them (the
/// simulated bridge of `BridgeTraffic`), with the canonical events each means when the
/// `wwebjs` adapter reads it.
///
/// Ids in WA Web's `@c.us` form. What whatsapp-web.js cannot say is not written: pin and
/// mute (no events), a cleared chat, a 1:1 chat's name, account settings, group notices as
/// messages (they are `group_*` events), a read up to a message (`unread_count` 0 reads the
/// chat). A snapshot with unread messages is an `unread_count` with the whole `Chat`.
struct WWebJSRecordWriter: Sendable {
    private var counter: UInt64 = 0

    private mutating func variant() -> UInt64 {
        counter &+= 1
        return counter % 3
    }

    mutating func write(_ event: Event) -> [WrittenEvent] {
        let chatId = event.chatId ?? ""
        let own = BridgeTraffic.ownId(of: event.deviceId)
        func one(_ name: String, _ args: [JSONLiteral], _ meaning: [EventPayload], at time: Int64? = nil) -> [WrittenEvent] {
            [WrittenEvent(event: name, body: .array(args), meaning: meaning.map { event.meaning($0, at: time) })]
        }
        switch event.payload {
        case .messageCreated(let message):
            guard message.kind != .system, WhatsAppID.domain(of: chatId) != .statusBroadcast else { return [] }
            let (type, body, preview, media) = Self.content(message)
            let sender = message.fromMe ? own : (WhatsAppID.domain(of: chatId) == .group ? message.senderId : chatId)
            // An own message is written with ack 1 (server), which is its status.
            let acked: [EventPayload] = message.fromMe ? [.messageStatus(MessageStatus(messageIds: [message.messageId], status: .server))] : []
            return one(
                "message_create", [self.message(chatId, message.messageId, fromMe: message.fromMe, type: type, body: body, author: sender, time: event.occurredAt)],
                [.messageCreated(MessageCreated(
                    messageId: message.messageId, fromMe: message.fromMe, kind: message.kind, preview: preview, senderId: sender,
                    hasMedia: media ? true : nil))] + acked,
                at: event.wholeSeconds)
        case .messageStatus(let status):
            guard let messageId = status.messageIds.first else { return [] }
            let acks: [AckStatus: Int64] = [.error: -1, .pending: 0, .server: 1, .delivered: 2, .read: 3, .played: 4]
            let fromMe = status.selfDevice != true
            return one(
                "message_ack", [self.message(chatId, messageId, fromMe: fromMe, type: "chat", body: "", author: nil, time: event.occurredAt), .integer(acks[status.status] ?? 3)],
                [.messageStatus(MessageStatus(messageIds: [messageId], status: status.status, selfDevice: fromMe ? nil : true))])
        case .chatRead:
            return one("unread_count", [chat(chatId, unread: 0, event: event)], [.chatRead(ChatRead())])
        case .chatMarkedUnread:
            return one("unread_count", [chat(chatId, unread: -1, event: event)], [.chatMarkedUnread])
        case .chatArchived(let archived):
            return one("chat_archived", [chat(chatId, unread: 0, event: event), .bool(archived), .bool(!archived)], [.chatArchived(archived: archived)])
        case .chatDeleted:
            return one("chat_removed", [chat(chatId, unread: 0, event: event)], [.chatDeleted])
        case .chatSnapshot(let snapshot):
            guard snapshot.unreadCount > 0 else {
                return one("unread_count", [chat(chatId, unread: 0, event: event)], [.chatRead(ChatRead())])
            }
            var fields: [(String, JSONLiteral)] = [
                ("name", .string(snapshot.name)), ("isGroup", .bool(snapshot.isGroup)), ("archived", .bool(snapshot.archived)),
                ("pinned", .bool(snapshot.pinned)), ("isMuted", .bool(snapshot.muteUntil != 0)),
                ("muteExpiration", .integer(snapshot.muteUntil <= 0 ? snapshot.muteUntil : snapshot.muteUntil / 1000)),
                ("timestamp", .integer(snapshot.timestamp / 1000)),
            ]
            var last: SnapshotMessage?
            if let message = snapshot.lastMessage {
                fields.append(("lastMessage", self.message(
                    chatId, message.id, fromMe: message.fromMe, type: "chat", body: message.preview, author: message.fromMe ? own : chatId,
                    time: message.timestamp)))
                last = SnapshotMessage(id: message.id, fromMe: message.fromMe, kind: .text, preview: message.preview, timestamp: message.timestamp / 1000 * 1000)
            }
            let meaning = ChatSnapshot(
                name: snapshot.name, isGroup: snapshot.isGroup, unreadCount: snapshot.unreadCount, markedUnread: false, archived: snapshot.archived,
                pinned: snapshot.pinned, muteUntil: snapshot.muteUntil < 0 ? -1 : snapshot.muteUntil / 1000 * 1000,
                timestamp: snapshot.timestamp / 1000 * 1000, lastMessage: last)
            return one("unread_count", [chat(chatId, unread: snapshot.unreadCount, event: event, fields: fields)], [.chatSnapshot(meaning)])
        case .messageReaction(let reaction):
            let key: JSONLiteral = .object([
                ("fromMe", false), ("remote", .string(chatId)), ("id", .string(reaction.targetMessageId)),
                ("_serialized", .string("false_\(chatId)_\(reaction.targetMessageId)")),
            ])
            let body: JSONLiteral = .object([
                ("id", .object([("fromMe", false), ("remote", .string(chatId)), ("id", .string("R" + reaction.targetMessageId))])),
                ("orphan", 0), ("reaction", .string(reaction.emoji)), ("timestamp", .integer(event.occurredAt / 1000)), ("read", false), ("ack", 0),
                ("msgId", key), ("senderId", .string(reaction.senderId)),
            ])
            return one("message_reaction", [body], [event.payload], at: event.wholeSeconds)
        case .messageEdited(let edit):
            return one(
                "message_edit",
                [self.message(chatId, edit.messageId, fromMe: false, type: "chat", body: edit.preview, author: chatId, time: event.occurredAt), .string(edit.preview), "before"],
                [event.payload])
        case .messageRevoked(let revoke):
            guard revoke.scope == .everyone else {
                let deleted = self.message(chatId, revoke.messageId, fromMe: false, type: "chat", body: "", author: chatId, time: event.occurredAt)
                return one("message_revoke_me", [deleted], [event.payload])
            }
            // The revoke notice has an id of its own and names the revoked message in `protocolMessageKey`.
            var notice = self.message(chatId, "REV" + revoke.messageId, fromMe: false, type: "revoked", body: "", author: chatId, time: event.occurredAt)
            if case .object(var fields) = notice {
                fields.append(("protocolMessageKey", .object([
                    ("fromMe", false), ("remote", .string(chatId)), ("id", .string(revoke.messageId)), ("_serialized", .string("false_\(chatId)_\(revoke.messageId)")),
                ])))
                notice = .object(fields)
            }
            return one("message_revoke_everyone", [notice, .null], [event.payload])
        case .chatUpdated(let update):
            guard WhatsAppID.domain(of: chatId) == .group, let name = update.name, !name.isEmpty else { return [] }
            return one(
                "group_update", [notification(chatId, type: "subject", body: name, recipients: [], author: own, time: event.occurredAt)],
                [.chatUpdated(ChatUpdated(name: name, isGroup: true))], at: event.wholeSeconds)
        case .groupParticipants(let change):
            let participant = change.includesMe ? own : (change.participants.first ?? own)
            let name: String
            switch change.action {
            case .add: name = "group_join"
            case .remove, .leave: name = "group_leave"
            case .promote, .demote: name = "group_admin_changed"
            }
            return one(
                name, [notification(chatId, type: change.action.rawValue, body: "", recipients: [participant], author: participant, time: event.occurredAt)],
                [.groupParticipants(GroupParticipants(action: change.action, participants: [participant], includesMe: change.includesMe))],
                at: event.wholeSeconds)
        case .chatPinned, .chatMuted, .chatCleared, .accountSettings, .contactAliased, .ledgerErased, .unknown:
            return []  // whatsapp-web.js emits nothing for these
        }
    }

    /// The wwebjs type, body, the preview the adapter reads and whether it has media.
    static func content(_ message: MessageCreated) -> (type: String, body: String, preview: String, media: Bool) {
        switch message.kind {
        case .text: return ("chat", message.preview, message.preview, false)
        case .image: return ("image", message.preview, message.preview, true)
        case .video: return ("video", message.preview, message.preview, true)
        case .audio: return ("ptt", "", "", true)
        case .document: return ("document", message.preview, message.preview, true)
        case .sticker: return ("sticker", "", "", true)
        case .location: return ("location", "/9j/4AAQ", "", false)
        case .contact: return ("vcard", "BEGIN:VCARD\nVERSION:3.0\nFN:\(message.preview)\nEND:VCARD", message.preview, false)
        case .call: return ("call_log", "", "", false)
        case .system: return ("gp2", "", "", false)
        }
    }

    /// A serialised `Message`.
    private mutating func message(
        _ chatId: String, _ id: String, fromMe: Bool, type: String, body: String, author: String?, time: Int64
    ) -> JSONLiteral {
        let isGroup = WhatsAppID.domain(of: chatId) == .group
        let remote: JSONLiteral =
            variant() == 0
            ? .object([("server", .string(isGroup ? "g.us" : "c.us")), ("user", .string(String(WhatsAppID.user(of: chatId)))), ("_serialized", .string(chatId))])
            : .string(chatId)
        var fields: [(String, JSONLiteral)] = [
            ("id", .object([("fromMe", .bool(fromMe)), ("remote", remote), ("id", .string(id)), ("_serialized", .string("\(fromMe)_\(chatId)_\(id)"))])),
            ("ack", fromMe ? 1 : 0), ("hasMedia", .bool(["image", "video", "ptt", "document", "sticker"].contains(type))), ("body", .string(body)),
            ("type", .string(type)), ("timestamp", .integer(time / 1000)), ("from", .string(fromMe ? (author ?? chatId) : (isGroup ? chatId : (author ?? chatId)))),
            ("to", .string(fromMe ? chatId : "me")), ("fromMe", .bool(fromMe)), ("isStatus", false), ("deviceType", "android"),
        ]
        if isGroup, !fromMe, let author { fields.append(("author", .string(author))) }
        if type == "location" { fields.append(("location", .object([("latitude", 52), ("longitude", 13)]))) }
        return .object(fields)
    }

    /// A serialised `Chat`.
    private func chat(_ chatId: String, unread: Int64, event: Event, fields: [(String, JSONLiteral)]? = nil) -> JSONLiteral {
        let isGroup = WhatsAppID.domain(of: chatId) == .group
        let id: JSONLiteral = .object([
            ("server", .string(isGroup ? "g.us" : "c.us")), ("user", .string(String(WhatsAppID.user(of: chatId)))), ("_serialized", .string(chatId)),
        ])
        let rest =
            fields ?? [
                ("name", "Ana"), ("isGroup", .bool(isGroup)), ("archived", false), ("pinned", false), ("isMuted", false),
                ("muteExpiration", 0), ("timestamp", .integer(event.occurredAt / 1000)),
            ]
        return .object([("id", id), ("unreadCount", .integer(unread)), ("isReadOnly", false)] + rest)
    }

    /// A serialised `GroupNotification`.
    private func notification(_ chatId: String, type: String, body: String, recipients: [String], author: String, time: Int64) -> JSONLiteral {
        .object([
            ("id", .object([("fromMe", false), ("remote", .string(chatId)), ("id", .string("N\(time)")), ("participant", .string(author))])),
            ("body", .string(body)), ("type", .string(type)), ("timestamp", .integer(time / 1000)), ("chatId", .string(chatId)),
            ("author", .string(author)), ("recipientIds", .array(recipients.map(JSONLiteral.string))),
        ])
    }
}
