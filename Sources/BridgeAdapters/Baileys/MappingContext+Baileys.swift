import ChatEvents

/// The Baileys envelope and the events only raw Baileys has.
extension MappingContext {
    mutating func mapBaileys(_ root: JSONValue, into result: inout AdaptedRecord) throws(AdaptError) {
        guard let eventName = try mapBridgeEnvelope(root, known: BaileysAdapter.knownEvents, into: &result) else { return }
        var reasons: [String] = []
        let data = root["data"]
        switch eventName {
        case "messages.upsert":
            let upsert = try requiredObject(data, "data")
            try Self.forEachObject(try required(upsert["messages"], "data.messages"), "data.messages") { message, path throws(AdaptError) in
                try mapMessage(message, path, sentThroughAPI: false, reactions: false, ownStatus: true, reasons: &reasons)
            }
        case "messages.update":
            try Self.forEachObject(try required(data, "data"), "data") { update, path throws(AdaptError) in
                try mapBaileysUpdate(update, path, reasons: &reasons)
            }
        case "messages.delete":
            try mapBaileysDelete(try requiredObject(data, "data"))
        case "messages.reaction":
            try Self.forEachObject(try required(data, "data"), "data") { reaction, path throws(AdaptError) in
                try mapBaileysReaction(reaction, path)
            }
        case "message-receipt.update":
            try Self.forEachObject(try required(data, "data"), "data") { receipt, path throws(AdaptError) in
                try mapBaileysReceipt(receipt, path, reasons: &reasons)
            }
        case "chats.update", "chats.upsert":
            try Self.forEachObject(try required(data, "data"), "data") { chat, path throws(AdaptError) in
                try mapBaileysChatUpdate(chat, path, reasons: &reasons)
            }
        case "chats.delete":
            try mapChatsDelete(try required(data, "data"))
        case "messaging-history.set":
            try mapBaileysHistory(try requiredObject(data, "data"), reasons: &reasons)
        case "groups.upsert", "groups.update":
            try Self.forEachObject(try required(data, "data"), "data") { group, path throws(AdaptError) in
                try mapGroupParticipantsAliases(group["participants"], participantsData: nil, path)
                try mapChatName(group, path, idKey: "id", nameKey: "subject", isGroup: true)
            }
        case "group-participants.update":
            try Self.forEachObject(try required(data, "data"), "data") { update, path throws(AdaptError) in
                try mapParticipants(update, path, reasons: &reasons)
            }
        case "lid-mapping.update":
            try Self.forEachObject(try required(data, "data"), "data") { mapping, path throws(AdaptError) in
                try mapLidMapping(mapping, path)
            }
        case "creds.update":
            // Only the account setting; the rest of creds.update is key material and is
            // never read (the publisher forwards `accountSettings` alone).
            if let setting = data?["accountSettings"]?["unarchiveChats"], let unarchive = setting.bool {
                emit(chatId: nil, at: envelopeTime, .accountSettings(keepChatsArchived: !unarchive))
            } else {
                reasons.append("ignored_event")
            }
        default:
            reasons.append("ignored_event")  // presence, contacts, calls, labels, connection, ...
        }
        result.events = events
        if events.isEmpty && reasons.isEmpty { reasons.append("no_chat_list_effect") }
        result.skipReasons.append(contentsOf: reasons)
    }

    // MARK: - Messages

    /// The chat of a Baileys key (`remoteJid`, in the phone form when the key names it:
    /// `keyRemoteJid`) and whether it is a guess (an unresolved LID: the stage uses the
    /// message's chat).
    mutating func keyChat(_ key: JSONValue, _ path: String) throws(AdaptError) -> (chatId: String, isGuess: Bool) {
        let chatId = try keyRemoteJid(key, path)
        return (chatId, WhatsAppID.domain(of: chatId) == .lid)
    }

