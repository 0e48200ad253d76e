import LedgerSupport

/// Anything that goes wrong with the event log, located: the file, the byte position and,
/// where known, the Kafka offset.
package struct EventLogError: Error, Sendable, CustomStringConvertible {
    private enum Kind: Sendable {
        case system(SystemError)
        case corruption(String)
        case invalidAppend(String)
    }

    private let kind: Kind
    /// The file concerned.
    package let path: String
    /// Byte position in the file, when the problem has one.
    package let byteOffset: Int?
    /// The Kafka offset of the record concerned (or the last good one before it).
    package let kafkaOffset: Int64?

    private init(_ kind: Kind, path: String, byteOffset: Int? = nil, kafkaOffset: Int64? = nil) {
        self.kind = kind
        self.path = path
        self.byteOffset = byteOffset
        self.kafkaOffset = kafkaOffset
    }

    /// A system call failed on `path`.
    static func system(_ error: SystemError, path: String) -> EventLogError {
        EventLogError(.system(error), path: path)
    }

    /// The log's content breaks a rule of the format (damage or tampering).
    static func corruption(_ what: String, path: String, byteOffset: Int?, kafkaOffset: Int64?) -> EventLogError {
        EventLogError(.corruption(what), path: path, byteOffset: byteOffset, kafkaOffset: kafkaOffset)
    }

    /// The caller asked for something the log cannot do (offsets going backwards, ...).
    static func invalidAppend(_ what: String, path: String) -> EventLogError {
        EventLogError(.invalidAppend(what), path: path)
    }

    /// Whether this is damage or tampering found in the data (as opposed to an I/O or usage error).
    package var isCorruption: Bool {
        if case .corruption = kind { return true }
        return false
    }

    package var description: String {
        var location = path
        if let byteOffset { location += " byte \(byteOffset)" }
        if let kafkaOffset { location += " (Kafka offset \(kafkaOffset))" }
        switch kind {
        case .system(let error): return "\(location): \(error)"
        case .corruption(let what): return "\(location): \(what)"
        case .invalidAppend(let what): return "\(location): invalid append: \(what)"
        }
    }
}
