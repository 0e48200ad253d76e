#if canImport(Glibc)
import Glibc
#endif

/// A small structured logger: one logfmt line per record on stderr,
/// `time=… level=… label=… msg="…" key=value …`.
///
/// Each line goes out in a single `write(2)`, so lines from different threads never
/// interleave. The minimum level comes from `CHATLEDGER_LOG_LEVEL` (`debug`, `info`,
/// `notice`, `warning`, `error`; default `info`).
package struct Logger: Sendable {
    /// Severity, lowest first.
    package enum Level: Int, Sendable, Comparable, CaseIterable {
        case debug, info, notice, warning, error

        package var name: String {
            switch self {
            case .debug: return "debug"
            case .info: return "info"
            case .notice: return "notice"
            case .warning: return "warning"
            case .error: return "error"
            }
        }

        package static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The component the records come from, e.g. `produce`, `rdkafka`.
    package let label: String
    /// Records below this level are dropped.
    package var minimumLevel: Level
    private let sink: @Sendable (String) -> Void

    /// A logger writing to stderr at the level `CHATLEDGER_LOG_LEVEL` names.
    package init(label: String) {
        self.init(label: label, minimumLevel: Self.environmentLevel) { line in
            var line = line
            line.withUTF8 { bytes in try? SystemCall.writeAll(2, UnsafeRawBufferPointer(bytes)) }
        }
    }

    /// A logger handing finished lines (with trailing newline) to `sink`; for tests.
    package init(label: String, minimumLevel: Level, sink: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.minimumLevel = minimumLevel
        self.sink = sink
    }

    private static let environmentLevel: Level = {
        guard let raw = getenv("CHATLEDGER_LOG_LEVEL") else { return .info }
        let name = String(cString: raw).lowercased()
        return Level.allCases.first { $0.name == name } ?? .info
    }()

    package func debug(_ message: String, _ metadata: KeyValuePairs<String, Any> = [:]) {
        log(.debug, message, metadata)
    }

    package func info(_ message: String, _ metadata: KeyValuePairs<String, Any> = [:]) {
        log(.info, message, metadata)
    }

    package func notice(_ message: String, _ metadata: KeyValuePairs<String, Any> = [:]) {
        log(.notice, message, metadata)
    }

    package func warning(_ message: String, _ metadata: KeyValuePairs<String, Any> = [:]) {
        log(.warning, message, metadata)
    }

    package func error(_ message: String, _ metadata: KeyValuePairs<String, Any> = [:]) {
        log(.error, message, metadata)
    }

    /// Writes one record if `level` is at or above the minimum.
    package func log(_ level: Level, _ message: String, _ metadata: KeyValuePairs<String, Any> = [:]) {
        guard level >= minimumLevel else { return }
        var line = "time=" + Self.timestamp() + " level=" + level.name + " label=" + Self.quoted(label)
        line += " msg=" + Self.quoted(message)
        for (key, value) in metadata {
            line += " " + key + "=" + Self.quoted(String(describing: value))
        }
        line += "\n"
        sink(line)
    }

    /// A logfmt value: bare when it is a plain token, else in quotes with `"`, `\` and
    /// control characters escaped (so a record is always one line).
    static func quoted(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.utf8.contains { $0 <= 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") || $0 == 0x5C || $0 == 0x7F }
        guard needsQuotes else { return value }
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// UTC time as RFC 3339 with milliseconds.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return pad(parts.tm_year + 1900, 4) + "-" + pad(parts.tm_mon + 1, 2) + "-" + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + ":" + pad(parts.tm_min, 2) + ":" + pad(parts.tm_sec, 2) + "."
            + pad(Int32(now.tv_nsec / 1_000_000), 3) + "Z"
    }
}
