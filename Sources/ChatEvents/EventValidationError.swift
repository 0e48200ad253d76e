/// Why a Kafka value is not a valid schema-v1 event, and where.
///
/// The `code` is stable and short (it labels dead-letter records and metrics); `path`
/// names the field (`data.messageIds[2]`, empty for the whole document) and `byteOffset`
/// the position in the raw value where the problem was seen.
package struct EventValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable reason.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case tooLarge = "too_large"
            case invalidJSON = "invalid_json"
            case invalidUTF8 = "invalid_utf8"
            case duplicateKey = "duplicate_key"
            case unknownField = "unknown_field"
            case missingField = "missing_field"
            case wrongType = "wrong_type"
            case invalidValue = "invalid_value"
            case tooLong = "too_long"
            case tooDeep = "too_deep"
            case unsupportedSchemaVersion = "unsupported_schema_version"
            case keyMismatch = "key_mismatch"
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// The value is larger than `EventLimits.maxEventBytes`.
        package static let tooLarge = Code(.tooLarge)
        /// Not JSON: a syntax error, trailing bytes, an empty value.
        package static let invalidJSON = Code(.invalidJSON)
        /// A string holds bytes that are not UTF-8 (or a lone surrogate escape).
        package static let invalidUTF8 = Code(.invalidUTF8)
        /// An object names the same key twice.
        package static let duplicateKey = Code(.duplicateKey)
        /// A key the schema does not define for this object.
        package static let unknownField = Code(.unknownField)
        /// A required field is absent.
        package static let missingField = Code(.missingField)
        /// A field holds the wrong JSON type (string for number, null, ...).
        package static let wrongType = Code(.wrongType)
        /// Right type, value not allowed (unknown enum value, negative time, empty id).
        package static let invalidValue = Code(.invalidValue)
        /// A string or list longer than its limit.
        package static let tooLong = Code(.tooLong)
        /// Nesting deeper than `EventLimits.maxDepth`.
        package static let tooDeep = Code(.tooDeep)
        /// `schemaVersion` is not one this build reads.
        package static let unsupportedSchemaVersion = Code(.unsupportedSchemaVersion)
        /// The Kafka key is not the event's `deviceId`.
        package static let keyMismatch = Code(.keyMismatch)

        /// Every code, for metrics that list each reason.
        package static let all: [Code] = [
            .tooLarge, .invalidJSON, .invalidUTF8, .duplicateKey, .unknownField, .missingField,
            .wrongType, .invalidValue, .tooLong, .tooDeep, .unsupportedSchemaVersion, .keyMismatch,
        ]

        /// The code as written in dead-letter records, e.g. `missing_field`.
        package var description: String { base.rawValue }

        /// Looks a code up by its written form.
        package init?(_ text: String) {
            guard let base = Base(rawValue: text) else { return nil }
            self.base = base
        }
    }

    /// The reason.
    package let code: Code
    /// The field, as `data.lastMessage.id` or `data.participants[3]`; empty for the document.
    package let path: String
    /// Byte position in the raw value where the problem was detected.
    package let byteOffset: Int
    /// A human-readable explanation.
    package let message: String

    /// Creates an error; the parser is the usual source.
    package init(code: Code, path: String, byteOffset: Int, message: String) {
        self.code = code
        self.path = path
        self.byteOffset = byteOffset
        self.message = message
    }

    package var description: String {
        let field = path.isEmpty ? "event" : path
        return "\(field): \(message) (\(code), byte \(byteOffset))"
    }
}
