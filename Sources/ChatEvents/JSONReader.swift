// A byte-level JSON reader over one Kafka value, specialised for events: it reads the
// values the schema expects in place (no intermediate tree), validates UTF-8 as it goes,
// and reports the first problem with the field path and byte offset.

/// Keys of one object kind, matched by their raw bytes.
///
/// Each name is kept as its length and its first and last eight bytes as two words, so a
/// key of up to 16 bytes is matched by comparing three integers per name, with no byte
/// loop; longer names also compare their spelling. The table is flat, so a lookup touches
/// no nested array (whose reference counting showed up in the replay profile).
struct KeyTable: Sendable {
    let names: [String]
    private let signatures: [Signature]
    /// Every name's UTF-8, back to back, for names longer than 16 bytes.
    private let spelled: [UInt8]

    private struct Signature: Sendable {
        var count: Int
        var head: UInt64
        var tail: UInt64
        /// Where the name starts in `spelled`.
        var start: Int
    }

    init(_ names: [String]) {
        self.names = names
        var spelled: [UInt8] = []
        var signatures: [Signature] = []
        for name in names {
            let utf8 = Array(name.utf8)
            let (head, tail) = utf8.withUnsafeBufferPointer { Self.words($0.baseAddress!, utf8.count) }
            signatures.append(Signature(count: utf8.count, head: head, tail: tail, start: spelled.count))
            spelled.append(contentsOf: utf8)
        }
        self.signatures = signatures
        self.spelled = spelled
    }

    /// The first and last eight bytes of `count` bytes at `base` as little-endian words
    /// (overlapping when fewer than 16); shorter than eight: the bytes in `head`, `tail` 0.
    @inline(__always)
    private static func words(_ base: UnsafePointer<UInt8>, _ count: Int) -> (head: UInt64, tail: UInt64) {
        if count >= 8 {
            let raw = UnsafeRawPointer(base)
            return (raw.loadUnaligned(as: UInt64.self), raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
        }
        var head: UInt64 = 0
        for index in 0..<count { head |= UInt64(base[index]) << UInt64(8 * index) }
        return (head, 0)
    }

    /// The index of the key spelled by `key`, or nil.
    @inline(__always)
    func index(of key: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let keyBase = key.baseAddress else { return nil }
        let (head, tail) = Self.words(keyBase, key.count)
        return signatures.withUnsafeBufferPointer { signatures in
            for index in signatures.indices {
                let name = signatures[index]
                guard name.count == key.count, name.head == head, name.tail == tail else { continue }
                if key.count <= 16 { return index }
                let same = spelled.withUnsafeBufferPointer { memoryEqual($0.baseAddress! + name.start, keyBase, key.count) }
                if same { return index }
            }
            return nil
        }
    }

    /// Whether the `count` bytes at `base` begin with the name at `index` followed by a
    /// closing quote (so they spell exactly that key, with no escape); the name's length
    /// if so. Never reads past `count`.
    @inline(__always)
    func spelledLength(of index: Int, at base: UnsafePointer<UInt8>, count: Int) -> Int? {
        guard index < signatures.count else { return nil }
        let name = signatures[index]
        guard count > name.count, base[name.count] == UInt8(ascii: "\"") else { return nil }
        if name.count < 8, count >= 8 {
            // A short name is compared as one masked load rather than byte by byte.
            let word = UInt64(littleEndian: UnsafeRawPointer(base).loadUnaligned(as: UInt64.self))
            guard word & (1 << (8 * UInt64(name.count)) &- 1) == name.head else { return nil }
            return name.count
        }
        guard Self.words(base, name.count) == (name.head, name.tail) else { return nil }
        if name.count > 16 {
            let same = spelled.withUnsafeBufferPointer { memoryEqual($0.baseAddress! + name.start, base, name.count) }
            guard same else { return nil }
        }
        return name.count
    }

    /// A bit mask with the named keys set.
    func mask(_ keys: String...) -> UInt32 {
        keys.reduce(0) { mask, key in mask | (1 << UInt32(names.firstIndex(of: key)!)) }
    }
}

/// An enumeration's raw values with its cases in the same order, so a matched name gives
/// its case without building `allCases` (an array allocation) per read.
struct EnumTable<Value: RawRepresentable & CaseIterable & Sendable>: Sendable where Value.RawValue == String {
    let names: KeyTable
    let cases: [Value]

