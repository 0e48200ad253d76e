#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which one, and `errno`.
package struct SystemError: Error, Sendable, CustomStringConvertible {
    /// The call, e.g. `fdatasync`.
    package let call: String
    package let errno: Int32

    package init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    package var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Runs system calls: retries on `EINTR`, throws `SystemError` with `errno` otherwise.
package enum SystemCall {
    /// Writes all of `bytes` to `descriptor`, looping over short writes.
    /// - Throws: `SystemError` if `write` fails.
    package static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            offset += try run("write") { Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset) }
        }
    }

    /// Runs `body` until it returns something other than -1 with `EINTR`; returns its result.
    /// - Throws: `SystemError` when it returns -1 for any other reason.
    @inlinable
    @discardableResult
    package static func run<Result: BinaryInteger>(_ call: String, _ body: () -> Result) throws(SystemError) -> Result {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = errno
            if error == EINTR { continue }
            throw SystemError(call: call, errno: error)
        }
    }
}
