import ChatEvents

/// whatsapp-web.js events: the listener's arguments, serialised.
extension MappingContext {
    mutating func mapWWebJS(_ root: JSONValue, into result: inout AdaptedRecord) throws(AdaptError) {
        guard let eventName = try mapBridgeEnvelope(root, known: WWebJSAdapter.knownEvents, into: &result) else { return }
        var reasons: [String] = []
        let argumentsValue = try required(root["args"], "args")
        guard argumentsValue.kind == .array else { throw .wrongType("args", expected: "an array", found: argumentsValue) }
        let arguments = argumentsValue.elements
        func argument(_ index: Int) throws(AdaptError) -> JSONValue {
            guard index < arguments.count, !arguments[index].isNull else { throw .missing("args[\(index)]") }
            guard arguments[index].kind == .object else {
                throw .wrongType("args[\(index)]", expected: "an object", found: arguments[index])
            }
            return arguments[index]
        }
        switch eventName {
        case "message_create":
            try mapWWebJSMessage(try argument(0), "args[0]", reasons: &reasons)
        case "message":
            reasons.append("also_in_message_create")  // the incoming half of message_create
        case "message_ack":
            let message = try argument(0)
            let ack = arguments.count > 1 && !arguments[1].isNull ? arguments[1] : message["ack"]
            try mapWWebJSAck(message, ack: ack, "args[0]", reasons: &reasons)
        case "message_revoke_everyone":
            // args[0] is the revoke notice under an id of its own; the revoked message is named
            // by its `protocolMessageKey` (Message.js), which Client.js also copies into
            // args[1] (`revoked_msg.id`), absent when WA Web had not kept the message.
            let notice = try argument(0)
            let (chatId, noticeId, _) = try wwebjsMessageKey(notice, "args[0]")
            let original = arguments.count > 1 && arguments[1].kind == .object ? arguments[1]["id"] : nil
            var messageId = try wwebjsKeyId(notice["protocolMessageKey"], "args[0].protocolMessageKey")
            if messageId == nil { messageId = try wwebjsKeyId(original, "args[1].id") }
            let target = messageId ?? noticeId
            emit(chatId: chatId, at: envelopeTime, .messageRevoked(MessageRevoked(messageId: target, scope: .everyone)), waitsFor: target)
        case "message_revoke_me":
            // The message deleted for me itself: its id is the target.
            let (chatId, messageId, _) = try wwebjsMessageKey(try argument(0), "args[0]")
            emit(chatId: chatId, at: envelopeTime, .messageRevoked(MessageRevoked(messageId: messageId, scope: .me)), waitsFor: messageId)
        case "message_edit":
            let message = try argument(0)
            let (chatId, messageId, _) = try wwebjsMessageKey(message, "args[0]")
            let newBody = arguments.count > 1 ? arguments[1].string : nil
            let preview = BaileysContent.truncated(newBody ?? message["body"]?.string ?? "")
            emit(chatId: chatId, at: envelopeTime, .messageEdited(MessageEdited(messageId: messageId, preview: preview)), waitsFor: messageId)
        case "message_reaction":
            try mapWWebJSReaction(try argument(0), "args[0]")
        case "chat_archived":
            let chatId = try wwebjsChatId(try argument(0), "args[0]")
            let state = arguments.count > 1 ? arguments[1].bool : nil
            guard let archived = state ?? arguments[0]["archived"]?.bool else { throw .missing("args[1]") }
            emit(chatId: chatId, at: envelopeTime, .chatArchived(archived: archived))
        case "chat_removed":
            emit(chatId: try wwebjsChatId(try argument(0), "args[0]"), at: envelopeTime, .chatDeleted)
        case "unread_count":
            try mapWWebJSUnreadCount(try argument(0), "args[0]")
        case "group_join", "group_leave", "group_admin_changed", "group_update":
            try mapWWebJSGroupNotification(try argument(0), "args[0]", reasons: &reasons)
        default:
            reasons.append("ignored_event")  // session, calls, contacts, votes, ...
        }
        result.events = events
        if events.isEmpty && reasons.isEmpty { reasons.append("no_chat_list_effect") }
        result.skipReasons.append(contentsOf: reasons)
    }

