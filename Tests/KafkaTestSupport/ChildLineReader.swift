#if canImport(Glibc)
import Glibc
#endif

/// Reads a child process's stdout line by line, blocking until each line is there (the
/// crash tests read what their SIGKILLed writers acknowledged).
public struct ChildLineReader {
    public let descriptor: Int32
    var pending: [UInt8] = []

    public init(descriptor: Int32) { self.descriptor = descriptor }

    /// The next line without its newline; nil at the end of the stream.
    public mutating func nextLine() -> String? {
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                defer { pending.removeSubrange(...newline) }
                return String(decoding: pending[..<newline], as: UTF8.self)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            pending.append(contentsOf: chunk[..<count])
        }
    }
}
