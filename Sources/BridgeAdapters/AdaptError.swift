/// Why a record cannot be mapped: a dead letter's code and the field it concerns.
struct AdaptError: Error, CustomStringConvertible {
    var code: String
    var path: String
    var message: String

    static func missing(_ path: String) -> AdaptError { AdaptError(code: "missing_field", path: path, message: "is required") }

    static func wrongType(_ path: String, expected: String, found: JSONValue) -> AdaptError {
        AdaptError(code: "wrong_type", path: path, message: "must be \(expected), not \(found.kindName)")
    }

    static func invalid(_ path: String, _ message: String) -> AdaptError { AdaptError(code: "invalid_value", path: path, message: message) }

    var description: String { "\(path): \(message)" }
}
