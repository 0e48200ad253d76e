#if canImport(Glibc)
import Glibc
#endif

/// A TCP port on 127.0.0.1 that nothing listens on right now (bound to port 0, read,
/// released), for a process that must know its address before it listens: a cluster
/// instance's `--advertise` URL, the nginx reference, a TLS proxy in tests. Another
/// process may take it before it is used; callers start at once.
package enum LoopbackPort {
    /// The kernel gave no port (`errno` at the time).
    package struct Unavailable: Error, CustomStringConvertible {
        package var errno: Int32
        package var description: String { "no free port on 127.0.0.1: errno \(errno)" }
    }

    /// A free port.
    /// - Throws: `Unavailable` if the kernel would not give one.
    package static func free() throws(Unavailable) -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Unavailable(errno: errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Unavailable(errno: errno) }
        return UInt16(bigEndian: address.sin_port)
    }
}
