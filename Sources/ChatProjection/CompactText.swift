import ChatEvents

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
    private let storage: Storage

    public init(_ text: String) {
        storage = Self.pack(text) ?? .text(text)
    }

    /// From an event's chat id as parsed: packed from its bytes, no `String` made.
    init(_ text: InlineString) {
        storage = text.withBytes(Self.pack) ?? .text(text.string)
    }

    private static func pack(_ text: String) -> Storage? {
        text.utf8.withContiguousStorageIfAvailable(pack) ?? Array(text.utf8).withUnsafeBufferPointer(pack)
    }

    /// One pass over the bytes with no collection algorithms: this runs for every event
    /// in a replay, and the generic version cost 270 instructions per chat id.
    private static func pack(_ utf8: UnsafeBufferPointer<UInt8>) -> Storage? {
        guard let base = utf8.baseAddress else { return nil }
        var number: UInt64 = 0
        var at = 0
        while at < utf8.count {
            let digit = base[at] &- UInt8(ascii: "0")
            guard digit <= 9 else { break }
            guard at < 19 else { return nil }  // 19 digits always fit in 64 bits
            number = number &* 10 &+ UInt64(digit)
            at += 1
        }
        guard at > 0, at < utf8.count, base[at] == UInt8(ascii: "@"),
            let domain = domain(UnsafeBufferPointer(start: base + at + 1, count: utf8.count - at - 1))
        else { return nil }
        return .address(number: number, digits: UInt8(at), domain: domain)
    }

    /// The index in `domains` of the text after the `@`.
    private static func domain(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt8? {
        func spells(_ name: StaticString) -> Bool {
            guard name.utf8CodeUnitCount == bytes.count else { return false }
            let spelling = name.utf8Start
            for index in 0..<bytes.count where bytes[index] != spelling[index] { return false }
            return true
        }
        if spells("c.us") { return 0 }
        if spells("g.us") { return 1 }
        if spells("s.whatsapp.net") { return 2 }
        if spells("lid") { return 3 }
        return nil
    }

    /// A hash for `ChatTable`'s index: the packed address itself, or the text's
    /// `stableHash` (not persisted; a multiplication spreads it).
    var tableHash: UInt64 {
        switch storage {
        case .address(let number, let digits, let domain): return number ^ UInt64(digits) << 56 ^ UInt64(domain) << 48
        case .text(let text): return stableHash(text)
        }
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

    /// From a message id as parsed: packed from its bytes, no `String` made.
    init(_ text: InlineString) {
        storage = text.withBytes(Self.pack) ?? .text(text.string)
    }

    private static func pack(_ text: String) -> Storage? {
        text.utf8.withContiguousStorageIfAvailable(pack) ?? Array(text.utf8).withUnsafeBufferPointer(pack)
    }

    private static func pack(_ utf8: UnsafeBufferPointer<UInt8>) -> Storage? {
        guard (1...32).contains(utf8.count) else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for byte in utf8 {
            let digit: UInt8
            if byte &- UInt8(ascii: "0") <= 9 {
                digit = byte &- UInt8(ascii: "0")
            } else if byte &- UInt8(ascii: "A") <= 5 {
                digit = byte &- UInt8(ascii: "A") &+ 10
            } else {
                return nil
            }
            high = high << 4 | low >> 60
            low = low << 4 | UInt64(digit)
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

/// A device's chats by id, addressed with `String` ids.
///
/// The chats live in one contiguous array, each key next to its state, and an
/// open-addressing index of 32-bit positions finds them: an empty index slot costs 4 bytes
/// instead of a whole chat's state (which halved memory per chat at a million chats), and
/// a lookup hashes the packed key with one multiplication (a `Dictionary` ran SipHash per
/// event, and reached the state through two more arrays, each a cache miss in a replay).
/// Order inside is arbitrary; equality ignores it.
public struct ChatTable: Hashable, Sendable, Sequence {
    private struct Entry: Hashable, Sendable {
        var key: ChatKey
        var state: ChatState
    }

    private var entries: [Entry] = []
    /// Linear probing over `entries`: a slot holds an entry's position + 1, or 0 when
    /// empty. Its size is a power of two, at least twice the number of chats (or 0).
    private var index: [Int32] = []

    public init() {}

    /// Bytes one chat takes inline (key and state, and two index slots), before growth slack.
    public static var entryStride: Int {
        MemoryLayout<Entry>.stride + 2 * MemoryLayout<Int32>.stride
    }

    public subscript(chatId: String) -> ChatState? {
        get { self[ChatKey(chatId)] }
        set { self[ChatKey(chatId)] = newValue }
    }

    /// A chat by its packed id.
    subscript(key: ChatKey) -> ChatState? {
        get { position(of: key).map { entries[$0].state } }
        set {
            if let newValue {
                if let position = position(of: key) {
                    entries[position].state = newValue
                } else {
                    append(key, newValue)
                }
            } else {
                remove(key)
            }
        }
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    /// The chats' states, in no particular order (a view: nothing is copied).
    public var values: some Sequence<ChatState> { entries.lazy.map(\.state) }

    mutating func reserveCapacity(_ count: Int) {
        entries.reserveCapacity(count)
        if index.count < 2 * count { rebuildIndex(minimumSlots: 2 * count) }
    }

    /// Applies `body` to the chat in place (no copy of the state), creating it if asked.
    @discardableResult
    mutating func modify<Result>(_ key: ChatKey, creating: Bool, _ body: (inout ChatState) -> Result) -> Result? {
        if let position = position(of: key) { return body(&entries[position].state) }
        guard creating else { return nil }
        append(key, ChatState())
        return body(&entries[entries.count - 1].state)
    }

    /// (id, chat) pairs, in no particular order.
    public func makeIterator() -> AnyIterator<(id: String, chat: ChatState)> {
        var iterator = entries.makeIterator()
        return AnyIterator { iterator.next().map { (id: $0.key.description, chat: $0.state) } }
    }

    public static func == (lhs: ChatTable, rhs: ChatTable) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.entries.allSatisfy { entry in rhs.position(of: entry.key).map { rhs.entries[$0].state == entry.state } ?? false }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)  // order-independent; equal tables have equal counts
    }

    // MARK: - The index

    /// Fibonacci hashing of the key's hash: the product's high bits pick the slot.
    private func home(_ key: ChatKey) -> Int { Self.home(key, mask: index.count - 1) }

    private static func home(_ key: ChatKey, mask: Int) -> Int {
        Int(truncatingIfNeeded: (key.tableHash &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The index slot holding `key`, or the empty one where it would go (the index must
    /// not be empty), and the key's position in `entries` if it is there.
    private func slot(of key: ChatKey) -> (slot: Int, position: Int?) {
        let mask = index.count - 1
        var slot = home(key)
        while true {
            let stored = Int(index[slot])
            if stored == 0 { return (slot, nil) }
            if entries[stored - 1].key == key { return (slot, stored - 1) }
            slot = (slot + 1) & mask
        }
    }

    private func position(of key: ChatKey) -> Int? {
        index.isEmpty ? nil : slot(of: key).position
    }

    private mutating func append(_ key: ChatKey, _ state: ChatState) {
        if (entries.count + 1) * 2 > index.count { rebuildIndex(minimumSlots: Swift.max(8, index.count * 2)) }
        index[slot(of: key).slot] = Int32(entries.count + 1)
        entries.append(Entry(key: key, state: state))
    }

    /// Removes `key`'s chat: its slot is emptied by backward shift (later entries of its
    /// probe run move up, so lookups never stop early), and the last chat takes its place
    /// in `entries`.
    mutating func remove(_ key: ChatKey) {
        guard !index.isEmpty, case (let removedSlot, let position?) = slot(of: key) else { return }
        // The closure reads `entries` only and must not capture `self`, which would share
        // `index` and copy it.
        let mask = index.count - 1
        do {
            let entries = self.entries
            emptyByBackwardShift(&index, at: removedSlot, mask: mask) { Self.home(entries[Int($0) - 1].key, mask: mask) }
        }
        let last = entries.count - 1
        if position != last {
            entries[position] = entries[last]
            // The moved chat's slot still names the last position.
            if case let (movedSlot, _?) = slot(of: entries[last].key) { index[movedSlot] = Int32(position + 1) }
        }
        entries.removeLast()
    }

    private mutating func rebuildIndex(minimumSlots: Int) {
        var size = 8
        while size < minimumSlots { size <<= 1 }
        index = Array(repeating: 0, count: size)
        for position in entries.indices { index[slot(of: entries[position].key).slot] = Int32(position + 1) }
    }
}

extension InlineString {
    /// Calls `body` with the text's UTF-8 bytes, valid only inside it. Defined here, in
    /// the module that calls it per event, so it is specialised for each use.
    @inline(__always)
    func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        guard var inline = inlineUTF8 else {
            let text = string
            return text.utf8.withContiguousStorageIfAvailable(body) ?? Array(text.utf8).withUnsafeBufferPointer(body)
        }
        return withUnsafeBytes(of: &inline.words) { raw in
            raw.withMemoryRebound(to: UInt8.self) { body(UnsafeBufferPointer(rebasing: $0[..<inline.count])) }
        }
    }
}
