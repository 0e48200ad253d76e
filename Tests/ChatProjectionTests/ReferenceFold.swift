import ChatEvents
import ChatProjection

/// A deliberately simple, exact fold of `schemas/projection.md`, written
/// independently of `ChatProjection` to check it: it keeps every message of every chat
/// and every event id, with no bounds, no packing and no incremental counts. Slow, and
/// only for tests.
struct ReferenceFold {
    struct Message {
        var id: String
        var time: Int64
        /// Arrival order; a snapshot's unnamed unread messages sit half a step before its
        /// last message.
        var arrival: Double
        var fromMe: Bool
        var kind: MessageKind
        var unread: Bool
        var revoked = false

        func isBefore(orAt other: (time: Int64, arrival: Double)) -> Bool {
            time < other.time || (time == other.time && arrival <= other.arrival)
        }
    }

    struct Chat {
        var name: String?
        var isGroup = false
        var markedUnread = false
        var timestamp: Int64 = 0
        var archived = false
        var pinned = false
        var pinnedAt: Int64?
        var muteUntil: Int64 = 0
        var readOnly = false
        var lastMessage: LastMessage?
        var messages: [Message] = []
        /// The id and time of every message in `messages`, to recognise one sent again.
        var sent: Set<String> = []
        /// Unread messages a snapshot counted without naming, and where they stand (a chat
        /// merged from two has two such groups).
        var hidden: [(count: Int, time: Int64, arrival: Double)] = []

        var unreadCount: Int { hidden.reduce(0) { $0 + $1.count } + messages.count(where: \.unread) }

        /// Reads every message up to and including `key`'s place.
        mutating func read(through key: (time: Int64, arrival: Double)) {
            for index in messages.indices where messages[index].isBefore(orAt: key) { messages[index].unread = false }
            hidden.removeAll { $0.time < key.time || ($0.time == key.time && $0.arrival <= key.arrival) }
        }

        mutating func readAll() {
            for index in messages.indices { messages[index].unread = false }
            hidden = []
        }

        /// The newest message (in order) with this id that `accepts` takes.
        func newest(_ ids: [String], _ accepts: (Message) -> Bool = { _ in true }) -> Message? {
            messages.filter { ids.contains($0.id) && accepts($0) }.max { $0.time < $1.time || ($0.time == $1.time && $0.arrival < $1.arrival) }
        }
    }

    var chats: [String: Chat] = [:]
    /// A contact's other id → the chat its events go to.
    var aliases: [String: String] = [:]
    var keepChatsArchived = false
    var version: UInt64 = 0
    private var eventIds: Set<String> = []
    private var arrival = 0.0

    mutating func apply(_ event: Event) {
        guard eventIds.insert(event.eventId).inserted else { return }
        let rawChatId = event.chatId ?? ""
        if rawChatId.hasSuffix("@broadcast") || rawChatId.hasSuffix("@newsletter") { return }
        let chatId = aliases[rawChatId] ?? rawChatId
        arrival += 1
        let at = event.occurredAt
        switch event.payload {
        case .unknown:
            return
        case .accountSettings(let keep):
            keepChatsArchived = keep
        case .contactAliased(let aliased):
            guard link(aliased.alias, to: chatId) else { return }  // no merge: the version stays
        case .chatDeleted:
            chats[chatId] = nil
        case .messageCreated(let message):
            var chat = chats[chatId] ?? Chat()
            receive(message, at: at, into: &chat)
            chats[chatId] = chat
        case .messageEdited, .messageRevoked, .messageStatus, .messageReaction, .chatRead, .chatCleared:
            if var chat = chats[chatId] {
                update(&chat, event.payload, at: at)
                chats[chatId] = chat
            }
        default:
            var chat = chats[chatId] ?? Chat()
            update(&chat, event.payload, at: at)
            chats[chatId] = chat
        }
        if chatId.hasSuffix("@g.us"), chats[chatId] != nil { chats[chatId]?.isGroup = true }
        version += 1
    }

