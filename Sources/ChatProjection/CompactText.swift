/// A chat id kept without a heap allocation when it is a plain WhatsApp address
/// (`<digits>@c.us`, `<digits>@g.us`, `<digits>@s.whatsapp.net`, `<digits>@lid`), else as
/// text. At a million chats the id's own allocation was the largest single cost.
public struct ChatKey: Hashable, Sendable, CustomStringConvertible {
    private enum Storage: Hashable, Sendable {
        /// The digits as a number, their count (for leading zeros) and the domain.
        case address(number: UInt64, digits: UInt8, domain: UInt8)
        case text(String)
    }

    private static let domains = ["c.us", "g.us", "s.whatsapp.net", "lid"]
    private static let domainBytes = domains.map { Array($0.utf8) }
    private let storage: Storage

    public init(_ text: String) {
        storage = Self.pack(text) ?? .text(text)
    }

    private static func pack(_ text: String) -> Storage? {
        text.utf8.withContiguousStorageIfAvailable(pack) ?? pack(Array(text.utf8))
    }

    private static func pack<Bytes: RandomAccessCollection<UInt8>>(_ utf8: Bytes) -> Storage? where Bytes.Index == Int {
        guard let at = utf8.firstIndex(of: UInt8(ascii: "@")) else { return nil }
        let digitCount = at - utf8.startIndex
        guard (1...19).contains(digitCount), let domain = domain(utf8[(at + 1)...]) else { return nil }
        var number: UInt64 = 0
        for byte in utf8[..<at] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            number = number * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        return .address(number: number, digits: UInt8(digitCount), domain: UInt8(domain))
    }

    /// The index in `domains` of the text after the `@`.
    private static func domain<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? {
        for (index, domain) in domainBytes.enumerated() where domain.count == bytes.count && domain.elementsEqual(bytes) {
            return index
        }
        return nil
    }

    public var description: String {
        switch storage {
        case .text(let text):
            return text
        case .address(let number, let digits, let domain):
            let value = String(number)
            return String(repeating: "0", count: Int(digits) - value.count) + value + "@" + Self.domains[Int(domain)]
        }
    }
}

/// A message id kept without a heap allocation when it is upper-case hex of at most 32
/// digits (WhatsApp's usual `3EB0…` ids), else as text.
struct MessageID: Hashable, Sendable, CustomStringConvertible {
    private enum Storage: Hashable, Sendable {
        case hex(high: UInt64, low: UInt64, digits: UInt8)
        case text(String)
    }

    private let storage: Storage

    init(_ text: String) {
        storage = Self.pack(text) ?? .text(text)
    }

    private static func pack(_ text: String) -> Storage? {
        text.utf8.withContiguousStorageIfAvailable(pack) ?? pack(Array(text.utf8))
    }