    init() {
        cases = Array(Value.allCases)
        names = KeyTable(cases.map(\.rawValue))
    }
}

@inline(__always)
func memoryEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    var i = 0
    while i < count {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}

private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let lowerT = UInt8(ascii: "t")
    static let lowerF = UInt8(ascii: "f")
    static let lowerN = UInt8(ascii: "n")
    static let lowerU = UInt8(ascii: "u")
}

/// The reader's cursor and error context. Not thread-safe; one per parse.
struct JSONReader {
    typealias Failure = EventValidationError

    let bytes: UnsafeBufferPointer<UInt8>
    var position: Int
    let limits: EventLimits

    // Error context, kept cheap on the hot path: the container's path is a literal and
    // the key is remembered as a byte range; both become a `String` only on failure.
    var containerPath: String = ""
    var keyRange: Range<Int>? = nil
    var elementIndex: Int? = nil

    /// Scratch for strings with escapes, allocated on first use with the input's size
    /// (a decoded string is never longer than its escaped form); see `releaseScratch()`.
    private var scratch: UnsafeMutablePointer<UInt8>? = nil
    private var scratchCount = 0

    init(bytes: UnsafeBufferPointer<UInt8>, position: Int = 0, limits: EventLimits) {
        self.bytes = bytes
        self.position = position
        self.limits = limits
    }

    /// Frees the scratch storage; call once when done with the reader.
    mutating func releaseScratch() {
        scratch?.deallocate()
        scratch = nil
    }

    // MARK: - Errors

    /// The path of the value being read, e.g. `data.messageIds[2]`.
    var currentPath: String {
        var path = containerPath
        if let keyRange {
            let key = String(decoding: UnsafeBufferPointer(rebasing: bytes[keyRange]), as: UTF8.self)
            path += path.isEmpty ? key : "." + key
        }
        if let elementIndex { path += "[\(elementIndex)]" }
        return path
    }

    func failure(_ code: EventValidationError.Code, _ message: String, at offset: Int? = nil) -> Failure {
        EventValidationError(code: code, path: currentPath, byteOffset: offset ?? position, message: message)
    }

    // MARK: - Structure

