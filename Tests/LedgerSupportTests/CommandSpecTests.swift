import LedgerSupport
import Testing

@Suite("CommandSpec argument parsing")
struct CommandSpecTests {
    let spec = CommandSpec(
        name: "demo", synopsis: "demo --name N [--count C] [--loud] FILE", summary: "A demo.",
        options: [
            CommandSpec.Option("name", "N", "A name.", required: true),
            CommandSpec.Option("count", "C", "A count.", default: "3"),
            .flag("loud", "Be loud."),
        ],
        positionals: ["FILE"])

    func arguments(_ words: [String]) throws -> ParsedArguments {
        guard case .arguments(let parsed) = try spec.parse(words) else { throw UsageError(command: "demo", "help") }
        return parsed
    }

    @Test("values, inline values, defaults, flags and positionals")
    func parsesEverything() throws {
        let parsed = try arguments(["--name", "x", "f.txt", "--loud"])
        #expect(parsed.string("name") == "x")
        #expect(try parsed.integer("count") == 3)
        #expect(parsed.flag("loud"))
        #expect(parsed.positionals == ["f.txt"])
        #expect(try arguments(["--name=y", "--count=7", "g"]).string("name") == "y")
        #expect(try arguments(["--name=y", "--count=7", "g"]).integer("count") == 7)
    }

    @Test("--help wins wherever it stands, even after a mistake", arguments: [
        ["--help"], ["--name", "x", "--help"], ["--bogus", "--help"], ["--help", "--name"],
    ])
    func helpWins(words: [String]) throws {
        guard case .help = try spec.parse(words) else {
            Issue.record("\(words) must ask for help")
            return
        }
    }

    @Test("each mistake is a usage error with a reason", arguments: [
        (["f"], "missing required option '--name'"),
        (["--name", "x"], "missing argument FILE"),
        (["--name", "x", "f", "g"], "unexpected argument 'g'"),
        (["--name"], "needs a value"),
        (["--name", "x", "--loud=yes", "f"], "takes no value"),
        (["--name", "x", "--name", "y", "f"], "given twice"),
        (["--nme", "x", "f"], "unknown option '--nme'"),
    ])
    func usageErrors(words: [String], reason: String) {
        let error = #expect(throws: UsageError.self) { try spec.parse(words) }
        #expect(error?.message.contains(reason) == true, "\(String(describing: error))")
    }

    @Test("integers are range-checked")
    func integerRange() throws {
        let parsed = try arguments(["--name", "x", "--count", "0", "f"])
        #expect(throws: UsageError.self) { try parsed.integer("count", in: 1...10) }
    }

    @Test("help lists every option with its default and requirement")
    func helpText() {
        #expect(spec.helpText.contains("--name N"))
        #expect(spec.helpText.contains("(required)"))
        #expect(spec.helpText.contains("(default: 3)"))
        #expect(spec.helpText.contains("--loud"))
    }
}
