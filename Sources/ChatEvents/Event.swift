/// One WhatsApp device event, schema v1, as a bridge publishes it to Kafka (`schemas/event.v1.schema.json`).
///
/// Values are exactly what the wire said; the parser has already checked types, limits
/// and the per-type rules, so a value of this type is always a valid event.
package struct Event: Sendable, Hashable {
    /// The only schema version this build understands.
    package static let supportedSchemaVersion = 1

    /// Unique per event; a repeated `eventId` is a redelivery and changes nothing.
    package var eventId: String {
        get { eventIdText.string }
        set { eventIdText = InlineString(newValue) }
    }
    /// The device whose chat list the event belongs to; also the Kafka key.
    package var deviceId: String
    /// WhatsApp's time of the event, milliseconds since the Unix epoch.
    package var occurredAt: Int64
    /// The chat; `nil` only for device-level events (`account.settings`, some unknown types).
    package var chatId: String? {
        get { chatIdText?.string }
        set { chatIdText = newValue.map(InlineString.init) }
    }
    /// The type-specific part.
    package var payload: EventPayload
    /// The bridge record the adapter stage made this event from (README, "Real bridges"), or the write-API
    /// request (README, "The write API"); nil for events a bridge published in the canonical form itself.
    package var source: EventSource? {
        get { sourceBox?.source }
        set { sourceBox = newValue.map(EventSource.Box.init) }
    }

    /// `eventId` as stored: inline, so parsing one allocates nothing for it.
    package var eventIdText: InlineString
    /// `chatId` as stored.
    package var chatIdText: InlineString?
    /// `source` as stored: one reference, so events without a source (every event on the
    /// replay path of a log fed by bridges directly) stay as small as before.
    package var sourceBox: EventSource.Box?

    /// Creates an event from its parts (used by the traffic model, the adapter stage and tests).
    package init(
        eventId: String, deviceId: String, occurredAt: Int64, chatId: String?, payload: EventPayload,
        source: EventSource? = nil
    ) {
        self.init(
            eventIdText: InlineString(eventId), deviceId: deviceId, occurredAt: occurredAt,
            chatIdText: chatId.map(InlineString.init), payload: payload, sourceBox: source.map(EventSource.Box.init))
    }

    package init(
        eventIdText: InlineString, deviceId: String, occurredAt: Int64, chatIdText: InlineString?, payload: EventPayload,
        sourceBox: EventSource.Box? = nil
    ) {
        self.eventIdText = eventIdText
        self.deviceId = deviceId
        self.occurredAt = occurredAt
        self.chatIdText = chatIdText
        self.payload = payload
        self.sourceBox = sourceBox
    }

    /// The wire name of the event's type, e.g. `message.created`.
    package var type: String { payload.typeName }
}

/// The type-specific part of an event: one case per `type` of `schemas/event.v1.schema.json`.
package enum EventPayload: Sendable, Hashable {
    case messageCreated(MessageCreated)
    case messageEdited(MessageEdited)
    case messageRevoked(MessageRevoked)
    case messageStatus(MessageStatus)
    case messageReaction(MessageReaction)
    case chatRead(ChatRead)
    case chatMarkedUnread
    case chatArchived(archived: Bool)
    case chatPinned(pinned: Bool)
    case chatMuted(muteUntil: Int64)
    case chatUpdated(ChatUpdated)
    case chatCleared
    case chatDeleted
    case chatSnapshot(ChatSnapshot)
    case groupParticipants(GroupParticipants)
    case accountSettings(keepChatsArchived: Bool)
    /// `contact.aliased`: the chat's id and `alias` name the same contact (a phone id and
    /// a LID); made by the adapter stage when a bridge record shows both.
    case contactAliased(ContactAliased)
    /// `ledger.erased`: an erasure request (device-level; names its device by digest).
    case ledgerErased(LedgerErasure)
    /// A `type` this build does not know, with a valid envelope: kept in the log, ignored
    /// by projections. Its `data` is not interpreted.
    case unknown(type: String)

    /// The wire name of the type.
    package var typeName: String {
        switch self {
        case .messageCreated: return EventType.messageCreated.rawValue
        case .messageEdited: return EventType.messageEdited.rawValue
        case .messageRevoked: return EventType.messageRevoked.rawValue
        case .messageStatus: return EventType.messageStatus.rawValue
        case .messageReaction: return EventType.messageReaction.rawValue
        case .chatRead: return EventType.chatRead.rawValue
        case .chatMarkedUnread: return EventType.chatMarkedUnread.rawValue
        case .chatArchived: return EventType.chatArchived.rawValue
        case .chatPinned: return EventType.chatPinned.rawValue
        case .chatMuted: return EventType.chatMuted.rawValue
        case .chatUpdated: return EventType.chatUpdated.rawValue
        case .chatCleared: return EventType.chatCleared.rawValue
        case .chatDeleted: return EventType.chatDeleted.rawValue
        case .chatSnapshot: return EventType.chatSnapshot.rawValue
        case .groupParticipants: return EventType.groupParticipants.rawValue
        case .accountSettings: return EventType.accountSettings.rawValue
        case .contactAliased: return EventType.contactAliased.rawValue
        case .ledgerErased: return EventType.ledgerErased.rawValue
        case .unknown(let type): return type
        }
    }
}

