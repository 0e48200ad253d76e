import ChatEvents

/// A JSON value built in code (the simulated bridges' records), written with `JSONWriter`.
indirect enum JSONLiteral: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
    case array([JSONLiteral])
    /// Members in order.
    case object([(String, JSONLiteral)])

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int64) { self = .integer(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }

    /// `value` as a string, or null when nil.
    static func optional(_ value: String?) -> JSONLiteral { value.map(JSONLiteral.string) ?? .null }

    var bytes: [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    func write(to writer: inout JSONWriter) {
        switch self {
        case .string(let value): writer.string(value)
        case .integer(let value): writer.integer(value)
        case .bool(let value): writer.bool(value)
        case .null: writer.null()
        case .array(let elements):
            writer.beginArray()
            for element in elements { element.write(to: &writer) }
            writer.endArray()
        case .object(let members):
            writer.beginObject()
            for (name, value) in members {
                writer.key(name)
                value.write(to: &writer)
            }
            writer.endObject()
        }
    }
}
