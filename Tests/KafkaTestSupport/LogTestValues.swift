/// Record values that depend only on their offset, so a test can check any record byte for
/// byte without remembering what was written (shared by the log tests and LogCrashWriter).
public enum LogTestValues {
    /// 200 bytes derived from `offset` (xorshift).
    public static func value(offset: Int64) -> [UInt8] {
        var state = UInt64(bitPattern: offset) &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<200).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }
}
