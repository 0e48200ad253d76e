import ChatEvents
import EventLog

/// Which chats a list shows (SPEC's `filter`): `all` every chat, archived ones included;
/// `unread`, `archived` and `groups` the chats that are so, archived or not for the first and
/// the last. `inbox` (an extension) is WhatsApp's main list: the chats outside the archive.
package enum ChatListFilter: String, Sendable, CaseIterable {
    case all, unread, archived, groups, inbox

    func includes(_ chat: ChatState) -> Bool {
        switch self {
        case .all: return true
        case .unread: return chat.unreadCount > 0 || chat.markedUnread
        case .archived: return chat.archived
        case .groups: return chat.isGroup
        case .inbox: return !chat.archived
        }
    }
}

/// A page request for a chat list.
package struct ChatListQuery: Sendable, Hashable {
    package static let defaultLimit = 50
    package static let maxLimit = 500

    package var filter: ChatListFilter
    package var limit: Int
    /// The `nextCursor` of the previous page, nil for the first.
    package var cursor: String?

    package init(filter: ChatListFilter = .all, limit: Int = ChatListQuery.defaultLimit, cursor: String? = nil) {
        self.filter = filter
        self.limit = min(max(1, limit), Self.maxLimit)
        self.cursor = cursor
    }

    /// The cache key of this view.
    var viewKey: String { "list:\(filter.rawValue):\(limit):\(cursor ?? "")" }
}

/// Rendered JSON and how long it stays right.
package struct RenderedView: Sendable, Hashable {
    package var bytes: [UInt8]
    /// The device version it shows.
    package var version: UInt64
    /// Epoch ms when a mute in it expires (`isMuted` changes): the rendering is stale from then.
    package var validUntil: Int64?
    /// The log position the view reflects (set by `ProjectionStore` when it answers).
    package var position: LogPosition?
    /// Mutes in it that had expired when it was rendered: with the version, what tells its
    /// renderings apart (a mute running out changes `isMuted` without a new version).
    package var expiredMutes: Int

    package init(bytes: [UInt8], version: UInt64, validUntil: Int64?, expiredMutes: Int = 0) {
        self.bytes = bytes
        self.version = version
        self.validUntil = validUntil
        self.expiredMutes = expiredMutes
    }

    /// The view's entity tag: the device version, followed by `.N` once N of the mutes it
    /// shows have run out (its body changed without a new version; a client's `If-None-Match`
    /// with the tag from before must not get 304).
    package var entityTag: String { expiredMutes == 0 ? "\"\(version)\"" : "\"\(version).\(expiredMutes)\"" }
}

