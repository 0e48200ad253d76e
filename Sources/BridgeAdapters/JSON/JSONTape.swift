#if canImport(Glibc)
import Glibc
#endif
import ChatEvents

// A JSON reader for bridge records: strict about structure, tolerant about text.
//
// Bridge records are JSON written by JavaScript (`JSON.stringify`), hundreds of bytes to
// megabytes (media as base64), nested a dozen levels. The adapter reads a few fields of
// each, so the record is parsed once into a flat array of nodes ("a tape") and fields are
// looked up by walking it; nothing is decoded that is not read, and the tape's storage is
// reused from record to record. Text is taken as it comes: invalid UTF-8 and lone
// surrogate escapes become U+FFFD instead of failing the record (a broken emoji must not
// lose a message), while anything that is not JSON fails with its byte offset.

/// Why a record is not JSON the adapter can read.
package struct JSONTapeError: Error, Sendable, CustomStringConvertible {
    package enum Code: String, Sendable {
        case invalidJSON = "invalid_json"
        case tooDeep = "too_deep"
    }

    package var code: Code
    /// Byte offset in the record.
    package var offset: Int
    package var message: String

    package var description: String { "\(message) at byte \(offset)" }
}

/// One parsed record: its bytes and the tape of its values, reused for the next record.
package final class JSONTape {
    /// What a node is.
    package enum Kind: UInt8, Sendable {
        case object, array, string, number, `true`, `false`, null
    }

    struct Node {
        var kind: Kind
        /// A string with a backslash escape in it (its bytes must be decoded).
        var escaped: Bool
        /// Byte range: a string's contents without quotes; a number's digits; a container
        /// from its opening to after its closing bracket.
        var start: Int32
        var end: Int32
        /// The index of the node after this value's subtree (children come right after it).
        var next: Int32
    }

    /// Deepest nesting of objects and arrays accepted.
    package let maxDepth: Int
    // The record's bytes and the nodes, in buffers the tape owns and reuses: lookups read
    // them through pointers (no bounds checks, reference counts or exclusivity checks per
    // access). Only `parse` writes them; a tape belongs to one thread.
    @exclusivity(unchecked) private var byteStorage: UnsafeMutableBufferPointer<UInt8>
    @exclusivity(unchecked) private(set) var byteCount = 0
    @exclusivity(unchecked) private var nodeStorage: UnsafeMutableBufferPointer<Node>
    @exclusivity(unchecked) private(set) var nodeCount = 0

    /// Buffers above this size are given back after a record that needed them.
    private static let keptCapacity = 1 << 20

    package init(maxDepth: Int = 64) {
        self.maxDepth = maxDepth
        byteStorage = .allocate(capacity: 4096)
        nodeStorage = .allocate(capacity: 256)
    }

    deinit {
        byteStorage.deallocate()
        nodeStorage.deallocate()
    }

    /// The record's bytes (valid until the next parse).
    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: byteStorage[0..<byteCount]) }

    /// The root value of the last parse.
    package var root: JSONValue { JSONValue(tape: view, index: 0) }

    /// The last parse's bytes and nodes, for its values to read.
    var view: View { View(bytes: UnsafePointer(byteStorage.baseAddress!), nodes: UnsafePointer(nodeStorage.baseAddress!)) }

    /// Parses `bytes` (copied into the tape, which keeps them until the next parse).
    /// - Throws: `JSONTapeError` when the bytes are not one JSON value.
    package func parse(_ bytes: [UInt8]) throws(JSONTapeError) {
        nodeCount = 0
        if byteStorage.count < bytes.count || (byteStorage.count > Self.keptCapacity && bytes.count <= Self.keptCapacity) {
            byteStorage.deallocate()
            byteStorage = .allocate(capacity: max(4096, bytes.count))
        }
        if nodeStorage.count > Self.keptCapacity / MemoryLayout<Node>.stride {
            nodeStorage.deallocate()
            nodeStorage = .allocate(capacity: 256)
        }
        byteCount = bytes.count
        _ = UnsafeMutableBufferPointer(rebasing: byteStorage[0..<bytes.count]).initialize(from: bytes)
        var parser = Parser(bytes: self.bytes, maxDepth: maxDepth, nodes: nodeStorage)
        do {
            try parser.parseDocument()
        } catch {
            nodeStorage = parser.nodes
            throw error
        }
        nodeStorage = parser.nodes
        nodeCount = parser.nodeCount
    }

    // MARK: - Reading

    /// What values read: the last parse's bytes and nodes by address, so that making and
    /// copying values (dozens per record) costs no reference count. Valid while the tape is
    /// alive and until it parses the next record: the tape's owner keeps it for as long as
    /// it reads (`MappingContext.adapt` reads only inside the mapping).
    struct View {
        let bytes: UnsafePointer<UInt8>
        let nodes: UnsafePointer<Node>

        @inline(__always)
        func node(_ index: Int) -> Node { nodes[index] }

        @inline(__always)
        func key(_ index: Int, equals name: StaticString) -> Bool {
            key(index, equals: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        }

        func key(_ index: Int, equals name: UnsafeBufferPointer<UInt8>) -> Bool {
            let node = nodes[index]
            let count = Int(node.end - node.start)
            if !node.escaped {
                guard count == name.count else { return false }
                guard count > 0 else { return true }
                let key = bytes + Int(node.start)
                guard key.pointee == name[0] else { return false }
                return memcmp(key, name.baseAddress!, count) == 0
            }
            return decodedBytes(node).elementsEqual(name)
        }

        func string(_ index: Int) -> String {
            let node = nodes[index]
            if !node.escaped { return String(decoding: rawBytes(node), as: UTF8.self) }
            return String(decoding: decodedBytes(node), as: UTF8.self)
        }

        /// The raw bytes of a node's range (a string's undecoded contents, a number's digits).
        @inline(__always)
        func rawBytes(_ node: Node) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(start: bytes + Int(node.start), count: Int(node.end - node.start))
        }

        /// A string node's text as UTF-8, escapes decoded, lone surrogates as U+FFFD.
        func decodedBytes(_ node: Node) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(Int(node.end - node.start))
            var index = Int(node.start)
            let end = Int(node.end)
            func hex4(_ at: Int) -> UInt32 {
                var value: UInt32 = 0
                for offset in 0..<4 {
                    let byte = bytes[at + offset]
                    let digit: UInt8
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                    default: digit = byte - UInt8(ascii: "A") + 10
                    }
                    value = value << 4 | UInt32(digit)
                }
                return value
            }
            func append(_ scalar: UInt32) {
                let scalar = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: String(Character(scalar)).utf8)
            }
            while index < end {
                let byte = bytes[index]
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    index += 1
                    continue
                }
                let escape = bytes[index + 1]
                index += 2
                switch escape {
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    let unit = hex4(index)
                    index += 4
                    if (0xD800..<0xDC00).contains(unit), index + 6 <= end, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        let low = hex4(index + 2)
                        if (0xDC00..<0xE000).contains(low) {
                            index += 6
                            append(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                            continue
                        }
                    }
                    append((0xD800..<0xE000).contains(unit) ? 0xFFFD : unit)
                default: out.append(escape)  // \" \\ \/
                }
            }
            return out
        }
    }
}

