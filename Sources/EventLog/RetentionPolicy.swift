/// How much of each partition's log to keep (`--retain-days`, `--retain-bytes`,
/// `--archive-command`; SPEC §10). Only whole sealed segments whose records are all at or
/// before the newest checkpoint are ever removed, so the log still holds everything
/// after the state a restart loads.
package struct RetentionPolicy: Sendable, Hashable {
    /// Segments sealed longer ago than this are removed (nil: no age limit).
    package var maxAgeMilliseconds: Int64?
    /// The oldest segments are removed while a partition's files take more (nil: no limit).
    package var maxBytes: Int64?
    /// Run as `/bin/sh -c 'CMD "$1"' sh SEGMENT` before a segment is removed; a failure
    /// (non-zero exit) keeps the segment, and every later one, until the next attempt.
    package var archiveCommand: String?

    package init(maxAgeMilliseconds: Int64? = nil, maxBytes: Int64? = nil, archiveCommand: String? = nil) {
        self.maxAgeMilliseconds = maxAgeMilliseconds
        self.maxBytes = maxBytes
        self.archiveCommand = archiveCommand
    }

    /// Whether any limit is set.
    package var isEnabled: Bool { maxAgeMilliseconds != nil || maxBytes != nil }
}