    @inline(__always)
    var isAtEnd: Bool { position >= bytes.count }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < bytes.count {
            let byte = bytes[position]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            position += 1
        }
    }

    /// The next non-whitespace byte, not consumed; 0 at the end (never valid JSON there).
    @inline(__always)
    mutating func peek() -> UInt8 {
        skipWhitespace()
        return position < bytes.count ? bytes[position] : 0
    }

    /// A description of what stands at the cursor, for messages.
    func describeHere() -> String {
        guard position < bytes.count else { return "end of input" }
        let byte = bytes[position]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16)
    }

    /// Enters an object; `name` says what the value is, for the wrong-type message.
    mutating func beginObject(_ name: String) throws(Failure) {
        guard peek() == ASCII.openBrace else { throw wrongValue(expected: "\(name) to be a JSON object") }
        position += 1
    }

    /// Reads the next key of the object being read and its colon, or returns nil at `}`.
    /// `isFirst` tracks whether a comma is due; the key's bytes are returned unescaped.
    mutating func nextKey(isFirst: inout Bool) throws(Failure) -> UnsafeBufferPointer<UInt8>? {
        keyRange = nil  // errors between members belong to the object
        var byte = peek()
        if byte == ASCII.closeBrace {
            position += 1
            return nil
        }
        if !isFirst {
            guard byte == ASCII.comma else {
                throw failure(.invalidJSON, "expected ',' or '}' in object, found \(describeHere())")
            }
            position += 1
            byte = peek()
        }
        isFirst = false
        guard byte == ASCII.quote else {
            throw failure(.invalidJSON, "expected a key string, found \(describeHere())")
        }
        let start = position + 1
        let key = try readRawString(maxBytes: Int.max)
        keyRange = key.escaped ? nil : start..<(start + key.bytes.count)
        guard peek() == ASCII.colon else {
            throw failure(.invalidJSON, "expected ':' after key, found \(describeHere())")
        }
        position += 1
        return key.bytes
    }

    /// `nextKey` for the one key the caller expects, matched in place: when the input
    /// spells exactly `keys`' name at `index` next (after the comma that is due, with no
    /// whitespace or escapes), reads it and its colon and returns true. Otherwise moves
    /// nothing and returns false, and `nextKey` reads whatever stands there.
    @inline(__always)
    mutating func readKeyIfSpelled(_ keys: KeyTable, _ index: Int, isFirst: inout Bool) -> Bool {
        let base = bytes.baseAddress!
        var at = position
        if !isFirst {
            guard at < bytes.count, base[at] == ASCII.comma else { return false }
            at += 1
        }
        guard at < bytes.count, base[at] == ASCII.quote else { return false }
        let start = at + 1
        guard let length = keys.spelledLength(of: index, at: base + start, count: bytes.count - start) else {
            return false
        }
        let colon = start + length + 1
        guard colon < bytes.count, base[colon] == ASCII.colon else { return false }
        keyRange = start..<(start + length)
        position = colon + 1
        isFirst = false
        return true
    }

    /// Enters an array; `name` says what the value is, for the wrong-type message.
    mutating func beginArray(_ name: String) throws(Failure) {
        guard peek() == ASCII.openBracket else { throw wrongValue(expected: "\(name) to be a JSON array") }
        position += 1
    }

    /// Moves to the next element, or returns false at `]`.
    mutating func nextElement(isFirst: inout Bool) throws(Failure) -> Bool {
        let byte = peek()
        if byte == ASCII.closeBracket {
            position += 1
            return false
        }
        if !isFirst {
            guard byte == ASCII.comma else {
                throw failure(.invalidJSON, "expected ',' or ']' in array, found \(describeHere())")
            }
            position += 1
        }
        isFirst = false
        return true
    }

    /// Requires that nothing but whitespace follows the top-level value.
    mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        guard isAtEnd else {
            throw failure(.invalidJSON, "unexpected \(describeHere()) after the event object")
        }
    }

    func isValueStart(_ byte: UInt8) -> Bool {
        switch byte {
        case ASCII.openBrace, ASCII.openBracket, ASCII.quote, ASCII.minus, ASCII.lowerT, ASCII.lowerF,
            ASCII.lowerN:
            return true
        default:
            return byte >= ASCII.zero && byte <= ASCII.nine
        }
    }

    /// Throws the right error for a value of the wrong kind: wrong type if it is some JSON
    /// value, invalid JSON if it is not.
    func wrongValue(expected: String) -> Failure {
        let byte = position < bytes.count ? bytes[position] : 0
        switch byte {
        case ASCII.lowerN:
            guard hasLiteral("null") else { break }
            return failure(.wrongType, "expected \(expected), found null (omit optional fields instead)")
        case ASCII.lowerT, ASCII.lowerF:
            guard hasLiteral("true") || hasLiteral("false") else { break }
            return failure(.wrongType, "expected \(expected), found a boolean")
        default:
            guard isValueStart(byte) else { break }
            return failure(.wrongType, "expected \(expected)")
        }
        return failure(.invalidJSON, "expected a JSON value, found \(describeHere())")
    }

    private func hasLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        return memoryEqual(literal.utf8Start, bytes.baseAddress! + position, count)
    }

    // MARK: - Scalars

    /// Reads `true` or `false`.
    mutating func readBool() throws(Failure) -> Bool {
        let byte = peek()
        if byte == ASCII.lowerT, hasLiteral("true") {
            position += 4
            return true
        }
        if byte == ASCII.lowerF, hasLiteral("false") {
            position += 5
            return false
        }
        throw wrongValue(expected: "true or false")
    }

    /// Reads `null` if it stands next; returns whether it did.
    mutating func readNullIfPresent() -> Bool {
        if peek() == ASCII.lowerN, hasLiteral("null") {
            position += 4
            return true
        }
        return false
    }

    /// Reads an integer: written as one, or with a fraction or exponent that still makes a
    /// whole number (`49.0`, `1.2e3`), as JSON Schema's `integer` counts it.
    mutating func readInt64() throws(Failure) -> Int64 {
        var byte = peek()
        let start = position
        let negative = byte == ASCII.minus
        if negative {
            position += 1
            byte = position < bytes.count ? bytes[position] : 0
        }
        guard byte >= ASCII.zero && byte <= ASCII.nine else {
            if negative { throw failure(.invalidJSON, "expected a digit after '-'") }
            throw wrongValue(expected: "an integer")
        }
        var value: Int64 = 0
        if byte == ASCII.zero {
            position += 1
            if position < bytes.count, bytes[position] >= ASCII.zero, bytes[position] <= ASCII.nine {
                throw failure(.invalidJSON, "numbers must not have leading zeros", at: start)
            }
        } else {
            // Eighteen digits cannot overflow: those go without checks (a timestamp has 13).
            let uncheckedEnd = min(bytes.count, position + 18)
            while position < uncheckedEnd {
                let digit = bytes[position] &- ASCII.zero
                guard digit <= 9 else { break }
                value = value &* 10 &- Int64(digit)
                position += 1
            }
            while position < bytes.count {
                let digit = bytes[position] &- ASCII.zero
                guard digit <= 9 else { break }
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.subtractingReportingOverflow(Int64(digit))
                guard !overflow1 && !overflow2 else {
                    throw failure(.invalidValue, "integer out of the 64-bit range", at: start)
                }
                value = sum  // accumulated negative so Int64.min fits
                position += 1
            }
        }
        if position < bytes.count {
            let next = bytes[position]
            if next == ASCII.dot || next == ASCII.lowerE || next == ASCII.upperE {
                return try readWholeDecimal(from: start)
            }
        }
        if negative { return value }
        guard value != Int64.min else { throw failure(.invalidValue, "integer out of the 64-bit range", at: start) }
        return -value
    }

    /// The number at `start`, which has a fraction or exponent, if it is a whole number
    /// within 64 bits; worked out on its decimal digits, so it is exact (no `Double`).
    private mutating func readWholeDecimal(from start: Int) throws(Failure) -> Int64 {
        func isDigit(_ byte: UInt8) -> Bool { byte >= ASCII.zero && byte <= ASCII.nine }
        position = start
        let negative = bytes[position] == ASCII.minus
        if negative { position += 1 }
        let integerStart = position
        while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        var mantissa = Array(bytes[integerStart..<position])
        var exponent = 0
        if position < bytes.count, bytes[position] == ASCII.dot {
            position += 1
            let fractionStart = position
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            guard position > fractionStart else { throw failure(.invalidJSON, "expected a digit after '.'", at: start) }
            mantissa += bytes[fractionStart..<position]
            exponent -= position - fractionStart
        }
        if position < bytes.count, bytes[position] == ASCII.lowerE || bytes[position] == ASCII.upperE {
            position += 1
            var exponentNegative = false
            if position < bytes.count, bytes[position] == ASCII.plus || bytes[position] == ASCII.minus {
                exponentNegative = bytes[position] == ASCII.minus
                position += 1
            }
            let exponentStart = position
            var written = 0
            while position < bytes.count, isDigit(bytes[position]) {
                written = min(written * 10 + Int(bytes[position] - ASCII.zero), 1_000_000)  // far past any whole Int64
                position += 1
            }
            guard position > exponentStart else { throw failure(.invalidJSON, "expected a digit in the exponent", at: start) }
            exponent += exponentNegative ? -written : written
        }
        let significant = mantissa.firstIndex { $0 != ASCII.zero } ?? mantissa.endIndex
        mantissa.removeSubrange(..<significant)
        guard !mantissa.isEmpty else { return 0 }
        while exponent < 0, mantissa.last == ASCII.zero {
            mantissa.removeLast()
            exponent += 1
        }
        guard exponent >= 0 else { throw failure(.wrongType, "expected an integer, found a number with a fraction", at: start) }
        guard mantissa.count + exponent <= 19 else { throw failure(.invalidValue, "integer out of the 64-bit range", at: start) }
        var value: Int64 = 0  // accumulated negative so Int64.min fits
        for digit in mantissa + repeatElement(ASCII.zero, count: exponent) {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.subtractingReportingOverflow(Int64(digit - ASCII.zero))
            guard !overflow1 && !overflow2 else { throw failure(.invalidValue, "integer out of the 64-bit range", at: start) }
            value = sum
        }
        if negative { return value }
        guard value != Int64.min else { throw failure(.invalidValue, "integer out of the 64-bit range", at: start) }
        return -value
    }

    // MARK: - Strings

    /// Reads a string and checks it against a byte limit.
    mutating func readString(maxBytes: Int) throws(Failure) -> String {
        guard peek() == ASCII.quote else { throw wrongValue(expected: "a string") }
        let start = position
        let raw = try readRawString(maxBytes: maxBytes)
        guard raw.bytes.count <= maxBytes else {
            throw failure(.tooLong, "string of \(raw.bytes.count) bytes exceeds the limit of \(maxBytes)", at: start)
        }
        return String(decoding: raw.bytes, as: UTF8.self)
    }

    /// Reads a string and returns its raw bytes, without creating a `String`: for matching
    /// against fixed values (enumerations) or keeping inline. Valid until the next read.
    mutating func readStringBytes(maxBytes: Int) throws(Failure) -> UnsafeBufferPointer<UInt8> {
        guard peek() == ASCII.quote else { throw wrongValue(expected: "a string") }
        let start = position
        let raw = try readRawString(maxBytes: maxBytes)
        guard raw.bytes.count <= maxBytes else {
            throw failure(.tooLong, "string of \(raw.bytes.count) bytes exceeds the limit of \(maxBytes)", at: start)
        }
        return raw.bytes
    }

    /// Reads the string at the cursor (which is at its opening quote). Returns its
    /// unescaped UTF-8 bytes: a view of the input when it has no escapes, else of scratch
    /// storage valid until the next string is read.
    mutating func readRawString(maxBytes: Int) throws(Failure) -> (bytes: UnsafeBufferPointer<UInt8>, escaped: Bool) {
        position += 1  // opening quote
        let start = position
        let base = bytes.baseAddress!
        let count = bytes.count
        while true {
            // Eight bytes at a time (SWAR): the word's mask marks the first byte that needs a
            // look (quote, backslash, control character or non-ASCII), so the scan jumps
            // straight to it; only the input's last few bytes go one by one.
            while position + 8 <= count {
                let word = UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self)
                let attention = Self.attentionMask(word)
                if attention == 0 {
                    position += 8
                    continue
                }
                position += attention.trailingZeroBitCount >> 3
                break
            }
            guard position < count else { break }
            let byte = base[position]
            if byte == ASCII.quote {
                let view = UnsafeBufferPointer(start: base + start, count: position - start)
                position += 1
                return (view, false)
            }
            if byte == ASCII.backslash {
                return (try readEscapedString(from: start, maxBytes: maxBytes), true)
            }
            if byte < 0x20 {
                throw failure(.invalidJSON, "control character 0x\(String(byte, radix: 16)) in a string must be escaped")
            }
            if byte < 0x80 {
                position += 1  // a plain byte among the last few
            } else {
                position += try validateUTF8Sequence(at: position)
            }
        }
        throw failure(.invalidJSON, "unterminated string", at: start - 1)
    }

    private static let lowBits: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// The high bit of each byte of `word` (little-endian) that is `"`, `\\`, below 0x20 or
    /// above 0x7F. Exact for the lowest such byte, which is all the scan uses: a byte above
    /// it may be marked by a borrow from below.
    @inline(__always)
    static func attentionMask(_ word: UInt64) -> UInt64 {
        // A byte is zero in `x` when `(x - 0x01) & ~x & 0x80` has its high bit set, exactly
        // for the lowest one; a byte below 0x20 likewise in `(word - 0x20…) & ~word`.
        func zeroBytes(_ x: UInt64) -> UInt64 { (x &- lowBits) & ~x & highBits }
        let quote = zeroBytes(word ^ (lowBits &* UInt64(ASCII.quote)))
        let backslash = zeroBytes(word ^ (lowBits &* UInt64(ASCII.backslash)))
        let control = (word &- lowBits &* 0x20) & ~word & highBits
        return quote | backslash | control | (word & highBits)
    }

    /// Slow path for strings with escapes: copies into scratch storage while decoding.
    private mutating func readEscapedString(from start: Int, maxBytes: Int) throws(Failure) -> UnsafeBufferPointer<UInt8> {
        if scratch == nil { scratch = .allocate(capacity: bytes.count) }
        scratchCount = 0
        for index in start..<position { appendScratch(bytes[index]) }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == ASCII.quote {
                position += 1
                return UnsafeBufferPointer(start: scratch, count: scratchCount)
            }
            if byte == ASCII.backslash {
                try decodeEscape()
            } else if byte < 0x20 {
                throw failure(.invalidJSON, "control character 0x\(String(byte, radix: 16)) in a string must be escaped")
            } else if byte < 0x80 {
                appendScratch(byte)
                position += 1
            } else {
                let length = try validateUTF8Sequence(at: position)
                for index in position..<(position + length) { appendScratch(bytes[index]) }
                position += length
            }
            if scratchCount > maxBytes {
                // Keep scanning to the end is pointless: the caller reports the limit.
                throw failure(.tooLong, "string exceeds the limit of \(maxBytes) bytes", at: start - 1)
            }
        }
        throw failure(.invalidJSON, "unterminated string", at: start - 1)
    }

    private mutating func decodeEscape() throws(Failure) {
        let escapeStart = position
        position += 1
        guard position < bytes.count else { throw failure(.invalidJSON, "unterminated string") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case ASCII.quote: appendScratch(ASCII.quote)
        case ASCII.backslash: appendScratch(ASCII.backslash)
        case UInt8(ascii: "/"): appendScratch(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): appendScratch(0x08)
        case UInt8(ascii: "f"): appendScratch(0x0C)
        case UInt8(ascii: "n"): appendScratch(0x0A)
        case UInt8(ascii: "r"): appendScratch(0x0D)
        case UInt8(ascii: "t"): appendScratch(0x09)
        case ASCII.lowerU:
            var scalar = try readHex4(escapeStart: escapeStart)
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard position + 1 < bytes.count, bytes[position] == ASCII.backslash,
                    bytes[position + 1] == ASCII.lowerU
                else {
                    throw failure(.invalidUTF8, "lone high surrogate escape", at: escapeStart)
                }
                position += 2
                let low = try readHex4(escapeStart: escapeStart)
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw failure(.invalidUTF8, "high surrogate escape not followed by a low one", at: escapeStart)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw failure(.invalidUTF8, "lone low surrogate escape", at: escapeStart)
            }
            appendUTF8(scalar)
        default:
            throw failure(.invalidJSON, "invalid escape '\\\(Character(Unicode.Scalar(byte)))'", at: escapeStart)
        }
    }

    private mutating func readHex4(escapeStart: Int) throws(Failure) -> UInt32 {
        guard bytes.count - position >= 4 else { throw failure(.invalidJSON, "truncated \\u escape", at: escapeStart) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure(.invalidJSON, "invalid hex digit in \\u escape", at: escapeStart)
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    @inline(__always)
    private mutating func appendScratch(_ byte: UInt8) {
        scratch![scratchCount] = byte  // capacity is the input's size, see `scratch`
        scratchCount += 1
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            appendScratch(UInt8(scalar))
        case 0x80..<0x800:
            appendScratch(UInt8(0xC0 | (scalar >> 6)))
            appendScratch(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            appendScratch(UInt8(0xE0 | (scalar >> 12)))
            appendScratch(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            appendScratch(UInt8(0x80 | (scalar & 0x3F)))
        default:
            appendScratch(UInt8(0xF0 | (scalar >> 18)))
            appendScratch(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            appendScratch(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            appendScratch(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    /// Checks the UTF-8 sequence starting with a non-ASCII byte at `index` (RFC 3629:
    /// no overlong forms, no surrogates, nothing above U+10FFFF) and returns its length.
    /// Mutating only to be called in place: as a non-mutating call from the scan, the
    /// whole reader was copied for every non-ASCII character.
    private mutating func validateUTF8Sequence(at index: Int) throws(Failure) -> Int {
        let lead = bytes[index]
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upperBound = 0x9F
        case 0xF0: length = 4; lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upperBound = 0x8F
        default: throw failure(.invalidUTF8, "invalid UTF-8 lead byte 0x\(String(lead, radix: 16))", at: index)
        }
        guard bytes.count - index >= length else {
            throw failure(.invalidUTF8, "truncated UTF-8 sequence", at: index)
        }
        let second = bytes[index + 1]
        guard second >= lowerBound && second <= upperBound else {
            throw failure(.invalidUTF8, "invalid UTF-8 continuation byte", at: index + 1)
        }
        var offset = 2
        while offset < length {
            guard bytes[index + offset] & 0xC0 == 0x80 else {
                throw failure(.invalidUTF8, "invalid UTF-8 continuation byte", at: index + offset)
            }
            offset += 1
        }
        return length
    }

    // MARK: - Skipping

    /// Reads and validates any JSON value without keeping it (an unknown type's `data`),
    /// rejecting duplicate keys and nesting deeper than the limit.
    mutating func skipValue() throws(Failure) {
        let path = currentPath
        let savedKey = keyRange
        do {
            try skipNestedValue(depth: 0)
            keyRange = savedKey
        } catch {
            throw EventValidationError(code: error.code, path: path, byteOffset: error.byteOffset, message: error.message)
        }
    }

    private mutating func skipNestedValue(depth: Int) throws(Failure) {
        let byte = peek()
        switch byte {
        case ASCII.openBrace, ASCII.openBracket:
            guard depth < limits.maxDepth else {
                throw failure(.tooDeep, "nesting deeper than \(limits.maxDepth) levels")
            }
            if byte == ASCII.openBrace {
                try skipObject(depth: depth)
            } else {
                position += 1
                var isFirst = true
                while try nextElement(isFirst: &isFirst) { try skipNestedValue(depth: depth + 1) }
            }
        case ASCII.quote:
            _ = try readRawString(maxBytes: Int.max)
        case ASCII.lowerT, ASCII.lowerF:
            _ = try readBool()
        case ASCII.lowerN:
            guard readNullIfPresent() else { throw failure(.invalidJSON, "invalid literal") }
        case ASCII.minus, ASCII.zero...ASCII.nine:
            try skipNumber()
        default:
            throw failure(.invalidJSON, "expected a JSON value, found \(describeHere())")
        }
    }

    private mutating func skipObject(depth: Int) throws(Failure) {
        position += 1
        var keys: [[UInt8]] = []
        var isFirst = true
        while let key = try nextKey(isFirst: &isFirst) {
            let copy = Array(key)
            if keys.contains(copy) {
                throw failure(.duplicateKey, "key \"\(String(decoding: copy, as: UTF8.self))\" appears twice")
            }
            keys.append(copy)
            try skipNestedValue(depth: depth + 1)
        }
    }

    private mutating func skipNumber() throws(Failure) {
        let start = position
        if bytes[position] == ASCII.minus { position += 1 }
        func digits(_ reader: inout JSONReader) -> Int {
            var count = 0
            while reader.position < reader.bytes.count,
                reader.bytes[reader.position] >= ASCII.zero && reader.bytes[reader.position] <= ASCII.nine
            {
                reader.position += 1
                count += 1
            }
            return count
        }
        let firstDigit = position < bytes.count ? bytes[position] : 0
        let integerDigits = digits(&self)
        guard integerDigits > 0 else { throw failure(.invalidJSON, "invalid number", at: start) }
        guard firstDigit != ASCII.zero || integerDigits == 1 else {
            throw failure(.invalidJSON, "numbers must not have leading zeros", at: start)
        }
        if position < bytes.count, bytes[position] == ASCII.dot {
            position += 1
            guard digits(&self) > 0 else { throw failure(.invalidJSON, "invalid number", at: start) }
        }
        if position < bytes.count, bytes[position] == ASCII.lowerE || bytes[position] == ASCII.upperE {
            position += 1
            if position < bytes.count, bytes[position] == ASCII.plus || bytes[position] == ASCII.minus {
                position += 1
            }
            guard digits(&self) > 0 else { throw failure(.invalidJSON, "invalid number", at: start) }
        }
    }
}
