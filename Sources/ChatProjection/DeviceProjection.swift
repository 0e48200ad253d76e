import ChatEvents

/// One device's chat list and settings, and the fold that moves it forward.
public struct DeviceProjection: Sendable, Hashable {
    public let deviceId: String
    /// Increases by one with every event applied to this device.
    public internal(set) var version: UInt64 = 0
    public internal(set) var chats = ChatTable()
    /// `account.settings`: incoming messages leave archived chats archived.
    public internal(set) var keepChatsArchived = false
    /// The Kafka partition the device's events arrive on (one per device: the key is the
    /// device); -1 before any event.
    public internal(set) var partition: Int32 = -1

    public init(deviceId: String) {
        self.deviceId = deviceId
    }

    /// Chats whose id is this are kept in the log and left out of the chat list.
    public static let statusBroadcast = "status@broadcast"
    private static let statusBroadcastText = InlineString(statusBroadcast)

    /// Applies one event (already deduplicated); returns false if it does not concern
    /// the chat list (unknown type, `status@broadcast`), in which case nothing changed.
    mutating func apply(_ event: Event) -> Bool {
        if event.chatIdText == Self.statusBroadcastText { return false }
        switch event.payload {
        case .unknown, .contactAliased:
            // contact.aliased: ignored until the fold merges a LID chat into its phone chat.
            return false
        case .accountSettings(let keep):
            keepChatsArchived = keep
        default:
            guard let chatId = event.chatIdText else { return false }
            applyToChat(ChatKey(chatId), event)
        }
        version += 1
        return true
    }

    private mutating func applyToChat(_ chatId: ChatKey, _ event: Event) {
        let at = event.occurredAt
        switch event.payload {
        case .messageCreated(let message):
            let keep = keepChatsArchived
            chats.modify(chatId, creating: true) { $0.receive(message, at: at, keepChatsArchived: keep) }
        case .chatDeleted:
            chats.remove(chatId)
        case .messageEdited, .messageRevoked, .messageStatus, .messageReaction, .chatRead, .chatCleared:
            // These act on what the chat holds; for a chat never seen they change nothing.
            chats.modify(chatId, creating: false) { $0.update(with: event.payload, at: at) }
        default:
            chats.modify(chatId, creating: true) { $0.update(with: event.payload, at: at) }
        }
    }
}

extension ChatState {
    /// `message.created`.
    mutating func receive(_ message: MessageCreated, at time: Int64, keepChatsArchived: Bool) {
        // An older message arriving late (offline replay) does not become the last one.
        if lastMessage.map({ time >= $0.timestamp }) ?? true {
            lastMessage = LastMessage(
                packedId: MessageID(message.messageIdText), fromMe: message.fromMe, kind: message.kind, preview: message.preview,
                timestamp: time, ack: message.fromMe ? .pending : nil, revoked: false)
        }
        timestamp = max(timestamp, time)
        if message.fromMe {
            // Sending shows the user saw the chat: everything up to now is read.
            readThrough(time: time)
            markedUnread = false
            return
        }
        if message.kind != .system {
            unreadCount += 1
            let entry = UnreadMessage(idHash: message.messageIdText.withBytes(stableHash), timestamp: time)
            unread.modify { unread in
                let index = unread.lastIndex { $0.timestamp <= time }.map { $0 + 1 } ?? 0
                unread.insert(entry, at: index)
                if unread.count > UnreadWindow.capacity { unread.removeFirst() }  // still counted
            }
            if archived && !keepChatsArchived { archived = false }
        }
    }

    /// Every type but `message.created` and `chat.deleted`.
    mutating func update(with payload: EventPayload, at time: Int64) {
        switch payload {
        case .messageEdited(let edit):
            if lastMessage?.isMessage(edit.messageId) == true { lastMessage?.preview = edit.preview }
        case .messageRevoked(let revoke):
            let hash = stableHash(revoke.messageId)
            let removed = unread.modify { unread -> Bool in
                guard let index = unread.firstIndex(where: { $0.idHash == hash }) else { return false }
                unread.remove(at: index)
                return true
            }
            if removed { unreadCount = max(0, unreadCount - 1) }
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
                readThrough(messageIds: status.messageIds)
                markedUnread = false  // the user opened the chat on the phone
            }
        case .messageReaction:
            break  // no unread change, no reorder
        case .chatRead(let read):
            if let upTo = read.upToMessageId {
                readThrough(messageIds: [upTo], unknownReadsOverflow: true)
            } else {
                unreadCount = 0
                unread = UnreadList()
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
            unread = UnreadList()
        case .chatSnapshot(let snapshot):
            name = snapshot.name
            isGroup = snapshot.isGroup
            unreadCount = Int32(clamping: snapshot.unreadCount)
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
            unread = UnreadList()  // which messages are unread is not known; they are counted only
        case .groupParticipants(let change):
            isGroup = true
            if change.includesMe {
                switch change.action {
                case .remove, .leave: readOnly = true
                case .add: readOnly = false
                case .promote, .demote: break
                }
            }
        case .messageCreated, .chatDeleted, .accountSettings, .unknown, .contactAliased:
            break  // handled by the device
        }
    }

    /// Reads every unread message up to `time`.
    private mutating func readThrough(time: Int64) {
        unread.modify { $0.removeAll { $0.timestamp <= time } }
        unreadCount = Int32(unread.count)
    }

    /// Reads the tracked unread messages named by `messageIds` and everything before them.
    /// When none is tracked: the last message named reads the whole chat; otherwise, with
    /// `unknownReadsOverflow`, the id is taken to be older than every tracked message, so
    /// only the counted-but-untracked ones are read.
    private mutating func readThrough(messageIds: [String], unknownReadsOverflow: Bool = false) {
        let hashes = Set(messageIds.map(stableHash))
        let found = unread.modify { unread -> Bool in
            guard let newest = unread.lastIndex(where: { hashes.contains($0.idHash) }) else { return false }
            unread.removeFirst(newest + 1)
            return true
        }
        if found {
            unreadCount = Int32(unread.count)
        } else if let last = lastMessage, !last.fromMe, messageIds.contains(where: last.isMessage) {
            unread = UnreadList()
            unreadCount = 0
        } else if unknownReadsOverflow {
            unreadCount = Int32(unread.count)
        }
    }
}
