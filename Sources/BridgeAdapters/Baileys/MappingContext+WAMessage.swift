import ChatEvents

/// Baileys' message and group shapes, shared by the Evolution and Baileys formats (Evolution
/// publishes Baileys' `WAMessage`s, keys and group updates nearly verbatim).
extension MappingContext {
    // MARK: - Messages

    /// A `WAMessage` (Evolution's `messages.upsert`, `send.message` and `messages.set`, each of
    /// Baileys' `messages.upsert`): a message, a reaction or something that is not a chat-list
    /// message. `reactions`: whether a reaction here is the reaction's one record (Evolution),
    /// or a copy of what `messages.reaction` says again (Baileys). `ownStatus`: whether an own
    /// message's `status` is stated as its `message.status` (Baileys sets `SERVER_ACK` on own
    /// messages, and a buffered batch merges later receipts into it). A group notice
    /// (`messageStubType` without content; Evolution drops them before publishing) is a
    /// `system` message.
    mutating func mapMessage(
        _ message: JSONValue, _ path: String, sentThroughAPI: Bool, reactions: Bool = true, ownStatus: Bool = false,
        reasons: inout [String]
    ) throws(AdaptError) {
        let key = try requiredObject(message["key"], path + ".key")
        let fromMeField = try optionalBool(key["fromMe"], path + ".key.fromMe")
        let fromMe = sentThroughAPI || fromMeField
        var chatId = try keyRemoteJid(key, path + ".key")
        let senderId = try keyParticipant(key, path + ".key")
        // Baileys files an incoming broadcast-list message under the sender's own chat; one the
        // account sent stays under the list (`getChatId`, src/Utils/process-message.ts): its
        // participant is the account itself, not a chat.
        if WhatsAppID.domain(of: chatId) == .broadcast, !fromMe, let sender = senderId { chatId = sender }
        let occurredAt = BaileysContent.epochMillis(message["messageTimestamp"]) ?? envelopeTime
        var content = BaileysContent.describe(message["message"], typeHint: message["messageType"]?.string)
        if message["message"]?.kind != .object, let stub = message["messageStubType"], !stub.isNull {
            content = BaileysContent.stub(stub, parameters: message["messageStubParameters"])
            // Baileys 7's members in a participant notice name both ids of a member: a pair.
            // Only there: a subject or description that looks the same is typed text.
            let participantNotice = if case .known(let name) = BaileysContent.stubName(stub) {
                BaileysContent.namesParticipants(name)
            } else {
                false
            }
            for parameter in participantNotice ? message["messageStubParameters"]?.elements ?? [] : [] {
                guard let text = parameter.string, let participant = BaileysContent.participantJSON(text),
                    let id = WhatsAppID.canonical(participant.id), let other = participant.other.flatMap(WhatsAppID.canonical)
                else { continue }
                _ = aliasPair(id, other)
            }
        }
        switch content {
        case .notAMessage:
            reasons.append("not_a_message")
        case .edit(let target, let preview):
            // In the chat of the record's own key (the protocol message's key is the sender's view).
            guard target.utf8.count <= Self.maxIdentifierBytes else {
                reasons.append("edit_of_unknown_message")  // no message has such an id: nothing to edit
                return
            }
            emit(chatId: chatId, at: occurredAt, .messageEdited(MessageEdited(messageId: target, preview: preview)), waitsFor: target)
        case .reaction where !reactions:
            reasons.append("reaction_also_in_messages_reaction")
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
            guard let status = BaileysContent.ackStatus(message["status"]) else { return }
            if fromMe {
                // The own message's ack as the upsert states it (pending is where it starts).
                if ownStatus, status != .pending {
                    emit(chatId: chatId, at: occurredAt, .messageStatus(MessageStatus(messageIds: [messageId], status: status)))
                }
            } else if status == .read || status == .played {
                // Evolution's own rule: an incoming message is unread while its status is
                // DELIVERY_ACK; one that arrives READ (history, another device) is read already.
                emit(
                    chatId: chatId, at: occurredAt,
                    .messageStatus(MessageStatus(messageIds: [messageId], status: status, selfDevice: true)))
            }
        }
    }

    // MARK: - Keys

    /// A key's `remoteJid`, in the phone form when the key names the other id of a LID–phone
    /// pair (recorded as `contact.aliased`): `remoteJidAlt` (Baileys 7), or on an incoming
    /// message `senderPn` / `senderLid` (Baileys 6.7.19–6.7.21, `decode-wa-message.ts`: the
    /// sender, who is a 1:1 chat's contact; on an own message the sender is the account).
    mutating func keyRemoteJid(_ key: JSONValue, _ path: String) throws(AdaptError) -> String {
        var chatId = try requiredAddress(key["remoteJid"], path + ".remoteJid")
        chatId = try resolveAlias(chatId, alt: key["remoteJidAlt"], path + ".remoteJidAlt")
        if key["fromMe"]?.bool != true {
            chatId = try resolveAlias(chatId, alt: key["senderPn"], path + ".senderPn")
            chatId = try resolveAlias(chatId, alt: key["senderLid"], path + ".senderLid")
        }
        return chatId
    }