/// Renders chat objects exactly as the API serves them (`schemas/openapi.yaml`).
package enum ChatListRenderer {
    /// Thrown for a cursor this renderer did not produce.
    package struct InvalidCursor: Error, Sendable {}

    /// The sort position of a chat: pinned first (newest pin first), then by `timestamp`
    /// descending, then by id so the order is total.
    struct SortKey: Comparable {
        var pinned: Bool
        var time: Int64
        var chatId: String

        init(_ chatId: String, _ chat: ChatState) {
            pinned = chat.pinned
            time = chat.pinned ? (chat.pinnedAt ?? 0) : chat.timestamp
            self.chatId = chatId
        }

        init?(cursor: String) {
            let parts = cursor.split(separator: "_", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "p" || parts[0] == "t", let time = Int64(parts[1]),
                let id = Self.unhex(parts[2])
            else { return nil }
            pinned = parts[0] == "p"
            self.time = time
            chatId = id
        }

        var cursor: String { (pinned ? "p" : "t") + "_\(time)_" + chatId.utf8.map { String(format2: $0) }.joined() }

        static func < (lhs: SortKey, rhs: SortKey) -> Bool {
            if lhs.pinned != rhs.pinned { return lhs.pinned }
            if lhs.time != rhs.time { return lhs.time > rhs.time }
            return lhs.chatId.utf8.lexicographicallyPrecedes(rhs.chatId.utf8)
        }

        private static func unhex(_ text: Substring) -> String? {
            let digits = Array(text.utf8)
            guard digits.count % 2 == 0, digits.count <= 1024 else { return nil }
            var bytes: [UInt8] = []
            for index in stride(from: 0, to: digits.count, by: 2) {
                guard let byte = UInt8(String(decoding: digits[index..<(index + 2)], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(byte)
            }
            return String(validating: bytes, as: UTF8.self)
        }
    }

    /// One page of a device's chat list:
    /// `{"deviceId":…,"version":…,"chats":[…],"nextCursor":…|null}`.
    /// - Throws: `InvalidCursor` for a cursor that is not one of ours.
    package static func chatList(_ device: DeviceProjection?, deviceId: String, query: ChatListQuery, now: Int64) throws(InvalidCursor) -> RenderedView {
        var after: SortKey?
        if let cursor = query.cursor {
            guard let key = SortKey(cursor: cursor) else { throw InvalidCursor() }
            after = key
        }
        var selected: [(SortKey, ChatState)] = []
        for (chatId, chat) in device?.chats ?? ChatTable() where query.filter.includes(chat) {
            let key = SortKey(chatId, chat)
            if let after, !(after < key) { continue }
            selected.append((key, chat))
        }
        selected.sort { $0.0 < $1.0 }
        let page = selected.prefix(query.limit)
        var writer = JSONWriter()
        writer.bytes.reserveCapacity(256 + 320 * page.count)
        writer.beginObject()
        writer.field("deviceId", deviceId)
        writer.field("version", Int64(device?.version ?? 0))
        writer.key("chats")
        writer.beginArray()
        var validUntil: Int64?
        var expiredMutes = 0
        for (key, chat) in page {
            writeChat(key.chatId, chat, now: now, &writer)
            if chat.muteUntil > now { validUntil = min(validUntil ?? .max, chat.muteUntil) }
            if chat.muteUntil > 0, chat.muteUntil <= now { expiredMutes += 1 }
        }
        writer.endArray()
        writer.key("nextCursor")
        if selected.count > page.count, let last = page.last {
            writer.string(last.0.cursor)
        } else {
            writer.null()
        }
        writer.endObject()
        return RenderedView(bytes: writer.bytes, version: device?.version ?? 0, validUntil: validUntil, expiredMutes: expiredMutes)
    }

    /// One chat object, or nil if the device has no such chat.
    package static func chat(_ device: DeviceProjection?, chatId: String, now: Int64) -> RenderedView? {
        guard let device, let (id, chat) = device.chat(chatId) else { return nil }
        var writer = JSONWriter()
        writeChat(id, chat, now: now, &writer)
        return RenderedView(
            bytes: writer.bytes, version: device.version, validUntil: chat.muteUntil > now ? chat.muteUntil : nil,
            expiredMutes: chat.muteUntil > 0 && chat.muteUntil <= now ? 1 : 0)
    }

    /// `{"unreadChats":n,"unreadMessages":n}` over the chats outside the archive.
    package static func unread(_ device: DeviceProjection?) -> RenderedView {
        let totals = UnreadTotals(device)
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("unreadChats", Int64(totals.chats))
        writer.field("unreadMessages", totals.messages)
        writer.endObject()
        return RenderedView(bytes: writer.bytes, version: device?.version ?? 0, validUntil: nil)
    }

    static func writeChat(_ chatId: String, _ chat: ChatState, now: Int64, _ writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", chatId)
        writer.key("name")
        if let name = chat.name { writer.string(name) } else { writer.null() }
        writer.field("isGroup", chat.isGroup)
        writer.field("unreadCount", Int64(chat.unreadCount))
        writer.field("markedUnread", chat.markedUnread)
        writer.field("timestamp", chat.timestamp)
        writer.field("archived", chat.archived)
        writer.field("pinned", chat.pinned)
        writer.key("pinnedAt")
        if let pinnedAt = chat.pinnedAt { writer.integer(pinnedAt) } else { writer.null() }
        let muted = chat.isMuted(at: now)
        writer.field("isMuted", muted)
        writer.key("muteExpiration")
        if muted { writer.integer(chat.muteUntil) } else { writer.null() }
        writer.field("readOnly", chat.readOnly)
        writer.key("lastMessage")
        if let message = chat.lastMessage {
            writer.beginObject()
            writer.field("id", message.id)
            writer.field("fromMe", message.fromMe)
            writer.field("kind", message.kind.rawValue)
            writer.field("preview", message.preview)
            writer.field("timestamp", message.timestamp)
            writer.key("ack")
            if let ack = message.ack { writer.string(ack.rawValue) } else { writer.null() }
            writer.field("revoked", message.revoked)
            writer.endObject()
        } else {
            writer.null()
        }
        writer.endObject()
    }
}

extension String {
    /// Two lower-case hex digits of a byte.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
