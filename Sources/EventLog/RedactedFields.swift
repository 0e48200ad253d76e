/// Which fields of a record an erasure has replaced by redaction markers: the record's
/// flags byte (only in version 3 and 4 segments; the digest chain leaves it out).
package struct RedactedFields: OptionSet, Sendable, Hashable {
    package let rawValue: UInt8

    package init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    package static let key = RedactedFields(rawValue: 1)
    package static let value = RedactedFields(rawValue: 2)
    package static let reason = RedactedFields(rawValue: 4)
    package static let all: RedactedFields = [.key, .value, .reason]
}
