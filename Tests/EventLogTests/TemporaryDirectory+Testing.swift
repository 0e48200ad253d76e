import Foundation
import KafkaTestSupport

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String = "log") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Segment files of a partition directory, sorted.
    static func segments(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
            .map { directory + "/" + $0 }
    }
}

/// Values that depend only on the offset (the same rule as LogCrashWriter's).
func expectedValue(offset: Int64) -> [UInt8] { LogTestValues.value(offset: offset) }
