/// Text kept without a heap allocation when it has at most 31 UTF-8 bytes (event ids,
/// chat and message ids as WhatsApp writes them), else as a `String`.
///
/// Parsing made a `String` for every id of every event, each a heap allocation and a
/// release; in a replay that was the largest cost after the JSON scan itself, while the
/// fold only hashes or packs the ids. The form is canonical (text that fits is always
/// inline), so equality and hashing of the stored form agree with the text's.
package struct InlineString: Hashable, Sendable {
    /// Bytes kept inline; the 32nd byte holds the count.
    package static let inlineCapacity = 31

    private enum Storage: Hashable, Sendable {
        case inline(Bytes)
        case heap(String)
    }

    /// The UTF-8 bytes, zero-padded, with the count in the last byte.
    private struct Bytes: Hashable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

        /// No bytes.
        init() {}

        init(_ utf8: UnsafeBufferPointer<UInt8>) {
            withUnsafeMutableBytes(of: &words) { raw in
                raw.copyMemory(from: UnsafeRawBufferPointer(utf8))
                raw[InlineString.inlineCapacity] = UInt8(utf8.count)
            }
        }

        static func == (lhs: Bytes, rhs: Bytes) -> Bool {
            lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
                && lhs.words.3 == rhs.words.3
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(words.3)
        }
    }

    private var storage: Storage

    /// The empty text.
    package init() {
        storage = .inline(Bytes())
    }

    package init(_ text: String) {
        let count = text.utf8.count
        if count <= Self.inlineCapacity {
            storage = .inline(text.utf8.withContiguousStorageIfAvailable(Bytes.init) ?? Array(text.utf8).withUnsafeBufferPointer(Bytes.init))
        } else {
            storage = .heap(text)
        }
    }

    /// From bytes that are valid UTF-8 (the parser has checked them).
    package init(validatedUTF8 utf8: UnsafeBufferPointer<UInt8>) {
        if utf8.count <= Self.inlineCapacity {
            storage = .inline(Bytes(utf8))
        } else {
            storage = .heap(String(decoding: utf8, as: UTF8.self))
        }
    }

    /// The text as a `String` (allocates when it is longer than 15 bytes).
    package var string: String {
        if case .heap(let text) = storage { return text }
        return withUTF8 { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the text's UTF-8 bytes, valid only inside it. For this module
    /// only: other modules get no specialisation of it (see `inlineUTF8`).
    func withUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        guard var inline = inlineUTF8 else {
            var text = string
            return text.withUTF8(body)
        }
        return withUnsafeBytes(of: &inline.words) { raw in
            raw.withMemoryRebound(to: UInt8.self) { body(UnsafeBufferPointer(rebasing: $0[..<inline.count])) }
        }
    }

    /// The bytes when kept inline: `count` of them at the start of `words` (in memory
    /// order); nil when the text is kept as a `String`. A plain value rather than a
    /// closure-taking accessor, because a generic accessor was not specialised across
    /// modules and looked up type metadata on every call.
    package var inlineUTF8: (words: (UInt64, UInt64, UInt64, UInt64), count: Int)? {
        guard case .inline(var bytes) = storage else { return nil }
        let count = withUnsafeBytes(of: &bytes.words) { Int($0[Self.inlineCapacity]) }
        return (bytes.words, count)
    }
}