/// One value in a parsed record. Valid until the tape parses the next record.
package struct JSONValue {
    let tape: JSONTape.View
    let index: Int

    package var kind: JSONTape.Kind { tape.node(index).kind }

    /// The member named `name` of an object (the first, if a record repeats a key); nil for
    /// anything else.
    package subscript(_ name: StaticString) -> JSONValue? {
        let node = tape.node(index)
        guard node.kind == .object else { return nil }
        var child = index + 1
        let end = Int(node.next)
        while child < end {
            let value = child + 1
            if tape.key(child, equals: name) { return JSONValue(tape: tape, index: value) }
            child = Int(tape.node(value).next)
        }
        return nil
    }

    /// A string's text; nil for other kinds.
    package var string: String? { kind == .string ? tape.string(index) : nil }

    /// A string's bytes when they are its text as they are (no escapes) and all ASCII;
    /// nil otherwise. Valid until the tape parses the next record.
    var asciiText: UnsafeBufferPointer<UInt8>? {
        let node = tape.node(index)
        guard node.kind == .string, !node.escaped else { return nil }
        let bytes = tape.rawBytes(node)
        for byte in bytes where byte >= 0x80 { return nil }
        return bytes
    }

    /// Whether this is the empty string.
    var isEmptyString: Bool {
        let node = tape.node(index)
        return node.kind == .string && node.start == node.end
    }

    /// A string's text with its escapes decoded, as UTF-8; nil for other kinds.
    package var stringBytes: [UInt8]? {
        guard kind == .string else { return nil }
        let node = tape.node(index)
        return node.escaped ? tape.decodedBytes(node) : Array(tape.rawBytes(node))
    }

    package var bool: Bool? {
        switch kind {
        case .true: return true
        case .false: return false
        default: return nil
        }
    }

    package var isNull: Bool { kind == .null }

    /// A number written as an integer, or with a fraction or exponent that makes a whole
    /// number within 64 bits; nil otherwise.
    package var int64: Int64? {
        guard kind == .number else { return nil }
        let digits = tape.rawBytes(tape.node(index))
        var value: Int64 = 0
        var negative = false
        var isPlain = true
        for (offset, byte) in digits.enumerated() {
            if offset == 0, byte == UInt8(ascii: "-") {
                negative = true
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                isPlain = false
                break
            }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow, !overflow2 else { return nil }
            value = sum
        }
        if isPlain { return negative ? -value : value }
        guard let double = Double(String(decoding: digits, as: UTF8.self)), double.rounded() == double,
            double >= -9.2e18, double <= 9.2e18
        else { return nil }
        return Int64(double)
    }

    /// A number's text as written (empty for anything else).
    package var numberText: String {
        guard kind == .number else { return "" }
        return String(decoding: tape.rawBytes(tape.node(index)), as: UTF8.self)
    }

    /// The elements of an array (empty for anything else).
    package var elements: [JSONValue] {
        let node = tape.node(index)
        guard node.kind == .array else { return [] }
        var values: [JSONValue] = []
        var child = index + 1
        while child < Int(node.next) {
            values.append(JSONValue(tape: tape, index: child))
            child = Int(tape.node(child).next)
        }
        return values
    }

    /// The members of an object in record order, keys decoded (empty for anything else).
    package var members: [(key: String, value: JSONValue)] {
        let node = tape.node(index)
        guard node.kind == .object else { return [] }
        var values: [(String, JSONValue)] = []
        var child = index + 1
        while child < Int(node.next) {
            values.append((tape.string(child), JSONValue(tape: tape, index: child + 1)))
            child = Int(tape.node(child + 1).next)
        }
        return values
    }

    /// The member whose key is `name` (a runtime string; see the `StaticString` subscript).
    package func member(named name: String) -> JSONValue? {
        let node = tape.node(index)
        guard node.kind == .object else { return nil }
        var name = name
        return name.withUTF8 { nameBytes in
            var child = index + 1
            while child < Int(node.next) {
                if tape.key(child, equals: nameBytes) { return JSONValue(tape: tape, index: child + 1) }
                child = Int(tape.node(child + 1).next)
            }
            return nil
        }
    }

    /// The first member of an object whose key is not in `skipping`.
    package func firstKey(skipping: Set<String>) -> (key: String, value: JSONValue)? {
        let node = tape.node(index)
        guard node.kind == .object else { return nil }
        var child = index + 1
        while child < Int(node.next) {
            let key = tape.string(child)
            if !skipping.contains(key) { return (key, JSONValue(tape: tape, index: child + 1)) }
            child = Int(tape.node(child + 1).next)
        }
        return nil
    }

    /// A short description of the kind, for messages.
    package var kindName: String {
        switch kind {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .true, .false: return "a boolean"
        case .null: return "null"
        }
    }
}

