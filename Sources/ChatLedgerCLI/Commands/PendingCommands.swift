import LedgerSupport

// Commands of the contract (SPEC §3) whose layers are not built yet. They parse their
// arguments like the finished ones will (so usage errors behave), then say plainly that
// they are not available and exit 69 (EX_UNAVAILABLE). They never pretend to work.

private func notBuilt(_ arguments: ParsedArguments, issue: Int) -> Int32 {
    writeStandardError(
        "chatledger \(arguments.command): not built yet (tracked in issue #\(issue)); nothing was done\n")
    return ChatLedgerCommand.notBuiltStatus
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