/// The event types schema v1 defines.
package enum EventType: String, Sendable, CaseIterable {
    case messageCreated = "message.created"
    case messageEdited = "message.edited"
    case messageRevoked = "message.revoked"
    case messageStatus = "message.status"
    case messageReaction = "message.reaction"
    case chatRead = "chat.read"
    case chatMarkedUnread = "chat.markedUnread"
    case chatArchived = "chat.archived"
    case chatPinned = "chat.pinned"
    case chatMuted = "chat.muted"
    case chatUpdated = "chat.updated"
    case chatCleared = "chat.cleared"
    case chatDeleted = "chat.deleted"
    case chatSnapshot = "chat.snapshot"
    case groupParticipants = "group.participants"
    case accountSettings = "account.settings"
    case contactAliased = "contact.aliased"
    case ledgerErased = "ledger.erased"

    /// Device-level types carry no `chatId`.
    package var isDeviceLevel: Bool { self == .accountSettings || self == .ledgerErased }
}

// MARK: - Payloads

/// `message.created`: a message sent or received on the device.
package struct MessageCreated: Sendable, Hashable {
    package var messageId: String {
        get { messageIdText.string }
        set { messageIdText = InlineString(newValue) }
    }
    /// `true` for messages the account sent itself (from any of its devices).
    package var fromMe: Bool
    package var kind: MessageKind
    /// What the chat list shows for the message (may be empty for media).
    package var preview: String
    package var senderId: String? {
        get { senderIdText?.string }
        set { senderIdText = newValue.map(InlineString.init) }
    }
    package var hasMedia: Bool?

    /// `messageId` as stored: inline, so parsing one allocates nothing for it.
    package var messageIdText: InlineString
    /// `senderId` as stored.
    package var senderIdText: InlineString?

    package init(
        messageId: String, fromMe: Bool, kind: MessageKind, preview: String,
        senderId: String? = nil, hasMedia: Bool? = nil
    ) {
        self.init(
            messageIdText: InlineString(messageId), fromMe: fromMe, kind: kind, preview: preview,
            senderIdText: senderId.map(InlineString.init), hasMedia: hasMedia)
    }

    package init(
        messageIdText: InlineString, fromMe: Bool, kind: MessageKind, preview: String,
        senderIdText: InlineString? = nil, hasMedia: Bool? = nil
    ) {
        self.messageIdText = messageIdText
        self.fromMe = fromMe
        self.kind = kind
        self.preview = preview
        self.senderIdText = senderIdText
        self.hasMedia = hasMedia
    }
}

/// `message.edited`: the text of an earlier message changed.
package struct MessageEdited: Sendable, Hashable {
    package var messageId: String
    package var preview: String

    package init(messageId: String, preview: String) {
        self.messageId = messageId
        self.preview = preview
    }
}

/// `message.revoked`: a message was deleted for everyone or for this account only.
package struct MessageRevoked: Sendable, Hashable {
    package var messageId: String
    package var scope: RevokeScope

    package init(messageId: String, scope: RevokeScope) {
        self.messageId = messageId
        self.scope = scope
    }
}

/// `message.status`: receipts for one or more messages.
package struct MessageStatus: Sendable, Hashable {
    /// At least one id.
    package var messageIds: [String]
    package var status: AckStatus
    /// `true` when the account's own other device (the phone) reported the status.
    package var selfDevice: Bool?

    package init(messageIds: [String], status: AckStatus, selfDevice: Bool? = nil) {
        self.messageIds = messageIds
        self.status = status
        self.selfDevice = selfDevice
    }
}

/// `message.reaction`: an emoji reaction added (or removed, with `emoji == ""`).
package struct MessageReaction: Sendable, Hashable {
    package var targetMessageId: String
    package var senderId: String
    package var emoji: String

    package init(targetMessageId: String, senderId: String, emoji: String) {
        self.targetMessageId = targetMessageId
        self.senderId = senderId
        self.emoji = emoji
    }
}

/// `chat.read`: the chat was read, entirely or up to one message.
package struct ChatRead: Sendable, Hashable {
    package var upToMessageId: String?

    package init(upToMessageId: String? = nil) {
        self.upToMessageId = upToMessageId
    }
}

/// `chat.updated`: metadata changes; absent fields are unchanged.
package struct ChatUpdated: Sendable, Hashable {
    package var name: String?
    package var isGroup: Bool?
    package var readOnly: Bool?

    package init(name: String? = nil, isGroup: Bool? = nil, readOnly: Bool? = nil) {
        self.name = name
        self.isGroup = isGroup
        self.readOnly = readOnly
    }
}

