import ChatEvents

/// One device's chat list and settings, and the fold that moves it forward.
package struct DeviceProjection: Sendable, Hashable {
    package let deviceId: String
    /// Increases by one with every event applied to this device, and jumps past the log
    /// offset of a chat or contact erasure of it (`version(afterErasureAt:from:)`), so it
    /// never repeats for different content: it is the device's `ETag`.
    package internal(set) var version: UInt64 = 0
    package internal(set) var chats = ChatTable()
    /// `account.settings`: incoming messages leave archived chats archived.
    package internal(set) var keepChatsArchived = false
    /// The Kafka partition the device's events arrive on (one per device: the key is the
    /// device); -1 before any event.
    package internal(set) var partition: Int32 = -1
    /// Other ids of contacts (a LID) → the id of the chat their events are folded into (the
    /// phone id), from `contact.aliased`.
    package internal(set) var aliases: [ChatKey: ChatKey] = [:]

    package init(deviceId: String) {
        self.deviceId = deviceId
    }

    /// Applies one event (already deduplicated); returns false if it does not concern
    /// the chat list (unknown type, a broadcast list or a channel, a `contact.aliased` that
    /// merges no chat), in which case nothing in the list changed (an alias is recorded).
    mutating func apply(_ event: Event) -> Bool {
        let chatKind = event.chatIdText.map(ChatIdKind.init)
        if chatKind == .notListed { return false }
        switch event.payload {
        case .unknown:
            return false
        case .accountSettings(let keep):
            keepChatsArchived = keep
        case .contactAliased(let aliased):
            // The alias is always recorded; the version moves only when a chat merges
            // (the list changes). Bridges repeat the fact with every message that shows it.
            guard let chatId = event.chatIdText, link(alias: ChatKey(aliased.alias), to: ChatKey(chatId)) else { return false }
        default:
            guard let chatId = event.chatIdText else { return false }
            applyToChat(resolve(ChatKey(chatId)), isGroup: chatKind == .group, event)
        }
        version += 1
        return true
    }

    /// The chat a chat id's events are folded into: itself, or the chat it is an alias of.
    func resolve(_ chatId: ChatKey) -> ChatKey {
        aliases.isEmpty ? chatId : aliases[chatId] ?? chatId
    }

    /// The chat with this id or with an id aliased to it (the API finds a contact's chat by
    /// either of its ids).
    package func chat(_ chatId: String) -> (id: String, chat: ChatState)? {
        let key = resolve(ChatKey(chatId))
        return chats[key].map { (key.description, $0) }
    }

    /// The other ids of the chat `chatId` names (the chat it is folded into and that
    /// chat's aliases), in byte order: their events are this chat's.
    package func otherIds(ofChat chatId: String) -> [String] {
        guard !aliases.isEmpty else { return [] }
        let canonical = resolve(ChatKey(chatId))
        var ids = aliases.compactMap { $0.value == canonical ? $0.key.description : nil }
        ids.append(canonical.description)
        return ids.filter { $0 != chatId }.sorted()
    }

    /// `contact.aliased`: from now on `alias`'s events fold into `canonical`'s chat; a chat
    /// already held under `alias` is merged into it (`ChatState.merge`).
    /// Returns whether a chat merged (the list changed).
    private mutating func link(alias: ChatKey, to canonical: ChatKey) -> Bool {
        let canonical = resolve(canonical)
        guard alias != canonical else { return false }
        aliases[alias] = canonical
        for (other, target) in aliases where target == alias { aliases[other] = canonical }  // alias was canonical for others
        guard let aliased = chats[alias] else { return false }
        chats.remove(alias)
        if chats[canonical] == nil {
            chats[canonical] = aliased
        } else {
            chats.modify(canonical, creating: false) { $0.merge(aliased) }
        }
        return true
    }

    private mutating func applyToChat(_ chatId: ChatKey, isGroup: Bool, _ event: Event) {
        let at = event.occurredAt
        switch event.payload {
        case .messageCreated(let message):
            let keep = keepChatsArchived
            chats.modify(chatId, creating: true) {
                $0.receive(message, at: at, keepChatsArchived: keep)
                if isGroup { $0.isGroup = true }
            }
        case .chatDeleted:
            chats.remove(chatId)
        case .messageEdited, .messageRevoked, .messageStatus, .messageReaction, .chatRead, .chatCleared:
            // These act on what the chat holds; for a chat never seen they change nothing.
            chats.modify(chatId, creating: false) { $0.update(with: event.payload, at: at) }
        default:
            chats.modify(chatId, creating: true) {
                $0.update(with: event.payload, at: at)
                if isGroup { $0.isGroup = true }  // whatever a snapshot or an update says
            }
        }
    }
}

