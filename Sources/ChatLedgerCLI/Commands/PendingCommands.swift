import LedgerSupport

// Commands of the contract (SPEC §3) whose layers are not built yet. They parse their
// arguments like the finished ones will (so usage errors behave), then say plainly that
// they are not available and exit 69 (EX_UNAVAILABLE). They never pretend to work.

private func notBuilt(_ arguments: ParsedArguments, issue: Int) -> Int32 {
    writeStandardError(
        "chatledger \(arguments.command): not built yet (tracked in issue #\(issue)); nothing was done\n")
    return ChatLedgerCommand.notBuiltStatus
}

enum RunCommand: Command {
    static let spec = CommandSpec(
        name: "run", synopsis: "run [--brokers B] [--topic T] [--data DIR] [--http ADDR] [--keys FILE] [--demo]",
        summary: "Everything in one process: embedded broker unless --brokers, ingest, projections, query worker.",
        options: [
            .brokers, .topic, .data, .http, .keys, .flag("demo", "Feed realistic sample traffic."),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 { notBuilt(arguments, issue: 6) }
}

enum ServeCommand: Command {
    static let spec = CommandSpec(
        name: "serve", synopsis: "serve [--data DIR] [--http ADDR] --keys FILE",
        summary: "The query worker: follow the log that ingest writes and serve chat lists over HTTP.",
        options: [
            .data, .http,
            CommandSpec.Option("keys", "FILE", "API keys file (JSON, see README).", required: true),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 { notBuilt(arguments, issue: 6) }
}

enum ReplayCommand: Command {
    static let spec = CommandSpec(
        name: "replay", synopsis: "replay [--data DIR] --device D [--chat C] [--at-offset P:O | --as-of TIME]",
        summary: "A device's chat list (or one chat) exactly as it was at a log position or time.",
        options: [
            .data,
            CommandSpec.Option("device", "D", "The device.", required: true),
            CommandSpec.Option("chat", "C", "One chat instead of the whole list."),
            CommandSpec.Option("at-offset", "P:O", "Kafka partition:offset."),
            CommandSpec.Option("as-of", "TIME", "ISO 8601 or epoch milliseconds."),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        if arguments.string("at-offset") != nil && arguments.string("as-of") != nil {
            throw arguments.usageError("give either --at-offset or --as-of, not both")
        }
        return notBuilt(arguments, issue: 7)
    }
}

enum ExportCommand: Command {
    static let spec = CommandSpec(
        name: "export", synopsis: "export [--data DIR] [--device D] [--chat C] [--from TIME] [--to TIME]",
        summary: "The events as received, NDJSON on stdout.",
        options: [
            .data,
            CommandSpec.Option("device", "D", "Only this device."),
            CommandSpec.Option("chat", "C", "Only this chat."),
            CommandSpec.Option("from", "TIME", "From this time (ISO 8601 or epoch ms)."),
            CommandSpec.Option("to", "TIME", "Up to this time (ISO 8601 or epoch ms)."),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 { notBuilt(arguments, issue: 7) }
}
