/// The declared shape of one command: its options, positional arguments and help.
///
/// Parsing is hand-written and strict: unknown options, missing values, repeated
/// options (unless declared repeatable) and stray arguments are usage errors (exit 64),
/// each with a one-line reason.
package struct CommandSpec: Sendable {
    /// One `--name [VALUE]` option.
    package struct Option: Sendable {
        /// The name without dashes, e.g. `brokers`.
        package var name: String
        /// The placeholder shown in help (`B`, `DIR`); nil for a flag that takes no value.
        package var valueName: String?
        package var help: String
        /// Shown in help and used when the option is absent.
        package var defaultValue: String?
        package var isRequired: Bool
        /// May be given more than once; every value is kept (`ParsedArguments.strings`).
        package var isRepeatable: Bool

        package init(
            _ name: String, _ valueName: String?, _ help: String, default defaultValue: String? = nil, required: Bool = false,
            repeatable: Bool = false
        ) {
            self.name = name
            self.valueName = valueName
            self.help = help
            self.defaultValue = defaultValue
            self.isRequired = required
            self.isRepeatable = repeatable
        }

        /// A flag: present or not.
        package static func flag(_ name: String, _ help: String) -> Option {
            Option(name, nil, help)
        }
    }

    package var name: String
    /// The one-line synopsis after `chatledger`, e.g. `produce --brokers B (--file F | --simulate)`.
    package var synopsis: String
    package var summary: String
    package var options: [Option]
    /// Names of positional arguments, in order; all required.
    package var positionals: [String]

    package init(name: String, synopsis: String, summary: String, options: [Option], positionals: [String] = []) {
        self.name = name
        self.synopsis = synopsis
        self.summary = summary
        self.options = options
        self.positionals = positionals
    }

    /// The `--help` text.
    package var helpText: String {
        var text = "Usage: chatledger \(synopsis)\n\n\(summary)\n\nOptions:\n"
        let rows = options.map { option in
            ("--\(option.name)" + (option.valueName.map { " \($0)" } ?? ""), option)
        } + [("--help", Option.flag("help", "Show this help."))]
        let width = rows.map(\.0.count).max() ?? 0
        for (left, option) in rows {
            var line = "  " + left + String(repeating: " ", count: width - left.count + 3) + option.help
            if let defaultValue = option.defaultValue { line += " (default: \(defaultValue))" }
            if option.isRequired { line += " (required)" }
            if option.isRepeatable { line += " (repeatable)" }
            text += line + "\n"
        }
        return text
    }

    /// What parsing found: either a request for help or the arguments.
    package enum Outcome: Sendable {
        case help
        case arguments(ParsedArguments)
    }

    /// Parses the arguments after the command name.
    /// - Throws: `UsageError` naming the first problem.
    package func parse(_ arguments: [String]) throws(UsageError) -> Outcome {
        // `--help` anywhere asks for help, even after a mistake.
        if arguments.contains("--help") { return .help }
        var values: [String: String] = [:]
        var repeated: [String: [String]] = [:]
        var flags: Set<String> = []
        var positionalValues: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                guard positionalValues.count < positionals.count else {
                    throw UsageError(command: name, "unexpected argument '\(argument)'")
                }
                positionalValues.append(argument)
                continue
            }
            var optionName = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = optionName.firstIndex(of: "=") {
                inlineValue = String(optionName[optionName.index(after: equals)...])
                optionName = String(optionName[..<equals])
            }
            guard let option = options.first(where: { $0.name == optionName }) else {
                throw UsageError(command: name, "unknown option '--\(optionName)'")
            }
            guard option.isRepeatable || (values[optionName] == nil && !flags.contains(optionName)) else {
                throw UsageError(command: name, "option '--\(optionName)' given twice")
            }
            if option.valueName == nil {
                guard inlineValue == nil else { throw UsageError(command: name, "option '--\(optionName)' takes no value") }
                flags.insert(optionName)
            } else if let inlineValue {
                values[optionName] = inlineValue
                repeated[optionName, default: []].append(inlineValue)
            } else {
                guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                    throw UsageError(command: name, "option '--\(optionName)' needs a value")
                }
                values[optionName] = arguments[index]
                repeated[optionName, default: []].append(arguments[index])
                index += 1
            }
        }
        for option in options where option.isRequired && values[option.name] == nil {
            throw UsageError(command: name, "missing required option '--\(option.name)'")
        }
        guard positionalValues.count == positionals.count else {
            throw UsageError(command: name, "missing argument \(positionals[positionalValues.count])")
        }
        for option in options where values[option.name] == nil {
            if let defaultValue = option.defaultValue { values[option.name] = defaultValue }
        }
        return .arguments(ParsedArguments(command: name, values: values, repeated: repeated, flags: flags, positionals: positionalValues))
    }
}

/// Arguments that passed `CommandSpec.parse`, with typed accessors that throw usage errors.
package struct ParsedArguments: Sendable {
    package let command: String
    private let values: [String: String]
    private let repeated: [String: [String]]
    private let flags: Set<String>
    package let positionals: [String]

    init(command: String, values: [String: String], repeated: [String: [String]] = [:], flags: Set<String>, positionals: [String]) {
        self.command = command
        self.values = values
        self.repeated = repeated
        self.flags = flags
        self.positionals = positionals
    }

    /// The option's value (or its default), nil when absent; for a repeatable option, the last.
    package func string(_ name: String) -> String? { values[name] }

    /// The value of an option declared with a default: as given, else that default (the
    /// one place it is written).
    package func value(_ option: CommandSpec.Option) -> String { values[option.name] ?? option.defaultValue ?? "" }

    /// Every value given for a repeatable option, in order (empty when absent).
    package func strings(_ name: String) -> [String] { repeated[name] ?? [] }

    /// Whether a flag was given.
    package func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The option as an integer in `range`, nil when absent.
    package func integer(_ name: String, in range: ClosedRange<Int> = Int.min...Int.max) throws(UsageError) -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError(command: command, "option '--\(name)' needs an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return value
    }

    /// A usage error for this command (for rules across options).
    package func usageError(_ message: String) -> UsageError {
        UsageError(command: command, message)
    }
}

/// A command-line mistake: printed as one line, exit status 64 (`EX_USAGE`).
package struct UsageError: Error, Sendable, CustomStringConvertible {
    /// `EX_USAGE` from sysexits.h.
    package static let exitStatus: Int32 = 64

    package let command: String
    package let message: String

    package init(command: String, _ message: String) {
        self.command = command
        self.message = message
    }

    package var description: String {
        "chatledger\(command.isEmpty ? "" : " " + command): \(message) (see 'chatledger \(command.isEmpty ? "" : command + " ")--help')"
    }
}