    /// `messages.update` `{key, update}`: a receipt (`status`), a revoke (`message: null`
    /// with the `REVOKE` stub) or an edit (`message.editedMessage`), key in the account's view.
    mutating func mapBaileysUpdate(_ item: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let key = try requiredObject(item["key"], path + ".key")
        let update = try requiredObject(item["update"], path + ".update")
        let messageId = try requiredIdentifier(key["id"], path + ".key.id")
        let (chatId, isGuess) = try keyChat(key, path + ".key")
        let fromMe = try optionalBool(key["fromMe"], path + ".key.fromMe")
        if WhatsAppID.domain(of: chatId) == .statusBroadcast {
            reasons.append("status_broadcast")
            return
        }
        let time = BaileysContent.epochMillis(update["messageTimestamp"]) ?? envelopeTime
        if let stub = update["messageStubType"], BaileysContent.integer(stub) == 1 || stub.string == "REVOKE",
            update["message"]?.kind != .object
        {
            emit(
                chatId: chatId, at: envelopeTime, .messageRevoked(MessageRevoked(messageId: messageId, scope: .everyone)),
                waitsFor: messageId, chatIsGuess: isGuess)
            return
        }
        if let edited = update["message"]?["editedMessage"] {
            emit(
                chatId: chatId, at: time, .messageEdited(MessageEdited(messageId: messageId, preview: Self.editPreview(edited))),
                waitsFor: messageId, chatIsGuess: isGuess)
            return
        }
        guard let statusValue = update["status"], !statusValue.isNull else {
            reasons.append("no_chat_list_update")  // starred, poll updates, media, ...
            return
        }
        guard let status = BaileysContent.ackStatus(statusValue) else {
            reasons.append("unknown_status")
            return
        }
        emitReceipt(status, messageId: messageId, chatId: chatId, fromMe: fromMe, isGuess: isGuess, at: envelopeTime, reasons: &reasons)
    }

    /// `messages.delete`: `{keys}` deleted for me (app state), or `{jid, all: true}` (the
    /// whole chat cleared; declared by Baileys, not emitted by 7.0).
    mutating func mapBaileysDelete(_ data: JSONValue) throws(AdaptError) {
        if let keys = data["keys"] {
            guard keys.kind == .array else { throw .wrongType("data.keys", expected: "an array", found: keys) }
            for (index, key) in keys.elements.enumerated() {
                let path = "data.keys[\(index)]"
                guard key.kind == .object else { throw .wrongType(path, expected: "an object", found: key) }
                let messageId = try requiredIdentifier(key["id"], path + ".id")
                let (chatId, isGuess) = try keyChat(key, path)
                emit(
                    chatId: chatId, at: envelopeTime, .messageRevoked(MessageRevoked(messageId: messageId, scope: .me)),
                    waitsFor: messageId, chatIsGuess: isGuess)
            }
            return
        }
        let chatId = try requiredAddress(data["jid"], "data.jid")
        guard data["all"]?.bool == true else { throw .invalid("data.all", "must be true when there are no keys") }
        emit(chatId: chatId, at: envelopeTime, .chatCleared)
    }

    /// `messages.reaction` `{key: <target>, reaction: {key: <the reaction's own key>, text,
    /// senderTimestampMs}}`: `text` empty or null removes the reaction.
    mutating func mapBaileysReaction(_ item: JSONValue, _ path: String) throws(AdaptError) {
        let key = try requiredObject(item["key"], path + ".key")
        let reaction = try requiredObject(item["reaction"], path + ".reaction")
        let target = try requiredIdentifier(key["id"], path + ".key.id")
        let (chatId, _) = try keyChat(key, path + ".key")
        let reactor: String?
        let reactionKey = reaction["key"]
        if let participant = try keyParticipant(reactionKey, path + ".reaction.key") {
            reactor = participant
        } else if reactionKey?["fromMe"]?.bool == true {
            reactor = ownId
        } else {
            reactor = try optionalAddress(reactionKey?["remoteJid"], path + ".reaction.key.remoteJid") ?? personalChat(chatId)
        }
        guard let reactor else { throw .missing(path + ".reaction.key.participant") }
        let emoji = reaction["text"]?.string ?? ""
        emit(
            chatId: chatId, at: BaileysContent.epochMillis(reaction["senderTimestampMs"]) ?? envelopeTime,
            .messageReaction(MessageReaction(targetMessageId: target, senderId: reactor, emoji: BaileysContent.truncated(emoji, maxBytes: 64))))
    }

    /// `message-receipt.update` `{key, receipt: {userJid, readTimestamp | receiptTimestamp}}`:
    /// per group member; only the account's own read (on another of its devices) changes the
    /// chat list.
    mutating func mapBaileysReceipt(_ item: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        let key = try requiredObject(item["key"], path + ".key")
        let receipt = try requiredObject(item["receipt"], path + ".receipt")
        let user = try requiredAddress(receipt["userJid"], path + ".receipt.userJid")
        guard isOwn(user) else {
            reasons.append("receipt_of_another_member")
            return
        }
        // On an own message, the account's own receipt is its other device getting it (a
        // `sender` receipt, which Baileys also gives a `readTimestamp` in a group): it says
        // nothing of the other members (src/Socket/messages-recv.ts, `handleReceipt`).
        if try optionalBool(key["fromMe"], path + ".key.fromMe") {
            reasons.append("own_receipt_on_own_message")
            return
        }
        let read = receipt["readTimestamp"].flatMap(BaileysContent.epochMillis)
        let played = receipt["playedTimestamp"].flatMap(BaileysContent.epochMillis)
        guard let time = read ?? played else {
            reasons.append("receipt_without_effect")
            return
        }
        let messageId = try requiredIdentifier(key["id"], path + ".key.id")
        let (chatId, isGuess) = try keyChat(key, path + ".key")
        emit(
            chatId: chatId, at: time,
            .messageStatus(MessageStatus(messageIds: [messageId], status: read == nil ? .played : .read, selfDevice: true)),
            waitsFor: messageId, chatIsGuess: isGuess)
    }

