/// A position in the log: a Kafka partition and offset, written `P:O`.
package struct LogPosition: Hashable, Sendable, Comparable, CustomStringConvertible {
    package var partition: Int32
    package var offset: Int64

    package init(partition: Int32, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }

    /// Parses `P:O`; nil unless both are non-negative integers.
    package init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let partition = Int32(parts[0]), let offset = Int64(parts[1]),
            partition >= 0, offset >= 0
        else { return nil }
        self.init(partition: partition, offset: offset)
    }

    package var description: String { "\(partition):\(offset)" }

    package static func < (lhs: LogPosition, rhs: LogPosition) -> Bool {
        (lhs.partition, lhs.offset) < (rhs.partition, rhs.offset)
    }
}
