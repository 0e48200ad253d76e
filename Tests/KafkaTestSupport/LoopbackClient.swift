#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct ClientError: Error {
    public var description: String
}

/// A blocking loopback client; every read gives up after 10 s so a server bug fails the
/// test instead of hanging it.
public struct LoopbackClient {
    public let fd: Int32

    public init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw ClientError(description: "connect: errno \(errno)") }
    }

    public func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = write(fd, &bytes, bytes.count)
    }

    /// Everything until the server closes the connection (`closed`), or until nothing
    /// arrives for the socket's receive timeout (not closed).
    public func readUntilClosed() -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 {
                if errno == EINTR { continue }
                return (String(decoding: received, as: UTF8.self), false)
            }
            received += chunk[..<count]
        }
    }

    /// Everything until the server closes the connection.
    public func readToEnd() -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            received += chunk[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Reads until `count` whole responses (head plus Content-Length body) have arrived.
    public func readResponses(_ count: Int) -> [String] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            let responses = Self.split(text)
            if responses.count >= count { return responses }
            let got = read(fd, &chunk, chunk.count)
            if got <= 0 { return responses }
            received += chunk[..<got]
        }
    }

    /// Reads until what arrived contains `marker` `times` times (or the server closes, or
    /// 10 s pass without a byte); everything read.
    public func readUntil(_ marker: String, times: Int = 1) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while String(decoding: received, as: UTF8.self).components(separatedBy: marker).count - 1 < times {
            let got = read(fd, &chunk, chunk.count)
            if got <= 0 { break }
            received += chunk[..<got]
        }
        return String(decoding: received, as: UTF8.self)
    }

    public static func split(_ text: String) -> [String] {
        var responses: [String] = []
        var rest = Substring(text)
        while let headEnd = rest.range(of: "\r\n\r\n") {
            let head = rest[..<headEnd.lowerBound]
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let bodyStart = headEnd.upperBound
            guard rest.distance(from: bodyStart, to: rest.endIndex) >= length else { break }
            let end = rest.index(bodyStart, offsetBy: length)
            responses.append(String(rest[..<end]))
            rest = rest[end...]
        }
        return responses
    }

    public func close() { Glibc.close(fd) }
}

