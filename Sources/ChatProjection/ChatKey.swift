import ChatEvents

/// A chat id kept without a heap allocation when it is a plain WhatsApp address
/// (`<digits>@c.us`, `<digits>@g.us`, `<digits>@s.whatsapp.net`, `<digits>@lid`), else as
/// text. At a million chats the id's own allocation was the largest single cost.
package struct ChatKey: Hashable, Sendable, CustomStringConvertible {
    private enum Storage: Hashable, Sendable {
        /// The digits as a number, their count (for leading zeros) and the domain.
        case address(number: UInt64, digits: UInt8, domain: UInt8)
        case text(String)
    }

    private static let domains = ["c.us", "g.us", "s.whatsapp.net", "lid"]
    private let storage: Storage

    package init(_ text: String) {
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

    package var description: String {
        switch storage {
        case .text(let text):
            return text
        case .address(let number, let digits, let domain):
            let value = String(number)
            return String(repeating: "0", count: Int(digits) - value.count) + value + "@" + Self.domains[Int(domain)]
        }
    }
}