// MARK: - Parser

private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var position = 0
    /// The tape's node buffer (reallocated here when it fills up) and the nodes written.
    var nodes: UnsafeMutableBufferPointer<JSONTape.Node>
    var nodeCount = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, nodes: UnsafeMutableBufferPointer<JSONTape.Node>) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.nodes = nodes
    }

    @inline(__always)
    mutating func append(_ node: JSONTape.Node) {
        if nodeCount == nodes.count { grow() }
        (nodes.baseAddress! + nodeCount).initialize(to: node)
        nodeCount += 1
    }

    @inline(never)
    mutating func grow() {
        let larger = UnsafeMutableBufferPointer<JSONTape.Node>.allocate(capacity: max(256, 2 * nodes.count))
        _ = larger.initialize(fromContentsOf: UnsafeMutableBufferPointer(rebasing: nodes[0..<nodeCount]))
        nodes.deallocate()
        nodes = larger
    }

    func failure(_ message: String, at offset: Int? = nil) -> JSONTapeError {
        JSONTapeError(code: .invalidJSON, offset: offset ?? position, message: message)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            let byte = bytes[position]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            position += 1
        }
    }

    var describeHere: String {
        guard position < bytes.count else { return "the end" }
        let byte = bytes[position]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16)
    }

    mutating func parseDocument() throws(JSONTapeError) {
        skipWhitespace()
        guard position < bytes.count else { throw failure("empty record") }
        try parseValue(depth: 0)
        skipWhitespace()
        guard position == bytes.count else { throw failure("bytes after the JSON value") }
    }

    mutating func parseValue(depth: Int) throws(JSONTapeError) {
        skipWhitespace()
        guard position < bytes.count else { throw failure("a value was cut off") }
        let start = position
        switch bytes[position] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else {
                throw JSONTapeError(code: .tooDeep, offset: position, message: "nested deeper than \(maxDepth) levels")
            }
            let index = nodeCount
            append(JSONTape.Node(kind: .object, escaped: false, start: Int32(start), end: 0, next: 0))
            position += 1
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
            } else {
                while true {
                    skipWhitespace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                        throw failure("expected a key, found \(describeHere)")
                    }
                    try parseString()
                    skipWhitespace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                        throw failure("expected ':' after a key, found \(describeHere)")
                    }
                    position += 1
                    try parseValue(depth: depth + 1)
                    skipWhitespace()
                    guard position < bytes.count else { throw failure("an object was cut off") }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                        continue
                    }
                    guard bytes[position] == UInt8(ascii: "}") else { throw failure("expected ',' or '}', found \(describeHere)") }
                    position += 1
                    break
                }
            }
            nodes[index].end = Int32(position)
            nodes[index].next = Int32(nodeCount)
        case UInt8(ascii: "["):
            guard depth < maxDepth else {
                throw JSONTapeError(code: .tooDeep, offset: position, message: "nested deeper than \(maxDepth) levels")
            }
            let index = nodeCount
            append(JSONTape.Node(kind: .array, escaped: false, start: Int32(start), end: 0, next: 0))
            position += 1
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
            } else {
                while true {
                    try parseValue(depth: depth + 1)
                    skipWhitespace()
                    guard position < bytes.count else { throw failure("an array was cut off") }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                        continue
                    }
                    guard bytes[position] == UInt8(ascii: "]") else { throw failure("expected ',' or ']', found \(describeHere)") }
                    position += 1
                    break
                }
            }
            nodes[index].end = Int32(position)
            nodes[index].next = Int32(nodeCount)
        case UInt8(ascii: "\""):
            try parseString()
        case UInt8(ascii: "t"):
            try literal("true", .true)
        case UInt8(ascii: "f"):
            try literal("false", .false)
        case UInt8(ascii: "n"):
            try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try parseNumber()
        default:
            throw failure("expected a value, found \(describeHere)")
        }
    }

    mutating func literal(_ text: StaticString, _ kind: JSONTape.Kind) throws(JSONTapeError) {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count, memcmp(bytes.baseAddress! + position, text.utf8Start, count) == 0 else {
            throw failure("expected a value, found \(describeHere)")
        }
        append(JSONTape.Node(kind: kind, escaped: false, start: Int32(position), end: Int32(position + count), next: Int32(nodeCount + 1)))
        position += count
    }

    mutating func parseString() throws(JSONTapeError) {
        let open = position
        position += 1
        let start = position
        var escaped = false
        while true {
            // Runs of plain text (no quote, backslash or control character), eight bytes at a time.
            position = JSONWriter.endOfPlainText(bytes, from: position)
            guard position < bytes.count else { throw failure("a string was cut off", at: open) }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { break }
            if byte < 0x20 { throw failure("a control character inside a string") }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                guard position + 1 < bytes.count else { throw failure("a string was cut off", at: open) }
                switch bytes[position + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 2
                case UInt8(ascii: "u"):
                    guard position + 6 <= bytes.count else { throw failure("a \\u escape was cut off") }
                    for offset in 2..<6 {
                        let digit = bytes[position + offset]
                        let isHex =
                            (digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9"))
                            || (digit >= UInt8(ascii: "a") && digit <= UInt8(ascii: "f"))
                            || (digit >= UInt8(ascii: "A") && digit <= UInt8(ascii: "F"))
                        guard isHex else { throw failure("a \\u escape needs four hex digits") }
                    }
                    position += 6
                default:
                    throw failure("an unknown escape")
                }
                continue
            }
            position += 1
        }
        append(JSONTape.Node(kind: .string, escaped: escaped, start: Int32(start), end: Int32(position), next: Int32(nodeCount + 1)))
        position += 1
    }

    mutating func parseNumber() throws(JSONTapeError) {
        let start = position
        func digits(_ parser: inout Parser) -> Int {
            let first = parser.position
            while parser.position < parser.bytes.count, parser.bytes[parser.position] >= UInt8(ascii: "0"),
                parser.bytes[parser.position] <= UInt8(ascii: "9")
            {
                parser.position += 1
            }
            return parser.position - first
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let leading = position
        let integerDigits = digits(&self)
        guard integerDigits > 0 else { throw failure("a number needs digits") }
        guard integerDigits == 1 || bytes[leading] != UInt8(ascii: "0") else { throw failure("a number with a leading zero", at: leading) }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits(&self) > 0 else { throw failure("a fraction needs digits") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits(&self) > 0 else { throw failure("an exponent needs digits") }
        }
        append(JSONTape.Node(kind: .number, escaped: false, start: Int32(start), end: Int32(position), next: Int32(nodeCount + 1)))
    }
}
