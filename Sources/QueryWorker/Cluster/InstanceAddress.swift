#if canImport(Glibc)
import Glibc
#endif

/// An instance's `--advertise` URL, `http://HOST:PORT` (no path, no TLS: instances talk
/// to each other inside the cluster network).
package struct InstanceAddress: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: UInt16

    /// Parses `http://HOST:PORT`; nil for anything else, credentials (`user:pw@`) included:
    /// the URL is shown in `X-Ledger-Instance`, logs and metrics.
    package init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        guard let colon = rest.lastIndex(of: ":"), !rest[..<colon].isEmpty,
            let port = UInt16(rest[rest.index(after: colon)...]), port > 0,
            !rest[..<colon].contains("/"), !rest.contains("@")
        else { return nil }
        host = String(rest[..<colon])
        self.port = port
    }

    package var description: String { "http://\(host):\(port)" }

    /// A connected blocking TCP socket, or nil when the instance cannot be reached within
    /// `timeoutMilliseconds` (refused, unreachable, unknown host). Reads and writes on it
    /// time out after `ioTimeoutMilliseconds`.
    func connect(timeoutMilliseconds: Int32, ioTimeoutMilliseconds: Int) -> Int32? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else { return nil }
        defer { freeaddrinfo(first) }
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
                guard errno == EINPROGRESS else {
                    close(fd)
                    continue
                }
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                var problem: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                guard poll(&poller, 1, timeoutMilliseconds) == 1, getsockopt(fd, SOL_SOCKET, SO_ERROR, &problem, &length) == 0, problem == 0 else {
                    close(fd)
                    continue
                }
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~Int32(O_NONBLOCK))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var timeout = timeval(tv_sec: ioTimeoutMilliseconds / 1000, tv_usec: (ioTimeoutMilliseconds % 1000) * 1000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            return fd
        }
        return nil
    }
}