    /// The chat under `alias` joins `canonical`'s, and so do its future events.
    private mutating func link(_ alias: String, to canonical: String) -> Bool {
        guard alias != canonical else { return false }
        aliases[alias] = canonical
        for (other, target) in aliases where target == alias { aliases[other] = canonical }
        guard let theirs = chats.removeValue(forKey: alias) else { return false }
        guard var mine = chats[canonical] else {
            chats[canonical] = theirs
            return true
        }
        // Their messages join after mine at equal times, in their own order.
        var rank = 0.0
        func place(_ arrival: Double) -> Double {
            rank += 1
            return self.arrival - 0.5 + rank * 1e-6
        }
        let theirsInOrder = theirs.messages.sorted { $0.time < $1.time || ($0.time == $1.time && $0.arrival < $1.arrival) }
        for var message in theirsInOrder {
            if let index = mine.messages.firstIndex(where: { $0.id == message.id && $0.time == message.time }) {
                if !message.unread, !message.fromMe { mine.messages[index].unread = false }
                continue
            }
            message.arrival = place(message.arrival)
            mine.messages.append(message)
        }
        for block in theirs.hidden { mine.hidden.append((block.count, block.time, place(block.arrival))) }
        mine.sent.formUnion(theirs.sent)
        let theirsIsNewer = theirs.timestamp > mine.timestamp
        if let last = theirs.lastMessage, mine.lastMessage.map({ last.timestamp > $0.timestamp }) ?? true { mine.lastMessage = last }
        if theirsIsNewer {
            mine.archived = theirs.archived
            mine.name = theirs.name ?? mine.name
        } else if mine.name == nil {
            mine.name = theirs.name
        }
        mine.timestamp = max(mine.timestamp, theirs.timestamp)
        mine.isGroup = mine.isGroup || theirs.isGroup
        mine.markedUnread = mine.markedUnread || theirs.markedUnread
        mine.readOnly = mine.readOnly || theirs.readOnly
        if theirs.pinned, !mine.pinned || (theirs.pinnedAt ?? .min) > (mine.pinnedAt ?? .min) {
            mine.pinned = true
            mine.pinnedAt = theirs.pinnedAt
        }
        if mine.muteUntil != -1 { mine.muteUntil = theirs.muteUntil == -1 ? -1 : max(mine.muteUntil, theirs.muteUntil) }
        chats[canonical] = mine
        return true
    }

    /// The chat a chat id's events go to.
    func resolve(_ chatId: String) -> String { aliases[chatId] ?? chatId }

    private func receive(_ message: MessageCreated, at time: Int64, into chat: inout Chat) {
        guard chat.sent.insert("\(message.messageId)@\(time)").inserted else { return }
        // An incoming message more than a second older than an own message the chat has is read: the reply read up to there.
        let countable = !message.fromMe && message.kind != .system && !chat.messages.contains { $0.fromMe && $0.time > time + 1_000 }
        chat.messages.append(
            Message(id: message.messageId, time: time, arrival: arrival, fromMe: message.fromMe, kind: message.kind, unread: countable))
        if chat.lastMessage == nil || time >= chat.lastMessage!.timestamp {
            chat.lastMessage = LastMessage(
                id: message.messageId, fromMe: message.fromMe, kind: message.kind, preview: message.preview, timestamp: time,
                ack: message.fromMe ? .pending : nil, revoked: false)
        }
        chat.timestamp = max(chat.timestamp, time)
        if message.fromMe {
            chat.read(through: (time, arrival))
            chat.markedUnread = false
        } else if countable, chat.archived, !keepChatsArchived {
            chat.archived = false
        }
    }