/// `chat.snapshot`: the chat's absolute state from a history sync.
package struct ChatSnapshot: Sendable, Hashable {
    package var name: String
    package var isGroup: Bool
    package var unreadCount: Int64
    package var markedUnread: Bool
    package var archived: Bool
    package var pinned: Bool
    /// `0` unmuted, `-1` forever, else epoch ms.
    package var muteUntil: Int64
    /// Epoch ms of the chat's last activity.
    package var timestamp: Int64
    package var lastMessage: SnapshotMessage?

    package init(
        name: String, isGroup: Bool, unreadCount: Int64, markedUnread: Bool, archived: Bool,
        pinned: Bool, muteUntil: Int64, timestamp: Int64, lastMessage: SnapshotMessage?
    ) {
        self.name = name
        self.isGroup = isGroup
        self.unreadCount = unreadCount
        self.markedUnread = markedUnread
        self.archived = archived
        self.pinned = pinned
        self.muteUntil = muteUntil
        self.timestamp = timestamp
        self.lastMessage = lastMessage
    }
}

/// The last message inside a `chat.snapshot`.
package struct SnapshotMessage: Sendable, Hashable {
    package var id: String
    package var fromMe: Bool
    package var kind: MessageKind
    package var preview: String
    package var timestamp: Int64
    package var ack: AckStatus?
    package var revoked: Bool?

    package init(
        id: String, fromMe: Bool, kind: MessageKind, preview: String, timestamp: Int64,
        ack: AckStatus? = nil, revoked: Bool? = nil
    ) {
        self.id = id
        self.fromMe = fromMe
        self.kind = kind
        self.preview = preview
        self.timestamp = timestamp
        self.ack = ack
        self.revoked = revoked
    }
}

/// `group.participants`: membership changes in a group.
package struct GroupParticipants: Sendable, Hashable {
    package var action: ParticipantAction
    /// At least one participant id.
    package var participants: [String]
    /// `true` when the account itself is among `participants`.
    package var includesMe: Bool

    package init(action: ParticipantAction, participants: [String], includesMe: Bool) {
        self.action = action
        self.participants = participants
        self.includesMe = includesMe
    }
}

/// `contact.aliased`: the event's `chatId` (the phone form, `<digits>@c.us`) and `alias`
/// (usually the contact's LID, `<digits>@lid`) are the same contact, so their chats are one.
package struct ContactAliased: Sendable, Hashable {
    /// The other id of the contact whose canonical id is the event's `chatId`.
    package var alias: String

    package init(alias: String) {
        self.alias = alias
    }
}

// MARK: - Source

/// Where an event ChatLedger made itself came from: a bridge record the adapter stage read
/// (README, "Real bridges"), or a request to the write API (README, "The write API"). An auditor goes from any such event
/// in the log to its origin; events a bridge published in the canonical form have none.
package enum EventSource: Sendable, Hashable {
    /// A bridge record: the bridge format (e.g. `evolution`) and the Kafka record it was read from.
    case bridgeRecord(format: String, topic: String, partition: Int32, offset: Int64)
    /// A write-API request, made with the API key whose id is `keyId` (the key's name in
    /// the keys file, never the key).
    case api(keyId: String)

    /// `source.format` of write-API events; no bridge format may be called this.
    package static let apiFormat = "api"

    /// A bridge record (the adapter stage's form).
    package init(format: String, topic: String, partition: Int32, offset: Int64) {
        self = .bridgeRecord(format: format, topic: topic, partition: partition, offset: offset)
    }

    /// `source.format`: the bridge format, or `api`.
    package var format: String {
        switch self {
        case .bridgeRecord(let format, _, _, _): return format
        case .api: return Self.apiFormat
        }
    }

    /// The stored form of `Event.source`: a reference, compared and hashed by value.
    package final class Box: Sendable, Hashable {
        package let source: EventSource

        package init(_ source: EventSource) { self.source = source }

        package static func == (lhs: Box, rhs: Box) -> Bool { lhs === rhs || lhs.source == rhs.source }

        package func hash(into hasher: inout Hasher) { hasher.combine(source) }
    }
}

// MARK: - Enumerations

/// What a message is; `system` messages never count as unread.
package enum MessageKind: String, Sendable, Hashable, CaseIterable {
    case text, image, video, audio, document, sticker, location, contact, call, system
}

/// Delivery state of a message, in WhatsApp's order.
package enum AckStatus: String, Sendable, Hashable, CaseIterable {
    case error, pending, server, delivered, read, played
}

/// Whom a revoke applies to.
package enum RevokeScope: String, Sendable, Hashable, CaseIterable {
    case everyone, me
}

/// A group membership change.
package enum ParticipantAction: String, Sendable, Hashable, CaseIterable {
    case add, remove, leave, promote, demote
}