    // MARK: - Chats

    /// One `chats.update` (or `chats.upsert`) element: each field present is its own fact.
    /// `unreadCount` is the trap: `0` read, `-1` marked unread, a positive number an
    /// increment Baileys adds per incoming message (the messages count themselves here).
    mutating func mapBaileysChatUpdate(_ chat: JSONValue, _ path: String, reasons: inout [String]) throws(AdaptError) {
        var chatId = try requiredAddress(chat["id"], path + ".id")
        chatId = try resolveChatAliases(chatId, chat, path)
        let before = events.count
        var increment = false
        if let name = chat["name"]?.string, !name.isEmpty {
            let isGroup: Bool? = WhatsAppID.domain(of: chatId) == .group ? true : nil
            emit(chatId: chatId, at: envelopeTime, .chatUpdated(ChatUpdated(name: BaileysContent.truncated(name), isGroup: isGroup)))
        }
        if let readOnly = chat["readOnly"]?.bool {
            emit(chatId: chatId, at: envelopeTime, .chatUpdated(ChatUpdated(readOnly: readOnly)))
        }
        if let archived = chat["archived"], !archived.isNull {
            guard let flag = archived.bool else { throw .wrongType(path + ".archived", expected: "a boolean", found: archived) }
            emit(chatId: chatId, at: envelopeTime, .chatArchived(archived: flag))
        }
        if let pinned = chat["pinned"] {
            // The pin action's time (ms) or null; history gives a uint32, a boolean in some forks.
            let at = BaileysContent.integer(pinned)
            let isPinned = pinned.bool ?? ((at ?? 0) != 0)
            emit(chatId: chatId, at: isPinned ? BaileysContent.epochMillis(pinned) ?? envelopeTime : envelopeTime, .chatPinned(pinned: isPinned))
        }
        if let mute = chat["muteEndTime"] {
            emit(chatId: chatId, at: envelopeTime, .chatMuted(muteUntil: try Self.muteUntil(mute, path + ".muteEndTime")))
        }
        if let unread = chat["unreadCount"], !unread.isNull {
            guard let count = BaileysContent.integer(unread) else {
                throw .wrongType(path + ".unreadCount", expected: "a number", found: unread)
            }
            switch count {
            case 0: emit(chatId: chatId, at: envelopeTime, .chatRead(ChatRead()))
            case -1: emit(chatId: chatId, at: envelopeTime, .chatMarkedUnread)
            default:
                increment = true  // +n per incoming message: the messages say it
                reasons.append("unread_increment")
            }
        }
        if events.count == before, !increment { reasons.append("no_chat_list_update") }
    }

    /// `id` in the phone form when the chat object names its other form (`pnJid`, `lidJid`).
    mutating func resolveChatAliases(_ id: String, _ chat: JSONValue, _ path: String) throws(AdaptError) -> String {
        var chatId = try resolveAlias(id, alt: chat["pnJid"], path + ".pnJid")
        chatId = try resolveAlias(chatId, alt: chat["lidJid"], path + ".lidJid")
        return chatId
    }

    /// `muteEndTime`: null or 0 unmuted, -1 forever, else epoch ms (seconds made ms).
    static func muteUntil(_ value: JSONValue, _ path: String) throws(AdaptError) -> Int64 {
        if value.isNull { return 0 }
        // "Muted forever" is -1 in an unsigned 64-bit field (`Conversation.muteEndTime`):
        // protobufjs writes it as "18446744073709551615", a JS number as 1.8446744073709552e19.
        if Self.isBeyondInt64(value) { return -1 }
        guard let number = BaileysContent.integer(value) else { throw .wrongType(path, expected: "a number", found: value) }
        if number <= 0 { return number < 0 ? -1 : 0 }
        return BaileysContent.epochMillis(value) ?? 0
    }

    /// A whole number (or numeric string) above `Int64.max`: an unsigned 64-bit value with its top bit set.
    static func isBeyondInt64(_ value: JSONValue) -> Bool {
        let text: String
        switch value.kind {
        case .string: text = value.string ?? ""
        case .number where value.int64 == nil: text = value.numberText
        default: return false
        }
        if let unsigned = UInt64(text) { return unsigned > UInt64(Int64.max) }
        guard let double = Double(text), double.isFinite, double.rounded() == double else { return false }
        return double > 9.2e18
    }