    private func update(_ chat: inout Chat, _ payload: EventPayload, at time: Int64) {
        switch payload {
        case .messageEdited(let edit):
            if chat.lastMessage?.id == edit.messageId, chat.lastMessage?.revoked != true { chat.lastMessage?.preview = edit.preview }
        case .messageRevoked(let revoke):
            if let target = chat.newest([revoke.messageId]),
                let index = chat.messages.firstIndex(where: { $0.id == target.id && $0.arrival == target.arrival })
            {
                chat.messages[index].unread = false
                chat.messages[index].revoked = true
            }
            if chat.lastMessage?.id == revoke.messageId {
                chat.lastMessage?.revoked = true
                chat.lastMessage?.preview = ""
            }
        case .messageStatus(let status):
            if let last = chat.lastMessage, last.fromMe, status.messageIds.contains(last.id) {
                let rank: (AckStatus?) -> Int = { ack in
                    guard let ack else { return -2 }
                    return [AckStatus.error, .pending, .server, .delivered, .read, .played].firstIndex(of: ack)! - 1
                }
                if status.status == .error || rank(status.status) > rank(last.ack) { chat.lastMessage?.ack = status.status }
            }
            if status.selfDevice == true, status.status == .read || status.status == .played {
                if let target = chat.newest(status.messageIds, { !$0.fromMe }) { chat.read(through: (target.time, target.arrival)) }
                chat.markedUnread = false
            }
        case .messageReaction:
            break
        case .chatRead(let read):
            if let upTo = read.upToMessageId {
                if let target = chat.newest([upTo]) { chat.read(through: (target.time, target.arrival)) }
            } else {
                chat.readAll()
            }
            chat.markedUnread = false
        case .chatMarkedUnread:
            chat.markedUnread = true
        case .chatArchived(let archived):
            chat.archived = archived
            if archived {
                chat.pinned = false
                chat.pinnedAt = nil
            }
        case .chatPinned(let pinned):
            chat.pinned = pinned
            chat.pinnedAt = pinned ? time : nil
        case .chatMuted(let muteUntil):
            chat.muteUntil = muteUntil
        case .chatUpdated(let update):
            if let name = update.name { chat.name = name }
            if let isGroup = update.isGroup { chat.isGroup = isGroup }
            if let readOnly = update.readOnly { chat.readOnly = readOnly }
        case .chatCleared:
            chat.lastMessage = nil
            chat.messages = []
            chat.sent = []
            chat.hidden = []
        case .chatSnapshot(let snapshot):
            chat.name = snapshot.name.isEmpty ? nil : snapshot.name
            chat.isGroup = snapshot.isGroup
            chat.markedUnread = snapshot.markedUnread
            chat.archived = snapshot.archived
            chat.pinned = snapshot.pinned
            chat.pinnedAt = snapshot.pinned ? time : nil
            chat.muteUntil = snapshot.muteUntil
            chat.timestamp = snapshot.timestamp
            chat.messages = []
            chat.sent = []
            var hidden = Int(max(0, snapshot.unreadCount))
            chat.lastMessage = nil
            if let last = snapshot.lastMessage {
                let unread = !last.fromMe && last.kind != .system && last.revoked != true && hidden > 0
                if unread { hidden -= 1 }
                chat.sent = ["\(last.id)@\(last.timestamp)"]
                chat.messages = [
                    Message(
                        id: last.id, time: last.timestamp, arrival: arrival, fromMe: last.fromMe, kind: last.kind, unread: unread,
                        revoked: last.revoked == true)
                ]
                chat.lastMessage = LastMessage(
                    id: last.id, fromMe: last.fromMe, kind: last.kind, preview: last.revoked == true ? "" : last.preview,
                    timestamp: last.timestamp, ack: last.ack, revoked: last.revoked ?? false)
            }
            chat.hidden = hidden > 0 ? [(hidden, snapshot.lastMessage?.timestamp ?? snapshot.timestamp, arrival - 0.5)] : []
        case .groupParticipants(let change):
            chat.isGroup = true
            if change.includesMe {
                switch change.action {
                case .remove, .leave: chat.readOnly = true
                case .add: chat.readOnly = false
                case .promote, .demote: break
                }
            }
        case .messageCreated, .chatDeleted, .accountSettings, .unknown, .contactAliased, .ledgerErased:
            break
        }
    }

    /// The differences between this fold's chat and the projection's, by field name.
    static func differences(_ expected: Chat, _ actual: ChatState) -> [String] {
        var found: [String] = []
        func check<Value: Equatable>(_ name: String, _ lhs: Value, _ rhs: Value) {
            if lhs != rhs { found.append("\(name): expected \(lhs), got \(rhs)") }
        }
        check("name", expected.name, actual.name)
        check("isGroup", expected.isGroup, actual.isGroup)
        check("unreadCount", Int32(expected.unreadCount), actual.unreadCount)
        check("markedUnread", expected.markedUnread, actual.markedUnread)
        check("timestamp", expected.timestamp, actual.timestamp)
        check("archived", expected.archived, actual.archived)
        check("pinned", expected.pinned, actual.pinned)
        check("pinnedAt", expected.pinnedAt, actual.pinnedAt)
        check("muteUntil", expected.muteUntil, actual.muteUntil)
        check("readOnly", expected.readOnly, actual.readOnly)
        check("lastMessage", expected.lastMessage, actual.lastMessage)
        return found
    }
}
