#if canImport(Glibc)
import Glibc
#endif
import CLedgerSystem
import LedgerSupport
import Synchronization

/// A small HTTP/1.1 server: one epoll loop on a dedicated thread, non-blocking sockets,
/// keep-alive and pipelining, HTTP/1.0. Every request goes through `HTTPRequestParser`'s
/// strict rules; a refused request is answered with its status and the connection closed.
/// A request head must arrive within `headerTimeout` (no slowloris) and an idle kept-alive
/// connection is closed after `idleTimeout`. `stop()` stops accepting, flushes what is
/// being written, closes everything and waits for the loop to end.
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0: any free port (see `start()`'s result).
        public var port: UInt16 = 8080
        public var limits = HTTPRequestParser.Limits()
        public var headerTimeoutMilliseconds = 10_000
        public var idleTimeoutMilliseconds = 60_000
        public var maxConnections = 1_024

        public init() {}
    }

    /// What a handler answers: a response now, or "not yet": the request is parked and
    /// asked again whenever the server is woken (`wake()`) until `deadline`, when
    /// `fallback` is sent instead. A parked request holds back later pipelined ones.
    public enum Reply: Sendable {
        case response(HTTPResponse)
        case retry(deadline: ContinuousClock.Instant, fallback: HTTPResponse)
    }

    /// Answers one request; runs on the server's loop thread, so it must not block.
    public typealias Handler = @Sendable (HTTPRequestHead, [UInt8]) -> Reply

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    private let configuration: Configuration
    private let handler: Handler
    private let stopping = Atomic<Bool>(false)
    private let wakeWrite = Atomic<Int32>(-1)
    private let loop = Mutex<Thread?>(nil)
    private let logger = Logger(label: "http")

    public init(configuration: Configuration, handler: @escaping Handler) {
        self.configuration = configuration
        self.handler = handler
    }

    /// Binds, listens and starts the loop; returns the port it listens on.
    public func start() throws -> UInt16 {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw StartError(description: "socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = configuration.port.bigEndian
        guard inet_pton(AF_INET, configuration.host, &address.sin_addr) == 1 else {
            close(listener)
            throw StartError(description: "not an IPv4 address: \(configuration.host)")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 511) == 0 else {
            let error = errno
            close(listener)
            throw StartError(description: "bind/listen \(configuration.host):\(configuration.port): errno \(error)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) }
        }
        var wake: [Int32] = [-1, -1]
        guard cl_pipe(&wake) == 0 else {
            close(listener)
            throw StartError(description: "pipe2: errno \(errno)")
        }
        wakeWrite.store(wake[1], ordering: .releasing)
        let (wakeRead, wakeWriteEnd) = (wake[0], wake[1])
        let thread = Thread { [self] in
            runLoop(listener: listener, wakeRead: wakeRead)
            close(wakeRead)
            close(wakeWriteEnd)
            close(listener)
        }
        loop.withLock { $0 = thread }
        thread.start()
        return UInt16(bigEndian: address.sin_port)
    }

    /// Makes the loop ask parked requests again now (call it when what they wait for may
    /// have happened, e.g. after events were applied). Safe from any thread.
    public func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite.load(ordering: .acquiring), &byte, 1)
    }

    /// Stops accepting, finishes writing in-flight responses, closes every connection and
    /// waits for the loop thread to end.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
        let thread = loop.withLock { thread in
            defer { thread = nil }
            return thread
        }
        thread?.join()
    }

    // MARK: - The loop

    private struct Connection {
        /// A request waiting for its handler to answer (see `Reply.retry`).
        var parked: (head: HTTPRequestHead, body: [UInt8], deadline: ContinuousClock.Instant, fallback: HTTPResponse)?
        var input: [UInt8] = []
        var output: [UInt8] = []
        var closeAfterWrite = false
        /// When the first byte of the request being read arrived.
        var requestStarted: ContinuousClock.Instant?
        var lastActivity = ContinuousClock.now
    }

    private func runLoop(listener: Int32, wakeRead: Int32) {
        let epoll = cl_epoll_create()
        defer { close(epoll) }
        watch(epoll, listener, UInt32(CL_EPOLLIN))
        watch(epoll, wakeRead, UInt32(CL_EPOLLIN))
        var connections: [Int32: Connection] = [:]
        var readyDescriptors = [Int32](repeating: 0, count: 64)
        var readyEvents = [UInt32](repeating: 0, count: 64)
        let parser = HTTPRequestParser(limits: configuration.limits)
        var drainDeadline: ContinuousClock.Instant?

        while true {
            if stopping.load(ordering: .acquiring) {
                if drainDeadline == nil {
                    drainDeadline = .now + .seconds(2)
                    cl_epoll_unwatch(epoll, listener)
                    for (fd, connection) in connections where connection.output.isEmpty && connection.parked == nil {
                        close(fd)
                        connections[fd] = nil
                    }
                }
                if connections.isEmpty || ContinuousClock.now > drainDeadline! { break }
            }
            let parkedDeadline = connections.values.compactMap { $0.parked?.deadline }.min()
            let timeout = parkedDeadline.map { max(0, min(100, Int32((($0 - .now) / .milliseconds(1)).rounded(.up)))) } ?? 100
            let count = cl_epoll_wait(epoll, &readyDescriptors, &readyEvents, 64, timeout)
            for index in 0..<max(0, Int(count)) {
                let fd = readyDescriptors[index]
                let flags = readyEvents[index]
                if fd == listener {
                    acceptAll(listener, epoll, &connections)
                } else if fd == wakeRead {
                    var drain = [UInt8](repeating: 0, count: 64)
                    while read(wakeRead, &drain, drain.count) > 0 {}
                } else if var connection = connections[fd] {
                    var open = true
                    if flags & UInt32(CL_EPOLLIN | CL_EPOLLHUP | CL_EPOLLERR | CL_EPOLLRDHUP) != 0 {
                        open = receive(fd, &connection, parser)
                    }
                    if open { open = flush(fd, epoll, &connection) }
                    if open {
                        connections[fd] = connection
                    } else {
                        close(fd)
                        connections[fd] = nil
                    }
                }
            }
            retryParked(epoll, parser, &connections)
            expireTimeouts(epoll, &connections)
        }
        for fd in connections.keys { close(fd) }
    }

    private func watch(_ epoll: Int32, _ fd: Int32, _ flags: UInt32, modify: Bool = false) {
        _ = cl_epoll_watch(epoll, fd, flags, modify ? 1 : 0)
    }

    private func acceptAll(_ listener: Int32, _ epoll: Int32, _ connections: inout [Int32: Connection]) {
        while true {
            let fd = cl_accept(listener)
            if fd < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: none left; anything else: try again on the next event
            }
            guard connections.count < configuration.maxConnections else {
                let busy = HTTPResponse.error(503, code: "too_many_connections", message: "the server is at its connection limit")
                    .encoded(keepAlive: false)
                _ = busy.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
                continue
            }
            connections[fd] = Connection()
            watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLRDHUP))
        }
    }

    /// Reads what is there and answers every whole request; false when the peer is gone.
    private func receive(_ fd: Int32, _ connection: inout Connection, _ parser: HTTPRequestParser) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var peerClosed = false
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count > 0 {
                if connection.input.isEmpty { connection.requestStarted = .now }
                connection.input.append(contentsOf: chunk[..<count])
                connection.lastActivity = .now
                if connection.input.count > configuration.limits.requestLineBytes + configuration.limits.headerBytes + configuration.limits.bodyBytes {
                    break  // the parser refuses it below; stop reading
                }
            } else if count == 0 {
                peerClosed = true
                break
            } else if errno == EINTR {
                continue
            } else {
                if errno != EAGAIN && errno != EWOULDBLOCK { return false }
                break
            }
        }
        answerRequests(&connection, parser)
        return !peerClosed || !connection.output.isEmpty
    }

    /// Answers whole requests from the input, in order, until one is parked or more bytes
    /// are needed.
    private func answerRequests(_ connection: inout Connection, _ parser: HTTPRequestParser) {
        while connection.parked == nil, !connection.closeAfterWrite, !connection.input.isEmpty {
            switch parser.parse(connection.input) {
            case .incomplete:
                return
            case .failure(let error):
                connection.output += HTTPResponse.error(error.status, code: "bad_request", message: error.reason).encoded(keepAlive: false)
                connection.closeAfterWrite = true
                connection.input = []
            case .request(let head, let body, let consumed):
                connection.input.removeFirst(consumed)
                connection.requestStarted = connection.input.isEmpty ? nil : .now
                switch handler(head, body) {
                case .response(let response):
                    send(response, for: head, on: &connection)
                case .retry(let deadline, let fallback):
                    connection.parked = (head, body, deadline, fallback)
                }
            }
        }
    }

    private func send(_ response: HTTPResponse, for head: HTTPRequestHead, on connection: inout Connection) {
        let keepAlive = head.keepAlive && !stopping.load(ordering: .acquiring)
        connection.output += response.encoded(keepAlive: keepAlive)
        if !keepAlive { connection.closeAfterWrite = true }
    }

    /// Asks every parked request again; past its deadline it gets its fallback.
    private func retryParked(_ epoll: Int32, _ parser: HTTPRequestParser, _ connections: inout [Int32: Connection]) {
        for (fd, var connection) in connections {
            guard let parked = connection.parked else { continue }
            let response: HTTPResponse
            if case .response(let ready) = handler(parked.head, parked.body) {
                response = ready
            } else if ContinuousClock.now >= parked.deadline || stopping.load(ordering: .acquiring) {
                response = parked.fallback
            } else {
                continue
            }
            connection.parked = nil
            send(response, for: parked.head, on: &connection)
            answerRequests(&connection, parser)
            if flush(fd, epoll, &connection) {
                connections[fd] = connection
            } else {
                close(fd)
                connections[fd] = nil
            }
        }
    }

    /// Writes what is pending; waits for EPOLLOUT when the socket is full. False when the
    /// connection should close now.
    private func flush(_ fd: Int32, _ epoll: Int32, _ connection: inout Connection) -> Bool {
        while !connection.output.isEmpty {
            let written = connection.output.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written > 0 {
                connection.output.removeFirst(written)
                connection.lastActivity = .now
            } else if written < 0 && errno == EINTR {
                continue
            } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLOUT | CL_EPOLLRDHUP), modify: true)
                return true
            } else {
                return false
            }
        }
        watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLRDHUP), modify: true)
        return !connection.closeAfterWrite && !stopping.load(ordering: .acquiring)
    }

    private func expireTimeouts(_ epoll: Int32, _ connections: inout [Int32: Connection]) {
        let now = ContinuousClock.now
        for (fd, var connection) in connections {
            if connection.parked == nil, let started = connection.requestStarted, connection.output.isEmpty,
                now - started > .milliseconds(configuration.headerTimeoutMilliseconds)
            {
                connection.output = HTTPResponse.error(408, code: "request_timeout", message: "the request did not arrive in time")
                    .encoded(keepAlive: false)
                connection.closeAfterWrite = true
                connection.input = []
                connection.requestStarted = nil
                if flush(fd, epoll, &connection) {
                    connections[fd] = connection
                } else {
                    close(fd)
                    connections[fd] = nil
                }
            } else if connection.parked == nil, connection.input.isEmpty, connection.output.isEmpty,
                now - connection.lastActivity > .milliseconds(configuration.idleTimeoutMilliseconds)
            {
                close(fd)
                connections[fd] = nil
            }
        }
    }
}
