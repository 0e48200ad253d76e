/// Which fields of a record an erasure has replaced by redaction markers: the record's
/// flags byte (only in version 3 and 4 segments; the digest chain leaves it out).
public struct RedactedFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8

    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    public static let key = RedactedFields(rawValue: 1)
    public static let value = RedactedFields(rawValue: 2)
    public static let reason = RedactedFields(rawValue: 4)
    public static let all: RedactedFields = [.key, .value, .reason]
}
