/// Appends compact JSON to a byte buffer; tracks commas so callers write fields in order.
package struct JSONWriter: Sendable {
    /// The JSON written so far.
    package var bytes: [UInt8] = []
    private var needsComma = false

    /// Creates an empty writer.
    package init() {}

    package mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    package mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    package mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    package mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes `"name":`; the value written next needs no comma.
    package mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    package mutating func field(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    /// An id as the parser keeps it, written from its bytes (no `String` made).
    mutating func field(_ name: String, _ value: InlineString) {
        key(name)
        value.withUTF8 { string(utf8: $0) }
    }

    package mutating func field(_ name: String, _ value: Int64) {
        key(name)
        integer(value)
    }

    package mutating func field(_ name: String, _ value: Bool) {
        key(name)
        bool(value)
    }

    package mutating func stringArray(_ values: [String]) {
        beginArray()
        for value in values { string(value) }
        endArray()
    }

    package mutating func null() {
        separate()
        bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])  // null
        needsComma = true
    }

    package mutating func bool(_ value: Bool) {
        separate()
        if value {
            bytes.append(contentsOf: [0x74, 0x72, 0x75, 0x65])  // true
        } else {
            bytes.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])  // false
        }
        needsComma = true
    }

    package mutating func integer(_ value: Int64) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
        needsComma = true
    }

    /// Writes a string with the shortest escapes.
    package mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { string(utf8: $0) }
    }

    /// Writes text given as UTF-8 with the shortest escapes: runs that need none (most text)
    /// are found eight bytes at a time and appended whole.
    mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0
        while true {
            let index = Self.endOfPlainText(utf8, from: runStart)
            if index > runStart { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
            guard index < utf8.count else { break }
            runStart = index + 1
            switch utf8[index] {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case let byte:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            }
        }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    /// The index of the first byte at or after `start` that JSON text cannot hold as it is
    /// (`"`, `\`, a control character below 0x20), or `text.count` when there is none.
    ///
    /// Eight bytes at a time (the last few through loads of 4, 2 and 1 bytes, never past the
    /// end): a byte is flagged when it equals `"` or `\` (its XOR with the pattern is zero) or
    /// is below 0x20 (subtracting 0x20 borrows). A borrow only runs towards later bytes, so
    /// the lowest flag is exactly the first such byte. Shared by the writer, the encoder and
    /// the bridge records' reader.
    @inlinable @inline(__always)
    package static func endOfPlainText(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        guard let base = text.baseAddress else { return start }
        let count = text.count
        var index = start
        while count - index >= 8 {
            let flags = specialBytes(UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)))
            if flags != 0 { return index + flags.trailingZeroBitCount >> 3 }
            index += 8
        }
        let rest = count - index
        guard rest > 0 else { return count }
        var word: UInt64 = 0
        var shift: UInt64 = 0
        var at = UnsafeRawPointer(base + index)
        if rest & 4 != 0 {
            word = UInt64(UInt32(littleEndian: at.loadUnaligned(as: UInt32.self)))
            at += 4
            shift = 32
        }
        if rest & 2 != 0 {
            word |= UInt64(UInt16(littleEndian: at.loadUnaligned(as: UInt16.self))) << shift
            at += 2
            shift += 16
        }
        if rest & 1 != 0 { word |= UInt64(at.load(as: UInt8.self)) << shift }
        // The missing bytes read as zeros (control characters): their flags are dropped.
        let flags = specialBytes(word) & ((1 << (UInt64(rest) << 3)) &- 1)
        return flags != 0 ? index + flags.trailingZeroBitCount >> 3 : count
    }

    /// The high bit of each byte of `word` (little-endian) that is `"`, `\` or below 0x20,
    /// exact for the lowest such byte (bytes above it may be flagged too).
    @inlinable @inline(__always)
    package static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let flags = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
        return flags & 0x8080_8080_8080_8080
    }

    @inline(__always)
    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }
}
