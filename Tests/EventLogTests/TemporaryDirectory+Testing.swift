import Foundation

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
func expectedValue(offset: Int64) -> [UInt8] {
    var state = UInt64(bitPattern: offset) &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<200).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
