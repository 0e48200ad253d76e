import Foundation

/// Times given by users (command line, query parameters): epoch milliseconds, or ISO 8601
/// (`2026-11-25T14:03:00Z`, with or without fractional seconds, any offset).
package enum TimeArgument {
    /// The time in epoch milliseconds; nil if `text` is neither form.
    package static func milliseconds(_ text: String) -> Int64? {
        if let value = Int64(text), value >= 0 { return value }
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        }
        return nil
    }
}

extension TimeArgument {
    /// Epoch milliseconds as ISO 8601 UTC with milliseconds, e.g. `2026-11-25T14:03:00.000Z`.
    package static func iso8601(milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
