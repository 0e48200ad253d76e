/// The chat each recently created message is in, per device: how the stage places a
/// receipt, delete or edit whose record names the chat by a LID (Evolution passes
/// Baileys' raw key there, while its `messages.upsert` carries the phone id) or by the
/// account's own id (the sender's view of `messages.edited`), and how it knows that the
/// message a receipt acts on has been emitted.
///
/// Bounded: the oldest entries go first once `capacity` messages are known. It lives in
/// memory only; after a restart a receipt for a message created before it waits its
/// bounded time and then goes out under the record's own chat id (see `AdapterStage`).
struct MessageDirectory {
    private var chats: [UInt64: String] = [:]
    private var order: [UInt64] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        chats.reserveCapacity(min(capacity, 1 << 16))
    }

    var count: Int { chats.count }

    /// The key of message `messageId` on `deviceId` (FNV-1a over both).
    static func key(deviceId: String, messageId: String) -> UInt64 {
        var hash = fnv(deviceId, into: fnvBasis)
        hash = fnv(CollectionOfOne(0xFF), into: hash)
        return fnv(messageId, into: hash)
    }

    /// The key of the fact "on `deviceId`, `chatId` and `alias` are one contact".
    static func aliasKey(deviceId: String, chatId: String, alias: String) -> UInt64 {
        key(deviceId: deviceId, messageId: chatId + " " + alias)
    }

    private static let fnvBasis: UInt64 = 0xCBF2_9CE4_8422_2325

    /// `text`'s UTF-8 bytes hashed from its contiguous storage (native strings have it),
    /// without stepping an iterator through them.
    private static func fnv(_ text: String, into start: UInt64) -> UInt64 {
        text.utf8.withContiguousStorageIfAvailable { fnv($0, into: start) } ?? fnv(text.utf8, into: start)
    }

    private static func fnv(_ bytes: some Sequence<UInt8>, into start: UInt64) -> UInt64 {
        var hash = start
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The key `event` is filed under: the message it creates or acts on, or for an alias
    /// the (chat, alias) pair; 0 for any other event.
    static func key(for event: AdaptedEvent) -> UInt64 {
        let deviceId = event.event.deviceId
        switch event.event.payload {
        case .messageCreated(let message): return key(deviceId: deviceId, messageId: message.messageId)
        case .contactAliased(let alias): return aliasKey(deviceId: deviceId, chatId: event.event.chatId ?? "", alias: alias.alias)
        default: return event.waitsFor.map { key(deviceId: deviceId, messageId: $0) } ?? 0
        }
    }

    mutating func record(_ key: UInt64, chatId: String) {
        if chats.updateValue(chatId, forKey: key) != nil { return }
        if order.count < capacity {
            order.append(key)
        } else {
            chats[order[next]] = nil
            order[next] = key
            next = (next + 1) % capacity
        }
    }

    func chat(_ key: UInt64) -> String? { chats[key] }
}
