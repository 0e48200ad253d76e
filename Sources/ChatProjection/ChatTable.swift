import ChatEvents

/// A device's chats by id, addressed with `String` ids.
///
/// The chats live in one contiguous array, each key next to its state, and an
/// open-addressing index of 32-bit positions finds them: an empty index slot costs 4 bytes
/// instead of a whole chat's state (which halved memory per chat at a million chats), and
/// a lookup hashes the packed key with one multiplication (a `Dictionary` ran SipHash per
/// event, and reached the state through two more arrays, each a cache miss in a replay).
/// Order inside is arbitrary; equality ignores it.
package struct ChatTable: Hashable, Sendable, Sequence {
    private struct Entry: Hashable, Sendable {
        var key: ChatKey
        var state: ChatState
    }

    private var entries: [Entry] = []
    /// Linear probing over `entries`: a slot holds an entry's position + 1, or 0 when
    /// empty. Its size is a power of two, at least twice the number of chats (or 0).
    private var index: [Int32] = []

    package init() {}

    /// Bytes one chat takes inline (key and state, and two index slots), before growth slack.
    package static var entryStride: Int {
        MemoryLayout<Entry>.stride + 2 * MemoryLayout<Int32>.stride
    }

    package subscript(chatId: String) -> ChatState? {
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

    package var count: Int { entries.count }
    package var isEmpty: Bool { entries.isEmpty }
    /// The chats' states, in no particular order (a view: nothing is copied).
    package var values: some Sequence<ChatState> { entries.lazy.map(\.state) }

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
    package func makeIterator() -> AnyIterator<(id: String, chat: ChatState)> {
        var iterator = entries.makeIterator()
        return AnyIterator { iterator.next().map { (id: $0.key.description, chat: $0.state) } }
    }

    package static func == (lhs: ChatTable, rhs: ChatTable) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.entries.allSatisfy { entry in rhs.position(of: entry.key).map { rhs.entries[$0].state == entry.state } ?? false }
    }

    package func hash(into hasher: inout Hasher) {
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
