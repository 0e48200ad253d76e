import EventLog
import LedgerSupport

/// `--retain-days`, `--retain-bytes` and `--archive-command` of `ingest` and `run` (SPEC §10).
enum RetentionOptions {
    static let retainDays = CommandSpec.Option(
        "retain-days", "N", "Remove a partition's log segments sealed more than N days ago (only those before the newest checkpoint).")
    static let retainBytes = CommandSpec.Option(
        "retain-bytes", "N", "Remove a partition's oldest log segments while it takes more than N bytes (only those before the newest checkpoint).")
    static let archiveCommand = CommandSpec.Option(
        "archive-command", "CMD", "Run CMD (by /bin/sh) with a segment's path appended before retention removes it; a non-zero exit keeps the segment.")

    /// The policy the options give (none set: retention off).
    static func policy(_ arguments: ParsedArguments) throws -> RetentionPolicy {
        let days = try arguments.integer("retain-days", in: 1...100_000)
        let bytes = try arguments.integer("retain-bytes", in: 1...Int.max)
        let archive = arguments.string("archive-command")
        if let archive, archive.allSatisfy(\.isWhitespace) { throw arguments.usageError("--archive-command needs a command") }
        if archive != nil && days == nil && bytes == nil {
            throw arguments.usageError("--archive-command needs --retain-days or --retain-bytes")
        }
        return RetentionPolicy(
            maxAgeMilliseconds: days.map { Int64($0) * 86_400_000 }, maxBytes: bytes.map(Int64.init), archiveCommand: archive)
    }
}
