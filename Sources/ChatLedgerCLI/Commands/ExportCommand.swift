#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport

/// `chatledger export`: the events as received, NDJSON on stdout, one per line: each
/// event's value exactly as received (`AuditLog.EventLine.asReceived`), or with
/// `--with-position` `{"partition":P,"offset":O,"timestamp":T,"event":<the value as received>}`.
/// Filters by device, chat and `occurredAt` range; streams partition by partition in
/// offset order (a device's events are all in one partition, in order) with constant memory.
/// `--dead-letters` lists the records ingest kept as dead letters instead (see `deadLetterLine`).
enum ExportCommand: Command {
    static let spec = CommandSpec(
        name: "export", synopsis: "export [--data DIR] [--topic T] [--device D] [--chat C] [--from TIME] [--to TIME] [--with-position | --dead-letters]",
        summary: "The events as received, one per line (NDJSON) on stdout; --with-position adds their Kafka coordinates.",
        options: [
            .data, .topic,
            CommandSpec.Option("device", "D", "Only this device (with --dead-letters: records keyed by it)."),
            CommandSpec.Option("chat", "C", "Only this chat, under any id of its contact (contact.aliased links a LID to the phone id)."),
            CommandSpec.Option("from", "TIME", "Events with occurredAt at or after this (ISO 8601 or epoch ms)."),
            CommandSpec.Option("to", "TIME", "Events with occurredAt at or before this (ISO 8601 or epoch ms)."),
            .flag(
                "with-position",
                #"Wrap each event with its Kafka coordinates: {"partition":P,"offset":O,"timestamp":T,"event":<as received>}."#),
            .flag(
                "dead-letters",
                #"The records ingest kept as dead letters instead of events, one JSON object per line: {"partition":P,"offset":O,"timestamp":T,"reason":"code: path: message","key":…,"value":…} (key and value as text, or keyBase64/valueBase64 when not UTF-8; null when absent). --from/--to filter on the Kafka timestamp."#),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        if arguments.flag("dead-letters") { return try exportDeadLetters(arguments) }
        let (from, to) = try timeRange(arguments)
        var filter = AuditLog.EventFilter(deviceId: arguments.string("device"), chatId: arguments.string("chat"), from: from, to: to)
        guard let data = ReadOnlyDataDirectory.existing(arguments, command: "export") else { return 1 }
        let audit = AuditLog(dataDirectory: data, topic: arguments.value(.topic))
        // A contact's events under its other id (a LID beside the phone id) are the chat's too.
        if let chatId = filter.chatId { filter.chatAliases = try audit.chatAliases(of: chatId, deviceId: filter.deviceId) }
        var output = OutputBuffer()
        let form: AuditLog.EventLine = arguments.flag("with-position") ? .withPosition : .asReceived
        try audit.events(filter, line: form) { line in
            output.append(line)
            output.append(CollectionOfOne(UInt8(ascii: "\n")))
            return true
        }
        output.flush()
        return 0
    }
}

/// Buffered writes to stdout (file descriptor 1), flushed every 64 KiB and at the end.
struct OutputBuffer {
    private var bytes: [UInt8] = []

    mutating func append(_ more: some Collection<UInt8>) {
        bytes.append(contentsOf: more)
        if bytes.count >= 64 * 1024 { flush() }
    }

    mutating func flush() {
        bytes.withUnsafeBytes { raw in try? SystemCall.writeAll(1, raw) }
        bytes.removeAll(keepingCapacity: true)
    }
}

extension ExportCommand {
    /// `export --dead-letters`: every dead-letter record of the topic's partitions (or of
    /// `--device`'s key), in log order, with its Kafka coordinates, reason and bytes.
    static func exportDeadLetters(_ arguments: ParsedArguments) throws -> Int32 {
        guard arguments.string("chat") == nil, !arguments.flag("with-position") else {
            throw arguments.usageError("--dead-letters goes without --chat and --with-position (a dead letter has no chat; it always has its position)")
        }
        let (from, to) = try timeRange(arguments)
        guard let data = ReadOnlyDataDirectory.existing(arguments, command: "export") else { return 1 }
        let topic = arguments.value(.topic)
        let log = EventLog(dataDirectory: data)
        let device = arguments.string("device").map { Array($0.utf8) }
        var output = OutputBuffer()
        for partition in try log.partitions().filter({ $0.topic == topic }).map(\.partition).sorted() {
            try log.reader(topic: topic, partition: partition).forEach { record in
                guard record.kind == .deadLetter, record.timestamp >= from, record.timestamp <= to else { return true }
                if let device, !(record.key.map { $0.elementsEqual(device) } ?? false) { return true }
                output.append(deadLetterLine(record))
                output.append(CollectionOfOne(UInt8(ascii: "\n")))
                return true
            }
        }
        output.flush()
        return 0
    }

    /// `--from` and `--to` (inclusive; unbounded when left out).
    static func timeRange(_ arguments: ParsedArguments) throws -> (from: Int64, to: Int64) {
        var bounds: [Int64] = []
        for (name, unbounded) in [("from", Int64.min), ("to", Int64.max)] {
            guard let text = arguments.string(name) else {
                bounds.append(unbounded)
                continue
            }
            guard let value = TimeArgument.milliseconds(text) else { throw arguments.usageError("--\(name) takes ISO 8601 or epoch ms") }
            bounds.append(value)
        }
        guard bounds[0] <= bounds[1] else { throw arguments.usageError("--from is after --to: nothing can be in between") }
        return (bounds[0], bounds[1])
    }

    /// One dead letter as a JSON object (without the line feed).
    static func deadLetterLine(_ record: RecordView) -> [UInt8] {
        var line = JSONWriter()
        line.beginObject()
        line.field("partition", Int64(record.partition))
        line.field("offset", record.offset)
        line.field("timestamp", record.timestamp)
        line.field("reason", String(decoding: record.reason, as: UTF8.self))
        for (name, bytes) in [("key", record.key), ("value", record.value)] {
            guard let bytes else {
                line.key(name)
                line.null()
                continue
            }
            if let text = String(validating: bytes, as: UTF8.self) {
                line.field(name, text)
            } else {
                line.field(name + "Base64", Data(bytes).base64EncodedString())
            }
        }
        line.endObject()
        return line.bytes
    }
}
