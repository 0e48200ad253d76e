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

    /// The segment size that lets the byte limit be kept: retention removes whole sealed
    /// segments, so a segment is at most a quarter of `maxBytes` (at least 64 KiB), never
    /// more than `limit` (the size without retention).
    package func segmentBytes(atMost limit: Int) -> Int {
        guard let maxBytes else { return limit }
        return min(limit, max(64 << 10, Int(min(maxBytes / 4, Int64(Int.max)))))
    }

    /// How long a segment is written to before it is sealed, so the age limit finds sealed
    /// segments on a quiet partition: a quarter of `maxAgeMilliseconds`, at least a minute
    /// (nil without an age limit: segments are sealed by size only).
    package var segmentAgeMilliseconds: Int64? {
        maxAgeMilliseconds.map { max(60_000, $0 / 4) }
    }
}
