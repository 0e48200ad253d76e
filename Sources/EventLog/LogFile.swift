#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

/// An open file of the log, with the few calls the log needs; every call goes through
/// `SystemCall` (EINTR retried) and failures name the path.
final class LogFile {
    let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    static func openForReading(_ path: String) throws(EventLogError) -> LogFile {
        LogFile(path: path, descriptor: try call(path, "open") { open(path, O_RDONLY | O_CLOEXEC) })
    }

    /// Opens for appending; `create` makes a new file and fails if it exists.
    static func openForAppending(_ path: String, create: Bool) throws(EventLogError) -> LogFile {
        let flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0)
        return LogFile(path: path, descriptor: try call(path, "open") { open(path, flags, 0o644) })
    }

    /// Writes all of `bytes` (looping over short writes).
    func write(_ bytes: UnsafeRawBufferPointer) throws(EventLogError) {
        var written = 0
        while written < bytes.count {
            written += try Self.call(path, "write") {
                Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            }
        }
    }

    func write(_ bytes: [UInt8]) throws(EventLogError) {
        try withBytes(bytes) { (raw) throws(EventLogError) in try write(raw) }
    }

    /// Reads up to `buffer.count` bytes at `position`; returns how many (0 at the end).
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws(EventLogError) -> Int {
        var total = 0
        while total < buffer.count {
            let count = try Self.call(path, "pread") {
                pread(descriptor, buffer.baseAddress! + total, buffer.count - total, off_t(position + total))
            }
            if count == 0 { break }
            total += count
        }
        return total
    }

    func size() throws(EventLogError) -> Int {
        var status = stat()
        try Self.call(path, "fstat") { fstat(descriptor, &status) }
        return Int(status.st_size)
    }

    /// Whether the file at this path is no longer this one (renamed over, as a redaction
    /// does, or removed).
    func isReplaced() -> Bool {
        var open = stat()
        var named = stat()
        guard fstat(descriptor, &open) == 0 else { return false }
        guard stat(path, &named) == 0 else { return true }
        return open.st_ino != named.st_ino || open.st_dev != named.st_dev
    }

    func dataSync() throws(EventLogError) {
        try Self.call(path, "fdatasync") { fdatasync(descriptor) }
    }

    func truncate(to length: Int) throws(EventLogError) {
        try Self.call(path, "ftruncate") { ftruncate(descriptor, off_t(length)) }
    }

    // MARK: - Whole files and directories

    /// The whole file.
    static func readAll(_ path: String) throws(EventLogError) -> [UInt8] {
        let file = try openForReading(path)
        let size = try file.size()
        var bytes = [UInt8](repeating: 0, count: size)
        let result = bytes.withUnsafeMutableBytes { raw in
            Result { () throws(EventLogError) in try file.read(into: raw, at: 0) }
        }
        let count = try result.get()
        return Array(bytes.prefix(count))
    }

    /// Replaces `path` with `bytes` atomically: temporary file, fsync, rename, directory fsync.
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(EventLogError) {
        let temporary = path + ".tmp"
        unlink(temporary)
        let file = try openForAppending(temporary, create: true)
        try file.write(bytes)
        try file.dataSync()
        try call(path, "rename") { rename(temporary, path) }
        try syncDirectory(containing: path)
    }

    /// Makes a directory entry change (create, rename, unlink) durable.
    static func syncDirectory(containing path: String) throws(EventLogError) {
        try syncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]))
    }

    static func syncDirectory(_ directory: String) throws(EventLogError) {
        let descriptor = try call(directory, "open") { open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(descriptor) }
        try call(directory, "fsync") { fsync(descriptor) }
    }

    /// Creates `directory` and its missing parents, syncing each parent it changes.
    static func makeDirectories(_ directory: String) throws(EventLogError) {
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            let parent = current.isEmpty ? "/" : current
            current += "/" + component
            if mkdir(current, 0o755) == 0 {
                try syncDirectory(parent)
            } else if errno != EEXIST {
                throw .system(SystemError(call: "mkdir", errno: errno), path: current)
            }
        }
    }

    /// Names in a directory (no `.` or `..`); empty if it does not exist.
    static func list(_ directory: String) throws(EventLogError) -> [String] {
        guard let handle = opendir(directory) else {
            if errno == ENOENT { return [] }
            throw .system(SystemError(call: "opendir", errno: errno), path: directory)
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func remove(_ path: String) throws(EventLogError) {
        try call(path, "unlink") { unlink(path) }
    }

    @discardableResult
    private static func call<Result: BinaryInteger>(_ path: String, _ name: String, _ body: () -> Result) throws(EventLogError) -> Result {
        do {
            return try SystemCall.run(name, body)
        } catch {
            throw .system(error, path: path)
        }
    }
}

/// `withUnsafeBytes` for typed throws (the standard library's `rethrows` widens to `any Error`).
func withBytes<Value>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(EventLogError) -> Value) throws(EventLogError) -> Value {
    let result = bytes.withUnsafeBytes { raw in Result { () throws(EventLogError) in try body(raw) } }
    return try result.get()
}
