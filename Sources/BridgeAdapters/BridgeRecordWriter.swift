import ChatEvents

/// One library event a writer made: its name, its payload (Baileys' `data`, wwebjs' `args`)
/// and the canonical events it means.
struct WrittenEvent {
    var event: String
    var body: JSONLiteral
    var meaning: [Event]
}

/// The writer of one format.
enum BridgeRecordWriter: Sendable {
    case baileys(BaileysRecordWriter)
    case wwebjs(WWebJSRecordWriter)

    mutating func write(_ event: Event) -> [WrittenEvent] {
        switch self {
        case .baileys(var writer):
            defer { self = .baileys(writer) }
            return writer.write(event)
        case .wwebjs(var writer):
            defer { self = .wwebjs(writer) }
            return writer.write(event)
        }
    }
}