    // MARK: - Messages

    /// An id wwebjs serialises as a string or as `{_serialized, user, server}`.
    func wwebjsAddress(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String? {
        guard let value, !value.isNull else { return nil }
        if value.kind == .object { return try optionalAddress(value["_serialized"], path() + "._serialized") }
        return try optionalAddress(value, path())
    }

    /// A message's chat, id and `fromMe` from its `id` (`{fromMe, remote, id, participant, _serialized}`).
    func wwebjsMessageKey(_ message: JSONValue, _ path: String) throws(AdaptError) -> (chatId: String, messageId: String, fromMe: Bool) {
        let key = try requiredObject(message["id"], path + ".id")
        guard let chatId = try wwebjsAddress(key["remote"], path + ".id.remote") else { throw .missing(path + ".id.remote") }
        let messageId = try requiredIdentifier(key["id"], path + ".id.id")
        return (chatId, messageId, try optionalBool(key["fromMe"], path + ".id.fromMe"))
    }

    /// The message id of a wwebjs key: `{fromMe, remote, id, _serialized}`, or its
    /// serialised form `<fromMe>_<remote>_<id>[_<participant>]`; nil when absent.
    func wwebjsKeyId(_ key: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String? {
        guard let key, !key.isNull else { return nil }
        if key.kind == .object { return try optionalIdentifier(key["id"], path() + ".id").flatMap { $0.isEmpty ? nil : $0 } }
        guard let serialised = key.string else { throw .wrongType(path(), expected: "an object or a string", found: key) }
        let parts = serialised.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count >= 3, !parts[2].isEmpty, parts[2].utf8.count <= Self.maxIdentifierBytes else {
            throw .invalid(path(), "not a serialised message key")
        }
        return String(parts[2])
    }

    /// A `Message`'s kind, preview and media from its `type` (`chat`, `image`, `ptt`, ...);
    /// nil for types that are no message of the chat list (revoked placeholders, ciphertext
    /// waiting for its key, notifications, protocol messages, reactions).
    static func wwebjsContent(_ message: JSONValue) -> (kind: MessageKind, preview: String, hasMedia: Bool)? {
        let body = message["body"]?.string ?? ""
        let hasMedia = message["hasMedia"]?.bool ?? false
        switch message["type"]?.string ?? "chat" {
        case "chat": return (.text, body, false)
        case "image": return (.image, body, true)
        case "video", "ptv": return (.video, body, true)
        case "audio", "ptt": return (.audio, "", true)
        case "document": return (.document, body, true)
        case "sticker": return (.sticker, "", true)
        case "location":
            // `body` of a location is its thumbnail; the description is the text.
            let location = message["location"]
            return (.location, location?["description"]?.string ?? location?["name"]?.string ?? "", false)
        case "vcard":
            return (.contact, vcardName(body), false)
        case "multi_vcard": return (.contact, "", false)
        case "call_log": return (.call, "", false)
        case "poll_creation": return (.text, message["pollName"]?.string ?? body, false)
        case "revoked", "ciphertext", "e2e_notification", "notification_template", "notification", "gp2",
            "broadcast_notification", "protocol", "reaction", "poll_update", "pinned_message", "debug":
            return nil
        default: return (.text, body, hasMedia)  // a type this build does not know is still a message
        }
    }

    /// The `FN:` line of a vCard, the contact's display name.
    static func vcardName(_ vcard: String) -> String {
        for line in vcard.split(whereSeparator: \.isNewline) where line.hasPrefix("FN:") { return String(line.dropFirst(3)) }
        return ""
    }

    mutating func mapWWebJSMessage(_ message: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let (chatId, messageId, fromMe) = try wwebjsMessageKey(message, path)
        if WhatsAppID.domain(of: chatId) == .statusBroadcast || message["isStatus"]?.bool == true {
            reasons.append("status_broadcast")
            return
        }
        guard let (kind, preview, hasMedia) = Self.wwebjsContent(message) else {
            reasons.append("not_a_message")
            return
        }
        let author = try wwebjsAddress(message["author"], path + ".author")
        let from = try wwebjsAddress(message["from"], path + ".from")
        let sender = fromMe ? ownId : (author ?? from ?? personalChat(chatId))
        let occurredAt = BaileysContent.epochMillis(message["timestamp"]) ?? envelopeTime
        emit(
            chatId: chatId, at: occurredAt,
            .messageCreated(MessageCreated(
                messageId: messageId, fromMe: fromMe, kind: kind, preview: BaileysContent.truncated(preview), senderId: sender,
                hasMedia: hasMedia ? true : nil)))
        // An own message's ack as message_create gives it (0 pending is where it starts).
        if fromMe, let status = Self.wwebjsAck(message["ack"]), status != .pending {
            emit(chatId: chatId, at: occurredAt, .messageStatus(MessageStatus(messageIds: [messageId], status: status)))
        }
    }

    /// wwebjs' `ACK`: -1 error, 0 pending, 1 server, 2 device, 3 read, 4 played.
    static func wwebjsAck(_ value: JSONValue?) -> AckStatus? {
        switch value.flatMap(BaileysContent.integer) {
        case -1: return .error
        case 0: return .pending
        case 1: return .server
        case 2: return .delivered
        case 3: return .read
        case 4: return .played
        default: return nil
        }
    }

    mutating func mapWWebJSAck(_ message: JSONValue, ack: JSONValue?, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let (chatId, messageId, fromMe) = try wwebjsMessageKey(message, path)
        guard let status = Self.wwebjsAck(ack) else {
            reasons.append("unknown_status")
            return
        }
        emitReceipt(status, messageId: messageId, chatId: chatId, fromMe: fromMe, at: envelopeTime, reasons: &reasons)
    }

    /// `Reaction`: `msgId` is the target's key, `senderId` who reacted, `reaction` the emoji
    /// (empty: removed), `timestamp` seconds.
    mutating func mapWWebJSReaction(_ reaction: JSONValue, _ path: String) throws(AdaptError) {
        let target = try requiredObject(reaction["msgId"], path + ".msgId")
        guard let chatId = try wwebjsAddress(target["remote"], path + ".msgId.remote") else { throw .missing(path + ".msgId.remote") }
        let targetId = try requiredIdentifier(target["id"], path + ".msgId.id")
        guard let sender = try wwebjsAddress(reaction["senderId"], path + ".senderId") else { throw .missing(path + ".senderId") }
        let emoji = reaction["reaction"]?.string ?? ""
        emit(
            chatId: chatId, at: BaileysContent.epochMillis(reaction["timestamp"]) ?? envelopeTime,
            .messageReaction(MessageReaction(targetMessageId: targetId, senderId: sender, emoji: BaileysContent.truncated(emoji, maxBytes: 64))))
    }

    // MARK: - Chats and groups

    func wwebjsChatId(_ chat: JSONValue, _ path: String) throws(AdaptError) -> String {
        guard let id = try wwebjsAddress(chat["id"], path + ".id") else { throw .missing(path + ".id") }
        return id
    }

    /// `unread_count`: the chat's absolute count. 0 and -1 are the read and marked-unread
    /// facts; a positive count is stated as the whole serialised chat (`chat.snapshot`), so
    /// ChatLedger keeps the count WhatsApp Web shows.
    mutating func mapWWebJSUnreadCount(_ chat: JSONValue, _ path: String) throws(AdaptError) {
        let chatId = try wwebjsChatId(chat, path)
        guard let count = BaileysContent.integer(chat["unreadCount"]) else { throw .missing(path + ".unreadCount") }
        switch count {
        case 0: emit(chatId: chatId, at: envelopeTime, .chatRead(ChatRead()))
        case ..<0: emit(chatId: chatId, at: envelopeTime, .chatMarkedUnread)
        default:
            var last: SnapshotMessage?
            if let message = chat["lastMessage"], message.kind == .object,
                let (_, messageId, fromMe) = try? wwebjsMessageKey(message, path + ".lastMessage")
            {
                let time = BaileysContent.epochMillis(message["timestamp"]) ?? 0
                let ack = fromMe ? Self.wwebjsAck(message["ack"]) : nil
                if let (kind, preview, _) = Self.wwebjsContent(message) {
                    last = SnapshotMessage(id: messageId, fromMe: fromMe, kind: kind, preview: BaileysContent.truncated(preview), timestamp: time, ack: ack)
                } else if message["type"]?.string == "revoked" {
                    // A message deleted for everyone stays the chat's last message, without its text.
                    last = SnapshotMessage(id: messageId, fromMe: fromMe, kind: .text, preview: "", timestamp: time, ack: ack, revoked: true)
                }
            }
            var muteUntil: Int64 = 0
            if chat["isMuted"]?.bool == true, let expiration = BaileysContent.integer(chat["muteExpiration"]) {
                muteUntil = expiration < 0 ? -1 : BaileysContent.epochMillis(chat["muteExpiration"]) ?? 0
            }
            let snapshot = ChatSnapshot(
                name: BaileysContent.truncated(chat["name"]?.string ?? ""),
                isGroup: chat["isGroup"]?.bool ?? (WhatsAppID.domain(of: chatId) == .group), unreadCount: count, markedUnread: false,
                archived: chat["archived"]?.bool ?? false, pinned: chat["pinned"]?.bool ?? false, muteUntil: muteUntil,
                timestamp: BaileysContent.epochMillis(chat["timestamp"]) ?? last?.timestamp ?? envelopeTime, lastMessage: last)
            emit(chatId: chatId, at: envelopeTime, .chatSnapshot(snapshot))
        }
    }

    /// `GroupNotification` `{chatId, type, body, author, recipientIds, timestamp}`.
    mutating func mapWWebJSGroupNotification(_ notification: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        var chatIdValue = notification["chatId"]
        if chatIdValue == nil || chatIdValue?.isNull == true { chatIdValue = notification["id"]?["remote"] }
        guard let chatId = try wwebjsAddress(chatIdValue, path + ".chatId") else { throw .missing(path + ".chatId") }
        let type = try requiredString(notification["type"], path + ".type")
        let time = BaileysContent.epochMillis(notification["timestamp"]) ?? envelopeTime
        let action: ParticipantAction
        switch type {
        case "add", "invite", "linked_group_join": action = .add
        case "remove": action = .remove
        case "leave": action = .leave
        case "promote": action = .promote
        case "demote": action = .demote
        case "subject":
            let name = notification["body"]?.string ?? ""
            guard !name.isEmpty else { throw .missing(path + ".body") }
            emit(chatId: chatId, at: time, .chatUpdated(ChatUpdated(name: BaileysContent.truncated(name), isGroup: true)))
            return
        default:
            reasons.append("group_notification_\(type == "description" || type == "picture" ? type : "other")")
            return
        }
        var participants: [String] = []
        for (index, recipient) in (notification["recipientIds"]?.elements ?? []).enumerated() {
            if let id = try wwebjsAddress(recipient, "\(path).recipientIds[\(index)]"), !participants.contains(id) { participants.append(id) }
        }
        guard !participants.isEmpty else {
            reasons.append("no_participants")
            return
        }
        guard participants.count <= 1000 else { throw .invalid(path + ".recipientIds", "more than 1000 participants") }
        emit(
            chatId: chatId, at: time,
            .groupParticipants(GroupParticipants(action: action, participants: participants, includesMe: participants.contains(where: isOwn))))
    }
}
