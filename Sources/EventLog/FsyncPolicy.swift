/// When appended records are forced to disk with `fdatasync`.
package enum FsyncPolicy: Sendable, Hashable, CustomStringConvertible {
    /// After every record.
    case always
    /// After every batch (`commit()`): the default.
    case batch
    /// At most every so many milliseconds; a commit in between is written, not synced.
    case interval(milliseconds: Int)
    /// Never (the OS writes back when it likes); only for throw-away data.
    case never

    /// Parses `always`, `batch`, `every:MS` or `never`.
    package init?(_ text: String) {
        switch text {
        case "always": self = .always
        case "batch": self = .batch
        case "never": self = .never
        default:
            guard text.hasPrefix("every:"), let milliseconds = Int(text.dropFirst(6)), milliseconds > 0 else { return nil }
            self = .interval(milliseconds: milliseconds)
        }
    }

    package var description: String {
        switch self {
        case .always: return "always"
        case .batch: return "batch"
        case .interval(let milliseconds): return "every:\(milliseconds)"
        case .never: return "never"
        }
    }
}
