import LedgerSupport

/// `chatledger bench NAME [--json]`: measured figures, as a table or one JSON object.
/// Speed is reported against a baseline measured in the same run wherever one exists.
enum BenchCommand: Command {
    static let spec = CommandSpec(
        name: "bench", synopsis: "bench NAME [--json] [--events N]",
        summary: "Run a benchmark (codec; later log, projection, ingest, http, verify) and print its figures.",
        options: [
            .flag("json", "Print one JSON object instead of a table."),
            CommandSpec.Option("events", "N", "Events to generate (default depends on the benchmark)."),
        ],
        positionals: ["NAME"])

    static let planned = ["log": 3, "projection": 4, "ingest": 5, "http": 6, "verify": 7]

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let name = arguments.positionals[0]
        let report: BenchReport
        switch name {
        case "codec":
            report = CodecBenchmark.run(events: try arguments.integer("events", in: 100...10_000_000) ?? 200_000)
        default:
            if let issue = planned[name] {
                writeStandardError("chatledger bench: '\(name)' is not built yet (tracked in issue #\(issue))\n")
                return ChatLedgerCommand.notBuiltStatus
            }
            throw arguments.usageError("unknown benchmark '\(name)' (known: codec, \(planned.keys.sorted().joined(separator: ", ")))")
        }
        print(report.render(json: arguments.flag("json")), terminator: "")
        return 0
    }
}
