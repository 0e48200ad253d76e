import EventLog
import Foundation
import LedgerSupport

/// `chatledger acknowledge-loss`: an operator has seen the gaps in the log (records the
/// broker had lost before ingest read them). Appends every unacknowledged gap to
/// `DATA/acknowledged-gaps`; `/readyz` of `run`, `ingest` and `serve` on that directory
/// stops answering `data lost` at its next request. The gaps stay in the log: `verify`
/// still reports them and `verify --strict` still fails.
enum AcknowledgeLossCommand: Command {
    static let spec = CommandSpec(
        name: "acknowledge-loss", synopsis: "acknowledge-loss [--data DIR] [--topic T] [--note TEXT]",
        summary: "Acknowledge the log's gaps (records lost at the broker), so /readyz stops reporting them.",
        options: [
            .data, .topic,
            CommandSpec.Option("note", "TEXT", "Kept with each acknowledgement: who, why (one line)."),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        guard let data = ReadOnlyDataDirectory.existing(arguments, command: "acknowledge-loss") else { return 1 }
        let register = try GapRegister(log: EventLog(dataDirectory: data), topic: arguments.value(.topic))
        let note = arguments.string("note") ?? "acknowledged \(TimeArgument.iso8601(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)))"
        let acknowledged = try register.acknowledgeAll(note: note)
        for gap in acknowledged {
            print("acknowledged: \(gap)")
        }
        print("acknowledged \(acknowledged.count) of the log's \(register.gaps.count) gaps (\(register.acknowledgementsPath))")
        return 0
    }
}