/// What a chat id says about the chat: WhatsApp's servers decide it (`@g.us` is always a
/// group; broadcast lists, `status@broadcast` and `@newsletter` channels are not chats of
/// the list).
enum ChatIdKind: Equatable {
    case group, notListed, other

    init(_ chatId: InlineString) {
        self = chatId.withBytes { bytes in
            if Self.bytes(bytes, endWith: "@g.us") { return .group }
            if Self.bytes(bytes, endWith: "@broadcast") || Self.bytes(bytes, endWith: "@newsletter") { return .notListed }
            return .other
        }
    }

    private static func bytes(_ bytes: UnsafeBufferPointer<UInt8>, endWith suffix: StaticString) -> Bool {
        let count = suffix.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        let start = bytes.count - count
        for index in 0..<count where bytes[start + index] != suffix.utf8Start[index] { return false }
        return true
    }
}

extension ChatState {
    /// How much newer than an incoming message an own message must be to have read it when
    /// the incoming one arrives after it (ms).
    static let replyClockMargin: Int64 = 1_000

    /// `message.created`.
    mutating func receive(_ message: MessageCreated, at time: Int64, keepChatsArchived: Bool) {
        var kind: MessageHistory.Kind = message.fromMe ? .own : message.kind == .system ? .seen : .unread
        // An incoming message behind an own message more than a second newer than it (it
        // arrived late, or on another of the bridge's topics) came before the reply, which
        // read the chat up to there (SPEC §2: messages in `occurredAt` order): it is read,
        // and unarchives nothing. The second allows for clocks: a bridge stamps what it sends
        // with its host's clock, in whole seconds, and the server stamps what arrives.
        if kind == .unread, history.hasOwnMessage(after: time &+ Self.replyClockMargin) { kind = .seen }
        // The same message again (a bridge re-sending it under a new event id) is the
        // message the chat already has: it neither counts again nor moves anything.
        let idHash = message.messageIdText.withBytes(stableHash)
        guard history.insert(.init(idHash: idHash, kind: kind, timestamp: time)) else { return }
        // An older message arriving late (offline replay) does not become the last one.
        if lastMessage.map({ time >= $0.timestamp }) ?? true {
            lastMessage = LastMessage(
                packedId: MessageID(message.messageIdText), fromMe: message.fromMe, kind: message.kind, preview: message.preview,
                timestamp: time, ack: message.fromMe ? .pending : nil, revoked: false)
        }
        timestamp = max(timestamp, time)
        switch kind {
        case .own:
            // Sending shows the user saw the chat up to this message: it and everything
            // before it (by time, then arrival) are read. Delivered in order that is the
            // whole chat (`schemas/projection.md`: unreadCount = 0); an own message delivered late does not
            // read incoming messages newer than it, so the result does not depend on the
            // order two bridge topics deliver in.
            readThrough(idHash: idHash)
            markedUnread = false
        case .unread:
            unreadCount &+= 1
            if archived && !keepChatsArchived { archived = false }
        case .seen, .hidden:
            break  // a system message, or one a newer own message read, neither counts nor unarchives
        }
    }

