import ChatEvents

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
