import CLedgerIntrinsics

/// A set of 64-bit hashes for `EventIdWindow`: open addressing with linear probing and
/// backward-shift deletion, over values that are already hashes, so no `Hasher` runs per
/// lookup (with `Set<UInt64>`, SipHash was the window's main cost). The table doubles
/// when half full and never shrinks; 0 is kept apart because it marks an empty slot.
///
/// The slots are `ChunkedWords`: after a copy (a checkpoint's snapshot) an insert or a
/// removal copies only the chunks it writes, not the whole table.
struct HashSet64: Sendable {
    private var slots: ChunkedWords
    private var mask: Int
    private(set) var count = 0
    private var containsZero = false

    init(minimumSlots: Int = 1_024) {
        var size = 16
        while size < minimumSlots { size <<= 1 }
        slots = ChunkedWords(repeating: 0, count: size)
        mask = size - 1
    }

    /// The home slot: Fibonacci hashing, so FNV's weak low bits still spread.
    private func home(_ value: UInt64) -> Int { Self.home(value, mask: mask) }

    private static func home(_ value: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: (value &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// Asks the CPU to fetch `value`'s home slot ahead of a `contains`, `insert` or
    /// `remove` of it: the table is megabytes, so each of those is otherwise a cache miss.
    @inline(__always)
    func prefetch(_ value: UInt64) {
        slots.prefetch(home(value))
    }

    func contains(_ value: UInt64) -> Bool {
        if value == 0 { return containsZero }
        var index = home(value)
        while true {
            let slot = slots[index]
            if slot == value { return true }
            if slot == 0 { return false }
            index = (index + 1) & mask
        }
    }

    /// Adds `value`; false if it was there already.
    @discardableResult
    mutating func insert(_ value: UInt64) -> Bool {
        if value == 0 {
            defer { containsZero = true }
            return !containsZero
        }
        if (count + 1) * 2 > slots.count { grow() }
        var index = home(value)
        while true {
            let slot = slots[index]
            if slot == value { return false }
            if slot == 0 {
                slots[index] = value
                count += 1
                return true
            }
            index = (index + 1) & mask
        }
    }

    mutating func remove(_ value: UInt64) {
        if value == 0 {
            containsZero = false
            return
        }
        var index = home(value)
        while slots[index] != value {
            if slots[index] == 0 { return }
            index = (index + 1) & mask
        }
        // Backward shift (see `emptyByBackwardShift`), here over chunked slots.
        var hole = index
        var next = (hole + 1) & mask
        while true {
            let entry = slots[next]
            if entry == 0 { break }
            let wanted = home(entry)
            // The entry may move to the hole if its home is not in (hole, next].
            if (hole - wanted) & mask < (next - wanted) & mask {
                slots[hole] = entry
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = 0
        count -= 1
    }

    private mutating func grow() {
        let old = slots
        slots = ChunkedWords(repeating: 0, count: old.count * 2)
        mask = slots.count - 1
        count = 0
        old.forEachNonZero { insert($0) }
    }
}

/// Empties `slots[hole]` in a linear-probing table whose empty slots are 0, by backward
/// shift: later entries of the probe run move into the hole, so lookups never stop early
/// at a slot that used to be full. `home` gives a stored entry's home slot. Shared by
/// `HashSet64` and `ChatTable`'s index.
@inline(__always)
func emptyByBackwardShift<Slot: FixedWidthInteger>(_ slots: inout [Slot], at hole: Int, mask: Int, home: (Slot) -> Int) {
    var hole = hole
    var next = (hole + 1) & mask
    while slots[next] != 0 {
        let wanted = home(slots[next])
        // The entry may move to the hole if its home is not in (hole, next].
        if (hole - wanted) & mask < (next - wanted) & mask {
            slots[hole] = slots[next]
            hole = next
        }
        next = (next + 1) & mask
    }
    slots[hole] = 0
}
