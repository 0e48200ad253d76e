#if canImport(Glibc)
import Glibc
#endif
import ChatProjection
import EventLog
import Foundation
import LedgerSupport

/// `chatledger export`: the events as received, NDJSON on stdout, one per line: each
/// event's value exactly as received (`AuditLog.EventLine.asReceived`), or with
/// `--with-position` `{"partition":P,"offset":O,"timestamp":T,"event":<the value as received>}`.
/// Filters by device, chat and `occurredAt` range; streams partition by partition in
/// offset order (a device's events are all in one partition, in order) with constant memory.
enum ExportCommand: Command {
    static let spec = CommandSpec(
        name: "export", synopsis: "export [--data DIR] [--topic T] [--device D] [--chat C] [--from TIME] [--to TIME] [--with-position]",
        summary: "The events as received, one per line (NDJSON) on stdout; --with-position adds their Kafka coordinates.",
        options: [
            .data, .topic,
            CommandSpec.Option("device", "D", "Only this device."),
            CommandSpec.Option("chat", "C", "Only this chat, under any id of its contact (contact.aliased links a LID to the phone id)."),
            CommandSpec.Option("from", "TIME", "Events with occurredAt at or after this (ISO 8601 or epoch ms)."),
            CommandSpec.Option("to", "TIME", "Events with occurredAt at or before this (ISO 8601 or epoch ms)."),
            .flag(
                "with-position",
                #"Wrap each event with its Kafka coordinates: {"partition":P,"offset":O,"timestamp":T,"event":<as received>}."#),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        var from: Int64 = .min
        var to: Int64 = .max
        if let text = arguments.string("from") {
            guard let value = TimeArgument.milliseconds(text) else { throw arguments.usageError("--from takes ISO 8601 or epoch ms") }
            from = value
        }
        if let text = arguments.string("to") {
            guard let value = TimeArgument.milliseconds(text) else { throw arguments.usageError("--to takes ISO 8601 or epoch ms") }
            to = value
        }
        guard from <= to else { throw arguments.usageError("--from is after --to: no event can be in between") }
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
