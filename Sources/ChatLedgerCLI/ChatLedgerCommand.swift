#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import LedgerSupport

/// One `chatledger` sub-command: its declared arguments and what it does with them.
protocol Command: Sendable {
    static var spec: CommandSpec { get }
    /// Runs with parsed arguments; returns the exit status.
    /// - Throws: `UsageError` for rules across options (exit 64); anything else is a
    ///   failure reported on stderr (exit 1).
    static func run(_ arguments: ParsedArguments) throws -> Int32
}

/// The `chatledger` command line: dispatches to a command, handles `--help` and usage errors.
package enum ChatLedgerCommand {
    static let commands: [any Command.Type] = [
        RunCommand.self, IngestCommand.self, AdaptCommand.self, ServeCommand.self, ProduceCommand.self, BrokerCommand.self,
        VerifyCommand.self, AcknowledgeLossCommand.self, ReplayCommand.self, ExportCommand.self, BenchCommand.self,
        EraseCommand.self,
    ]

    /// Runs the command line (without the program name) and returns the exit status.
    package static func main(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first else {
            writeStandardError(overview)
            return UsageError.exitStatus
        }
        if name == "--help" || name == "-h" || name == "help" {
            print(overview, terminator: "")
            return 0
        }
        guard let command = commands.first(where: { $0.spec.name == name }) else {
            writeStandardError(UsageError(command: "", "unknown command '\(name)'").description + "\n")
            return UsageError.exitStatus
        }
        do {
            switch try command.spec.parse(Array(arguments.dropFirst())) {
            case .help:
                print(command.spec.helpText, terminator: "")
                return 0
            case .arguments(let parsed):
                return try command.run(parsed)
            }
        } catch let error as UsageError {
            writeStandardError(error.description + "\n")
            return UsageError.exitStatus
        } catch {
            Logger(label: name).error("command failed", ["error": error])
            return 1
        }
    }

    /// The top-level help: every command with its summary.
    static var overview: String {
        var text = "Usage: chatledger COMMAND [OPTIONS]\n\nChatLedger: WhatsApp device events from Kafka into a verifiable event log and chat-list projections.\n\nCommands:\n"
        let specs = commands.map { command in command.spec }
        let width = specs.map { spec in spec.name.count }.max() ?? 0
        for spec in specs {
            text += "  " + spec.name + String(repeating: " ", count: width - spec.name.count + 3) + spec.summary + "\n"
        }
        return text + "\nRun 'chatledger COMMAND --help' for a command's options.\n"
    }
}

/// Writes to stderr without buffering.
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in try? SystemCall.writeAll(2, UnsafeRawBufferPointer(bytes)) }
}

/// Flushes buffered stdout (before blocking, so a reading process sees every line).
func flushStandardOutput() {
    fflush(nil)  // all output streams; stdout is the one that buffers
}

// MARK: - Shared options

extension CommandSpec.Option {
    static let brokers = CommandSpec.Option("brokers", "B", "Kafka bootstrap servers, host:port[,host:port].")
    static let topic = CommandSpec.Option("topic", "T", "Kafka topic of device events.", default: DeviceEventsTopic.defaultName)
    static let group = CommandSpec.Option("group", "G", "Kafka consumer group.", default: "chatledger")
    static let data = CommandSpec.Option("data", "DIR", "Data directory: event log, checkpoints.", default: "./data")
    static let http = CommandSpec.Option("http", "ADDR", "HTTP listen address.", default: "127.0.0.1:8080")
    static let keys = CommandSpec.Option("keys", "FILE", "API keys file (JSON, see README).")
}