    /// Every type but `message.created` and `chat.deleted`.
    mutating func update(with payload: EventPayload, at time: Int64) {
        switch payload {
        case .messageEdited(let edit):
            // A revoked message stays empty: an edit that arrives after the revoke (made
            // before it, delivered on another of the bridge's topics) brings no text back
            // (format 7).
            if let last = lastMessage, last.isMessage(edit.messageId), !last.revoked { lastMessage?.preview = edit.preview }
        case .messageRevoked(let revoke):
            if history.revoke(stableHash(revoke.messageId)) { unreadCount = max(0, unreadCount - 1) }
            if lastMessage?.isMessage(revoke.messageId) == true {
                lastMessage?.revoked = true
                lastMessage?.preview = ""
            }
        case .messageStatus(let status):
            if var last = lastMessage, last.fromMe, status.messageIds.contains(where: last.isMessage) {
                if status.status == .error || status.status.rank > (last.ack?.rank ?? -2) { last.ack = status.status }
                lastMessage = last
            }
            if status.selfDevice == true, status.status == .read || status.status == .played {
                // Receipts name incoming messages; an own message named here says nothing
                // about what was read.
                readThrough(status.messageIds) { $0 == .unread || $0 == .seen }
                markedUnread = false  // the user opened the chat on the phone
            }
        case .messageReaction:
            break  // no unread change, no reorder
        case .chatRead(let read):
            if let upTo = read.upToMessageId {
                // A message never seen reads nothing: where it stands is unknown
                // (`schemas/projection.md`).
                readThrough([upTo]) { $0 != .hidden }
            } else {
                _ = history.readAll()
                unreadCount = 0
            }
            markedUnread = false
        case .chatMarkedUnread:
            markedUnread = true
        case .chatArchived(let archived):
            self.archived = archived
            if archived {
                pinned = false  // WhatsApp unpins a chat it archives
                pinnedAt = nil
            }
        case .chatPinned(let pinned):
            self.pinned = pinned
            pinnedAt = pinned ? time : nil
        case .chatMuted(let muteUntil):
            self.muteUntil = muteUntil
        case .chatUpdated(let update):
            if let name = update.name { self.name = name }
            if let isGroup = update.isGroup { self.isGroup = isGroup }
            if let readOnly = update.readOnly { self.readOnly = readOnly }
        case .chatCleared:
            lastMessage = nil
            unreadCount = 0
            history = MessageHistory()
        case .chatSnapshot(let snapshot):
            name = snapshot.name.isEmpty ? nil : snapshot.name  // no name (`null` or "" in the event): none (format 6)
            isGroup = snapshot.isGroup
            markedUnread = snapshot.markedUnread
            archived = snapshot.archived
            pinned = snapshot.pinned
            pinnedAt = snapshot.pinned ? time : nil
            muteUntil = snapshot.muteUntil
            timestamp = snapshot.timestamp
            lastMessage = snapshot.lastMessage.map {
                LastMessage(
                    id: $0.id, fromMe: $0.fromMe, kind: $0.kind, preview: $0.revoked == true ? "" : $0.preview,
                    timestamp: $0.timestamp, ack: $0.ack, revoked: $0.revoked ?? false)
            }
            history = Self.history(of: snapshot)
            unreadCount = history.unreadMessages
        case .groupParticipants(let change):
            isGroup = true
            if change.includesMe {
                switch change.action {
                case .remove, .leave: readOnly = true
                case .add: readOnly = false
                case .promote, .demote: break
                }
            }
        case .messageCreated, .chatDeleted, .accountSettings, .unknown, .contactAliased, .ledgerErased:
            break  // handled by the device
        }
    }

    /// Takes in the chat the same contact had under another id (`contact.aliased`): the
    /// messages of both, each once (a message known under both ids counts once, and as
    /// read if either chat read it); the newer last message and activity; pinned, marked
    /// unread or read-only if either is; the longer mute; archived and name as the chat
    /// with the newer activity says (the name falls back to the other's).
    mutating func merge(_ other: ChatState) {
        let otherIsNewer = other.timestamp > timestamp
        history.merge(other.history)
        unreadCount = history.unreadMessages
        if let theirs = other.lastMessage, lastMessage.map({ theirs.timestamp > $0.timestamp }) ?? true { lastMessage = theirs }
        if otherIsNewer {
            archived = other.archived
            name = other.name ?? name
        } else if name == nil {
            name = other.name
        }
        timestamp = max(timestamp, other.timestamp)
        isGroup = isGroup || other.isGroup
        markedUnread = markedUnread || other.markedUnread
        readOnly = readOnly || other.readOnly
        if other.pinned, !pinned || (other.pinnedAt ?? .min) > (pinnedAt ?? .min) {
            pinned = true
            pinnedAt = other.pinnedAt
        }
        if muteUntil != -1 { muteUntil = other.muteUntil == -1 ? -1 : max(muteUntil, other.muteUntil) }
    }

    /// Reads the message just added with this id hash and everything before it.
    private mutating func readThrough(idHash: UInt64) {
        guard let read = history.readThrough([idHash], matching: { $0 == .own }) else { return }
        unreadCount = max(0, unreadCount - read)
    }

    /// Reads the newest remembered message named by `messageIds` (of a kind `accepts`)
    /// and everything before it; false if none is remembered.
    @discardableResult
    private mutating func readThrough(_ messageIds: [String], matching accepts: (MessageHistory.Kind) -> Bool) -> Bool {
        guard let read = history.readThrough(messageIds.map(stableHash), matching: accepts) else { return false }
        unreadCount = max(0, unreadCount - read)
        return true
    }

    /// A snapshot's messages: its last message, and before it the unread messages it
    /// counts without naming (the last message is one of them when it is an incoming,
    /// countable one).
    private static func history(of snapshot: ChatSnapshot) -> MessageHistory {
        var history = MessageHistory()
        var hidden = Int32(clamping: max(0, snapshot.unreadCount))
        guard let last = snapshot.lastMessage else {
            if hidden > 0 { _ = history.insert(.hidden(count: hidden, timestamp: snapshot.timestamp)) }
            return history
        }
        let kind: MessageHistory.Kind
        if last.fromMe {
            kind = .own
        } else if hidden > 0, last.kind != .system, last.revoked != true {
            kind = .unread
            hidden -= 1
        } else {
            kind = .seen
        }
        if hidden > 0 { _ = history.insert(.hidden(count: hidden, timestamp: last.timestamp)) }
        _ = history.insert(.init(idHash: stableHash(last.id), kind: kind, timestamp: last.timestamp))
        return history
    }
}
