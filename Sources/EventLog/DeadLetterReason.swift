/// Why a value became a dead letter, as a dead-letter record's reason field stores it:
/// one grammar, `CODE PATH: MESSAGE` (`schemas/event-log.md`), written and read only here.
///
/// `CODE` is the stable reason (`missing_field`: no space, no colon), `PATH` the field
/// (`data.messageIds[2]`; empty for the whole value, which leaves `CODE : MESSAGE`), and
/// `MESSAGE` the explanation for a person.
package struct DeadLetterReason: Sendable, Hashable, CustomStringConvertible {
    /// The stable, machine-readable reason (what metrics and `verify` count by).
    package var code: String
    /// The field the problem is in; empty for the whole value.
    package var path: String
    /// A human-readable explanation.
    package var message: String

    /// A reason from its parts; `code` must hold no space or colon. A path or message
    /// longer than `maxPathBytes` / `maxMessageBytes` is cut there (they can quote what an
    /// outsider sent: a 70 KB Kafka key, a field name of any length), marked with `…`.
    package init(code: String, path: String, message: String) {
        self.code = code
        self.path = Self.cut(path, to: Self.maxPathBytes)
        self.message = Self.cut(message, to: Self.maxMessageBytes)
    }

    package static let maxPathBytes = 256
    package static let maxMessageBytes = 1_024

    /// `text`, or its longest prefix of whole characters within `limit` bytes followed by `…`.
    static func cut(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var kept = 0
        var end = text.startIndex
        for index in text.indices {
            let next = text.index(after: index)
            let size = text.utf8.distance(from: index, to: next)
            guard kept + size <= limit - 3 else { break }  // room for "…" (3 bytes)
            kept += size
            end = next
        }
        return String(text[..<end]) + "…"
    }

    /// Reads a stored reason. The code is everything before the first space or colon (so a
    /// reason written by hand, `invalid_json: ...`, still counts by its code); the path is
    /// what comes between it and the first `": "`.
    package init(parsing text: String) {
        let codeEnd = text.firstIndex { $0 == " " || $0 == ":" } ?? text.endIndex
        code = String(text[..<codeEnd])
        var rest = text[codeEnd...].drop { $0 == " " }
        if let separator = rest.range(of: ": ") ?? (rest.hasPrefix(":") ? rest.startIndex..<rest.index(after: rest.startIndex) : nil) {
            path = String(rest[..<separator.lowerBound])
            rest = rest[separator.upperBound...]
        } else {
            path = ""
        }
        message = String(rest)
    }

    /// The stored form, `CODE PATH: MESSAGE`.
    package var description: String { "\(code) \(path): \(message)" }
}
