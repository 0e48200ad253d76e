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

    static func key(deviceId: String, messageId: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in deviceId.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        hash ^= 0xFF
        hash &*= 0x0000_0100_0000_01B3
        for byte in messageId.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
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
