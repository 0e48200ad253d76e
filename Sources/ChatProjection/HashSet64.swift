import CLedgerSystem

/// A set of 64-bit hashes for `EventIdWindow`: open addressing with linear probing and
/// backward-shift deletion, over values that are already hashes, so no `Hasher` runs per
/// lookup (with `Set<UInt64>`, SipHash was the window's main cost). The table doubles
/// when half full and never shrinks; 0 is kept apart because it marks an empty slot.
struct HashSet64: Sendable {
    private var slots: [UInt64]
    private var mask: Int
    private(set) var count = 0
    private var containsZero = false

    init(minimumSlots: Int = 1_024) {
        var size = 16
        while size < minimumSlots { size <<= 1 }
        slots = Array(repeating: 0, count: size)
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
        slots.withUnsafeBufferPointer { cl_prefetch($0.baseAddress! + home(value)) }
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
        let mask = self.mask  // the closure must not capture `self`: that would share `slots` and copy it
        emptyByBackwardShift(&slots, at: index, mask: mask) { Self.home($0, mask: mask) }
        count -= 1
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for value in old where value != 0 { insert(value) }
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