    private static func pack<Bytes: Collection<UInt8>>(_ utf8: Bytes) -> Storage? {
        guard (1...32).contains(utf8.count) else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for byte in utf8 {
            let digit: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt64(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            high = high << 4 | low >> 60
            low = low << 4 | digit
        }
        return .hex(high: high, low: low, digits: UInt8(utf8.count))
    }

    var description: String {
        switch storage {
        case .text(let text):
            return text
        case .hex(let high, let low, let digits):
            let alphabet = Array("0123456789ABCDEF".utf8)
            var bytes = [UInt8](repeating: 0, count: Int(digits))
            var (h, l) = (high, low)
            for index in stride(from: Int(digits) - 1, through: 0, by: -1) {
                bytes[index] = alphabet[Int(l & 15)]
                l = l >> 4 | (h & 15) << 60
                h >>= 4
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    static func == (lhs: MessageID, rhs: String) -> Bool { lhs == MessageID(rhs) }
}

/// The tracked unread messages of a chat, oldest first: no allocation for none or one.
struct UnreadList: Hashable, Sendable, Sequence {
    private enum Storage: Hashable, Sendable {
        case none
        case one(UnreadMessage)
        case many([UnreadMessage])
    }

    private var storage = Storage.none

    init() {}

    init(_ entries: [UnreadMessage]) {
        storage = Self.normalized(entries)
    }

    var count: Int {
        switch storage {
        case .none: return 0
        case .one: return 1
        case .many(let entries): return entries.count
        }
    }

    var entries: [UnreadMessage] {
        switch storage {
        case .none: return []
        case .one(let entry): return [entry]
        case .many(let entries): return entries
        }
    }

    func makeIterator() -> IndexingIterator<[UnreadMessage]> { entries.makeIterator() }

    /// Edits the entries as an array; the storage is compacted again afterwards.
    mutating func modify<Result>(_ body: (inout [UnreadMessage]) -> Result) -> Result {
        var array = entries
        storage = .none  // let a `.many` array be uniquely referenced while edited
        let result = body(&array)
        storage = Self.normalized(array)
        return result
    }

    private static func normalized(_ entries: [UnreadMessage]) -> Storage {
        switch entries.count {
        case 0: return .none
        case 1: return .one(entries[0])
        default: return .many(entries)
        }
    }
}

/// A device's chats by id, addressed with `String` ids. The states live in a contiguous
/// array and a small dictionary maps each `ChatKey` to its slot: a hash table's empty
/// buckets then cost 28 bytes each instead of a whole chat's state (which halved memory
/// per chat at a million chats). Order inside is arbitrary; equality ignores it.
public struct ChatTable: Hashable, Sendable, Sequence {
    private var keys: [ChatKey] = []
    private var states: [ChatState] = []
    private var slots: [ChatKey: Int32] = [:]

    public init() {}

    /// Bytes one chat takes inline (key, state, index entry), before growth slack.
    public static var entryStride: Int {
        2 * MemoryLayout<ChatKey>.stride + MemoryLayout<ChatState>.stride + MemoryLayout<Int32>.stride
    }

    public subscript(chatId: String) -> ChatState? {
        get { slots[ChatKey(chatId)].map { states[Int($0)] } }
        set {
            let key = ChatKey(chatId)
            if let newValue {
                if let slot = slots[key] {
                    states[Int(slot)] = newValue
                } else {
                    append(key, newValue)
                }
            } else if let slot = slots.removeValue(forKey: key) {
                // Swap-remove: the last chat takes the freed slot.
                let last = keys.count - 1
                if Int(slot) != last {
                    keys[Int(slot)] = keys[last]
                    states[Int(slot)] = states[last]
                    slots[keys[Int(slot)]] = slot
                }
                keys.removeLast()
                states.removeLast()
            }
        }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }
    public var values: [ChatState] { states }

    mutating func reserveCapacity(_ count: Int) {
        keys.reserveCapacity(count)
        states.reserveCapacity(count)
        slots.reserveCapacity(count)
    }

    private mutating func append(_ key: ChatKey, _ state: ChatState) {
        slots[key] = Int32(keys.count)
        keys.append(key)
        states.append(state)
    }

    /// Applies `body` to the chat in place (no copy of the state), creating it if asked.
    @discardableResult
    mutating func modify<Result>(_ chatId: String, creating: Bool, _ body: (inout ChatState) -> Result) -> Result? {
        let key = ChatKey(chatId)
        let slot: Int
        if let existing = slots[key] {
            slot = Int(existing)
        } else {
            guard creating else { return nil }
            append(key, ChatState())
            slot = keys.count - 1
        }
        return body(&states[slot])
    }

    /// (id, chat) pairs, in no particular order.
    public func makeIterator() -> AnyIterator<(id: String, chat: ChatState)> {
        var index = 0
        return AnyIterator {
            guard index < keys.count else { return nil }
            defer { index += 1 }
            return (id: keys[index].description, chat: states[index])
        }
    }

    public static func == (lhs: ChatTable, rhs: ChatTable) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (index, key) in lhs.keys.enumerated() {
            guard let slot = rhs.slots[key], rhs.states[Int(slot)] == lhs.states[index] else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)  // order-independent; equal tables have equal counts
    }
}
