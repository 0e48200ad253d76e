import ChatEvents

/// One chat of a device's chat list, as the fold keeps it.
package struct ChatState: Sendable, Hashable {
    package var name: String?
    package var isGroup = false
    /// Incoming, non-system messages not read yet.
    package var unreadCount: Int32 = 0
    package var markedUnread = false
    /// Epoch ms of the chat's last activity (its place in the list).
    package var timestamp: Int64 = 0
    package var archived = false
    package var pinned = false
    /// Epoch ms of the pin (`occurredAt` of `chat.pinned`), when pinned.
    package var pinnedAt: Int64?
    /// `0` unmuted, `-1` forever, else epoch ms; `isMuted` is decided at read time.
    package var muteUntil: Int64 = 0
    package var readOnly = false
    package var lastMessage: LastMessage?
    /// Every unread message and the most recent read ones, in order: what `upToMessageId`,
    /// revokes and reads on the phone act on. `unreadCount` is always what it counts.
    var history = MessageHistory()

    package init() {}

    /// Whether the chat is muted at `now` (epoch ms).
    package func isMuted(at now: Int64) -> Bool {
        muteUntil == -1 || muteUntil > now
    }
}

/// The last message of a chat.
package struct LastMessage: Sendable, Hashable {
    private var packedId: MessageID
    package var id: String { packedId.description }
    package var fromMe: Bool
    package var kind: MessageKind
    package var preview: String
    package var timestamp: Int64
    /// Delivery state of an own message; nil for incoming ones.
    package var ack: AckStatus?
    package var revoked: Bool

    package init(id: String, fromMe: Bool, kind: MessageKind, preview: String, timestamp: Int64, ack: AckStatus?, revoked: Bool) {
        self.init(packedId: MessageID(id), fromMe: fromMe, kind: kind, preview: preview, timestamp: timestamp, ack: ack, revoked: revoked)
    }

    init(packedId: MessageID, fromMe: Bool, kind: MessageKind, preview: String, timestamp: Int64, ack: AckStatus?, revoked: Bool) {
        self.packedId = packedId
        self.fromMe = fromMe
        self.kind = kind
        self.preview = preview
        self.timestamp = timestamp
        self.ack = ack
        self.revoked = revoked
    }

    /// Whether this is the message with id `messageId` (compared without unpacking).
    func isMessage(_ messageId: String) -> Bool { packedId == messageId }
}

/// FNV-1a, 64 bits: a stable hash (the same in every process, unlike `Hasher`) for
/// message and event ids, so replays and checkpoints agree.
package func stableHash(_ text: String) -> UInt64 {
    // Native strings hand out their bytes directly; bridged ones go byte by byte.
    text.utf8.withContiguousStorageIfAvailable(stableHash) ?? stableHash(text.utf8)
}

/// `stableHash` of text given as its UTF-8 bytes.
func stableHash<Bytes: Sequence<UInt8>>(_ utf8: Bytes) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}

extension AckStatus {
    /// WhatsApp's order of delivery states; an ack only moves forward (or to `error`).
    var rank: Int {
        switch self {
        case .error: return -1
        case .pending: return 0
        case .server: return 1
        case .delivered: return 2
        case .read: return 3
        case .played: return 4
        }
    }
}