    /// A key's `participant` (a group member, a broadcast's sender), in the phone form when
    /// `participantAlt` (Baileys 7) or `participantPn` / `participantLid` (6.7.19–6.7.21) name
    /// the other id of its pair; nil when the key has none.
    mutating func keyParticipant(_ key: JSONValue?, _ path: String) throws(AdaptError) -> String? {
        guard var participant = try optionalAddress(key?["participant"], path + ".participant") else { return nil }
        participant = try resolveAlias(participant, alt: key?["participantAlt"], path + ".participantAlt")
        participant = try resolveAlias(participant, alt: key?["participantPn"], path + ".participantPn")
        participant = try resolveAlias(participant, alt: key?["participantLid"], path + ".participantLid")
        return participant
    }

    /// The new text of an edit: `editedMessage.message`, or the protocol message inside it.
    static func editPreview(_ edited: JSONValue) -> String {
        let inner = edited["message"]
        let content = inner?["protocolMessage"]?["editedMessage"] ?? inner
        if case .message(_, let text, _) = BaileysContent.describe(content) { return text }
        return ""
    }

    /// A receipt for `messageId`: on an own message its status; on an incoming one, `read` or
    /// `played` means the account read it on another of its devices (Baileys' `read-self`),
    /// anything else (its delivery to us) changes nothing and is counted.
    mutating func emitReceipt(
        _ status: AckStatus, messageId: String, chatId: String, fromMe: Bool, isGuess: Bool = false, at time: Int64, reasons: inout [String]
    ) {
        if fromMe {
            emit(
                chatId: chatId, at: time, .messageStatus(MessageStatus(messageIds: [messageId], status: status)),
                waitsFor: messageId, chatIsGuess: isGuess)
        } else if status == .read || status == .played {
            emit(
                chatId: chatId, at: time, .messageStatus(MessageStatus(messageIds: [messageId], status: status, selfDevice: true)),
                waitsFor: messageId, chatIsGuess: isGuess)
        } else {
            reasons.append("receipt_without_effect")
        }
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
        // A chat named twice is deleted once (a record repeating one id must not fan out).
        var deleted = Set<String>()
        for (index, item) in items.enumerated() {
            let path = data.kind == .array ? "data[\(index)]" : "data"
            let value = item.kind == .object ? (item["remoteJid"] ?? item["id"]) : item
            let chatId = try requiredAddress(value, path)
            guard deleted.insert(chatId).inserted else { continue }
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
        if action == .remove, participants.count == 1, let author = Self.address(update["author"]),
            (phoneByLID[author] ?? author) == participants[0]
        {
            action = .leave  // removed by themselves: WhatsApp's "left"
        }
        let includesMe = participants.contains(where: isOwn)
        emit(chatId: chatId, at: envelopeTime, .groupParticipants(GroupParticipants(action: action, participants: participants, includesMe: includesMe)))
    }

    /// Participants as canonical ids (phone form where the record gives it), recording
    /// every LID–phone pair seen: strings (Baileys 6), objects `{id, phoneNumber}` or `{id, lid}`
    /// (Baileys 7) and Evolution's `participantsData: [{jid, phoneNumber}]`.
    @discardableResult
    mutating func mapGroupParticipantsAliases(
        _ participants: JSONValue?, participantsData: JSONValue?, _ path: String
    ) throws(AdaptError) -> (participants: [String], phoneByLID: [String: String]) {
        var phoneByLID: [String: String] = [:]
        for entry in participantsData?.elements ?? [] where entry.kind == .object {
            guard let jid = Self.address(entry["jid"]), let phone = Self.address(entry["phoneNumber"])
            else { continue }
            if let pair = aliasPair(jid, phone) { phoneByLID[pair.lid] = pair.phone }
        }
        var result: [String] = []
        for (index, entry) in (participants?.elements ?? []).enumerated() {
            let path = "\(path).participants[\(index)]"
            var id: String
            if entry.kind == .object {
                id = try requiredAddress(entry["id"], path + ".id")
                // `{id: <LID>, phoneNumber}` in LID-addressed groups, `{id: <phone>, lid}` in
                // phone-addressed ones (Baileys 7 groups.ts, messages-recv.ts).
                for other in [entry["phoneNumber"], entry["lid"]] {
                    if let other = Self.address(other), let pair = aliasPair(id, other) { phoneByLID[pair.lid] = pair.phone }
                }
            } else if let text = entry.string, let participant = BaileysContent.participantJSON(text) {
                // The participant as JSON text, as Baileys 7 keeps it in messageStubParameters.
                guard let canonical = WhatsAppID.canonical(participant.id) else { throw .invalid(path + ".id", "not a WhatsApp id") }
                id = canonical
                if let other = participant.other.flatMap(WhatsAppID.canonical), let pair = aliasPair(id, other) {
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
}