    // MARK: - History

    /// The history sync types whose conversations state what the account sees now
    /// (`proto.HistorySync.HistorySyncType`): the link-time bootstrap and recent chunks.
    /// Full, on-demand and push-name chunks are older than what live events said since.
    static let snapshotSyncTypes: Set<String> = ["0", "3", "INITIAL_BOOTSTRAP", "RECENT"]

    /// `messaging-history.set`: a `chat.snapshot` per conversation (absolute unread count,
    /// marked unread, archived, pinned, mute, its newest message in the chunk), and
    /// `contact.aliased` for every `lidPnMappings` entry and chat naming both its ids.
    mutating func mapBaileysHistory(_ data: JSONValue, reasons: inout [String]) throws(AdaptError) {
        for (index, mapping) in (data["lidPnMappings"]?.elements ?? []).enumerated() where mapping.kind == .object {
            try mapLidMapping(mapping, "data.lidPnMappings[\(index)]")
        }
        if let syncType = data["syncType"], !syncType.isNull {
            let name = syncType.string ?? BaileysContent.integer(syncType).map { String($0) } ?? ""
            guard Self.snapshotSyncTypes.contains(name) else {
                reasons.append("history_not_a_snapshot")
                return
            }
        }
        // The newest message of each chat in the chunk (message keys name their chat).
        var newest: [String: (time: Int64, message: SnapshotMessage)] = [:]
        for (index, message) in (data["messages"]?.elements ?? []).enumerated() where message.kind == .object {
            let path = "data.messages[\(index)]"
            guard let key = message["key"], key.kind == .object, let id = key["id"]?.string, !id.isEmpty,
                id.utf8.count <= Self.maxIdentifierBytes
            else { continue }
            let (chatId, _) = try keyChat(key, path + ".key")
            guard case .message(let kind, let preview, _) = BaileysContent.describe(message["message"]) else { continue }
            let time = BaileysContent.epochMillis(message["messageTimestamp"]) ?? 0
            if let current = newest[chatId], current.time > time { continue }
            let fromMe = key["fromMe"]?.bool ?? false
            newest[chatId] = (time, SnapshotMessage(
                id: id, fromMe: fromMe, kind: kind, preview: preview, timestamp: time,
                ack: fromMe ? BaileysContent.ackStatus(message["status"]) : nil))
        }
        let chats = data["chats"]?.elements ?? []
        guard !chats.isEmpty else {
            if events.isEmpty { reasons.append("history_without_chats") }
            return
        }
        for (index, chat) in chats.enumerated() {
            let path = "data.chats[\(index)]"
            guard chat.kind == .object else { throw .wrongType(path, expected: "an object", found: chat) }
            let rawId = try requiredAddress(chat["id"], path + ".id")
            let chatId = try resolveChatAliases(rawId, chat, path)
            let unread = BaileysContent.integer(chat["unreadCount"]) ?? 0
            let pinned = chat["pinned"].map { $0.bool ?? ((BaileysContent.integer($0) ?? 0) != 0) } ?? false
            let last = (newest[chatId] ?? newest[rawId])?.message
            var muteUntil: Int64 = 0
            if let mute = chat["muteEndTime"] { muteUntil = try Self.muteUntil(mute, path + ".muteEndTime") }
            let timestamp = BaileysContent.epochMillis(chat["conversationTimestamp"]) ?? last?.timestamp ?? envelopeTime
            // Baileys' own reading (src/Utils/history.ts): displayName || name || username; 1:1
            // conversations often have only a displayName.
            let name = [chat["displayName"], chat["name"], chat["username"]].lazy.compactMap { $0?.string }.first { !$0.isEmpty } ?? ""
            let snapshot = ChatSnapshot(
                name: BaileysContent.truncated(name), isGroup: WhatsAppID.domain(of: chatId) == .group,
                unreadCount: max(0, unread), markedUnread: chat["markedAsUnread"]?.bool ?? (unread == -1),
                archived: chat["archived"]?.bool ?? false, pinned: pinned,
                muteUntil: muteUntil,
                timestamp: timestamp, lastMessage: last)
            emit(chatId: chatId, at: envelopeTime, .chatSnapshot(snapshot))
        }
    }

    /// `{lid, pn}` (`lid-mapping.update`, `lidPnMappings`): the pair as `contact.aliased`.
    mutating func mapLidMapping(_ mapping: JSONValue, _ path: String) throws(AdaptError) {
        let lid = try requiredAddress(mapping["lid"], path + ".lid")
        let phone = try requiredAddress(mapping["pn"], path + ".pn")
        guard aliasPair(lid, phone) != nil else { throw .invalid(path, "not a LID and a phone id") }
    }
}
