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
package final class HTTPServer: Sendable {
    package struct Configuration: Sendable {
        package var host = "127.0.0.1"
        /// 0: any free port (see `start()`'s result).
        package var port: UInt16 = 8080
        package var limits = HTTPRequestParser.Limits()
        package var headerTimeoutMilliseconds = 10_000
        package var idleTimeoutMilliseconds = 60_000
        /// At this many connections, a new one takes the place of the connection that has
        /// been idle longest with no request in progress (as nginx reuses connections); only
        /// when every connection is busy is the new one refused (503).
        package var maxConnections = 1_024
        /// How long a connection closed after a response (an error, `Connection: close`) is
        /// drained once its write side is shut, so the client reads the response instead
        /// of a reset.
        package var lingerMilliseconds = 2_000
        /// Threads that run `Reply.deferred` work.
        package var workerThreads = 2
        /// A stream with nothing to say for this long sends an SSE comment line, so that
        /// proxies and clients see the connection is alive.
        package var streamHeartbeatMilliseconds = 15_000

        package init() {}
    }

    /// What a handler answers. A request that is not answered at once holds back later
    /// pipelined ones on its connection.
    package enum Reply: Sendable {
        /// The response, now.
        case response(HTTPResponse)
        /// "Not yet": the request is parked and asked again whenever the server is woken
        /// (`wake()`) until `deadline`, when `fallback` is sent instead.
        case retry(deadline: ContinuousClock.Instant, fallback: HTTPResponse)
        /// Work that may block or take long (a replay): it runs on one of the server's
        /// worker threads, off the loop, and its response is sent when it is done.
        case deferred(@Sendable () -> HTTPResponse)
        /// Work another thread finishes (a Kafka delivery), holding no thread meanwhile:
        /// `start` runs on the loop thread and must not block; it calls `complete` once, from
        /// any thread (or before it returns), with what to do next (a response, or `awaiting`
        /// something). If `complete` has not been called by `deadline`, `fallback` is sent
        /// and a late `complete` is ignored.
        case pending(
            deadline: ContinuousClock.Instant, fallback: HTTPResponse,
            start: @Sendable (_ complete: @escaping @Sendable (Reply) -> Void) -> Void)
        /// "Not yet", asked again through `check` instead of the handler, for a request that
        /// must not be handled twice (one that produced an event): parked, `check` is called
        /// on the loop thread whenever the server is woken (it must not block) until it
        /// gives a response, or `deadline`, when `fallback` is sent.
        case awaiting(deadline: ContinuousClock.Instant, fallback: HTTPResponse, check: @Sendable () -> HTTPResponse?)
        /// A response whose body never ends (Server-Sent Events): `head`'s status and
        /// headers, then whatever `stream` yields, until the client goes away.
        case stream(head: HTTPResponse, HTTPStream)
    }

    /// Answers one request; runs on the server's loop thread, so it must not block.
    package typealias Handler = @Sendable (HTTPRequestHead, [UInt8]) -> Reply

    /// Told of every response sent for a request: its status and how long it took from the
    /// request's arrival (for metrics).
    package typealias Observer = @Sendable (HTTPRequestHead, _ status: HTTPStatus, _ elapsed: Duration) -> Void

    package struct StartError: Error, CustomStringConvertible {
        package var description: String
    }

    private let configuration: Configuration
    private let handler: Handler
    private let observer: Observer?
    private let stopping = Atomic<Bool>(false)
    /// Where the server is in its life, and the descriptors each stage owns. Every use of
    /// the wake pipe's write end happens under this lock and only in a stage that holds it,
    /// so nothing (a Kafka completion or a deferred replay finishing after `stop()`) can
    /// write to a descriptor number that was closed and perhaps reused for a file.
    private let lifecycle = Mutex(Lifecycle.idle)
    private let workers = DeferredWork()
    /// Numbers the requests answered off the loop, so a late answer never reaches a later request.
    private let tickets = Atomic<UInt64>(0)
    private let logger = Logger(label: "http")

    package init(configuration: Configuration, observer: Observer? = nil, handler: @escaping Handler) {
        self.configuration = configuration
        self.observer = observer
        self.handler = handler
    }

    /// Binds, listens and starts the loop; returns the port it listens on.
    package func start() throws -> UInt16 {
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
        let wakeRead = wake[0]
        // The loop thread owns the listener and closes it when it ends. The wake pipe
        // belongs to the lifecycle: `stop()` closes both ends once no thread that could wake
        // the loop is left (a write end whose read end is closed would raise SIGPIPE).
        let thread = LedgerThread { [self] in
            runLoop(listener: listener, wakeRead: wakeRead)
            close(listener)
        }
        let claimed = lifecycle.withLock { stage in
            guard case .idle = stage else { return false }
            stage = .running(wake: WakePipe(read: wake[0], write: wake[1]), loop: thread)
            return true
        }
        guard claimed else {
            close(wake[0])
            close(wake[1])
            close(listener)
            throw StartError(description: "this server was started before (a server starts once)")
        }
        thread.start()
        workers.start(threads: max(1, configuration.workerThreads)) { [self] in self.wake() }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Makes the loop ask parked requests again now (call it when what they wait for may
    /// have happened, e.g. after events were applied). Safe from any thread.
    package func wake() {
        var byte: UInt8 = 1
        lifecycle.withLock { stage in
            // Non-blocking: never waits under the lock. Idle or stopped: there is no loop to wake.
            if let pipe = stage.wake { _ = write(pipe.write, &byte, 1) }
        }
    }

    /// Stops accepting, finishes writing in-flight responses, closes every connection, waits
    /// for the loop thread and the worker threads to end, and only then closes the wake
    /// pipe. A server that was never started just becomes stopped.
    package func stop() {
        let thread: LedgerThread? = lifecycle.withLock { stage in
            switch stage {
            case .idle:
                stage = .stopped
                return nil
            case .running(let wake, let loop):
                stage = .stopping(wake: wake)
                return loop
            case .stopping, .stopped:
                return nil
            }
        }
        guard let thread else { return }
        stopping.store(true, ordering: .releasing)
        wake()
        thread.join()
        // Deferred work still running (an auditor replay) wakes the loop when it ends; the
        // write end stays open until the last worker has been joined.
        workers.stop()
        lifecycle.withLock { stage in
            if let pipe = stage.wake {
                close(pipe.write)
                close(pipe.read)
            }
            stage = .stopped
        }
    }

    /// The two ends of the pipe that wakes the loop.
    private struct WakePipe {
        var read: Int32
        var write: Int32
    }

    /// The stages of a server's life. Only `running` and `stopping` hold the wake pipe;
    /// leaving `stopping` closes it.
    private enum Lifecycle {
        case idle
        case running(wake: WakePipe, loop: LedgerThread)
        /// The loop is draining and the worker threads finishing; they may still wake it.
        case stopping(wake: WakePipe)
        case stopped

        var wake: WakePipe? {
            switch self {
            case .running(let pipe, _), .stopping(let pipe): return pipe
            case .idle, .stopped: return nil
            }
        }
    }

    // MARK: - The loop

    /// A request taken off a connection and not answered yet.
    private struct Request {
        var head: HTTPRequestHead
        var body: [UInt8]
        var arrived: ContinuousClock.Instant
    }

    private struct Connection {
        /// What the connection's oldest unanswered request waits for.
        var phase = Phase.reading
        var input: [UInt8] = []
        /// What to send; `output[sent...]` is still to go (empty once all of it went).
        var output: [UInt8] = []
        var sent = 0
        var closeAfterWrite = false
        /// When the first byte of the request being read arrived.
        var requestStarted: ContinuousClock.Instant?
        var lastActivity = ContinuousClock.now

        enum Phase {
            /// Reading and answering requests.
            case reading
            /// Waiting for `check` to give a response (`Reply.retry`, `Reply.awaiting`).
            case parked(Request, deadline: ContinuousClock.Instant, fallback: HTTPResponse, check: @Sendable () -> HTTPResponse?)
            /// Another thread is computing what to answer (`Reply.deferred`, `Reply.pending`);
            /// it arrives under `ticket`, or at `deadline` `fallback` is sent.
            case working(Request, ticket: UInt64, deadline: ContinuousClock.Instant?, fallback: HTTPResponse?)
            /// Sending a never-ending body; requests after it are not read.
            case streaming(HTTPStream)
            /// The last response is out and the write side shut; what the client still sends
            /// is read and dropped until it closes or `until` (a lingering close).
            case lingering(until: ContinuousClock.Instant)
        }

        /// Idle between requests: nothing read, nothing to write, nothing in progress. The
        /// kind of connection a new one may take the place of.
        var isReusable: Bool {
            switch phase {
            case .lingering: return true
            case .reading: return input.isEmpty && output.isEmpty && !closeAfterWrite
            case .parked, .working, .streaming: return false
            }
        }

        var isReading: Bool {
            if case .reading = phase { return true }
            return false
        }

        /// When the request waiting off the loop gets its fallback, if it ever does.
        var deadline: ContinuousClock.Instant? {
            switch phase {
            case .parked(_, let deadline, _, _): return deadline
            case .working(_, _, let deadline, _): return deadline
            case .lingering(let until): return until
            case .reading, .streaming: return nil
            }
        }
    }

    /// How often the loop looks for timed-out connections, in ms.
    private static let sweepMilliseconds = 50

    /// The loop's connections by descriptor, with those a loop turn must visit kept apart:
    /// the ones waiting for an answer (parked or working) and the streams.
    private struct ConnectionTable {
        private(set) var all: [Int32: Connection] = [:]
        private(set) var waiting: Set<Int32> = []
        private(set) var streaming: Set<Int32> = []

        var count: Int { all.count }
        var isEmpty: Bool { all.isEmpty }

        subscript(fd: Int32) -> Connection? {
            get { all[fd] }
            set {
                all[fd] = newValue
                switch newValue?.phase {
                case .some(.parked), .some(.working):
                    waiting.insert(fd)
                    streaming.remove(fd)
                case .some(.streaming):
                    streaming.insert(fd)
                    waiting.remove(fd)
                default:
                    waiting.remove(fd)
                    streaming.remove(fd)
                }
            }
        }
    }

    private func runLoop(listener: Int32, wakeRead: Int32) {
        let epoll = cl_epoll_create()
        defer { close(epoll) }
        watch(epoll, listener, UInt32(CL_EPOLLIN))
        watch(epoll, wakeRead, UInt32(CL_EPOLLIN))
        var connections = ConnectionTable()
        var lastSweep = ContinuousClock.now
        var readyDescriptors = [Int32](repeating: 0, count: 64)
        var readyEvents = [UInt32](repeating: 0, count: 64)
        // One read buffer for every connection: a read copies out only what arrived.
        var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)
        let parser = HTTPRequestParser(limits: configuration.limits)
        var drainDeadline: ContinuousClock.Instant?

        while true {
            if stopping.load(ordering: .acquiring) {
                if drainDeadline == nil {
                    drainDeadline = .now + .seconds(2)
                    cl_epoll_unwatch(epoll, listener)
                }
                // Idle connections and streams close now; the rest once their response is out.
                for (fd, connection) in connections.all {
                    let closesNow =
                        switch connection.phase {
                        case .streaming, .lingering: true
                        case .reading: connection.output.isEmpty
                        case .parked, .working: false
                        }
                    if closesNow {
                        close(fd)
                        connections[fd] = nil
                    }
                }
                if connections.isEmpty || ContinuousClock.now > drainDeadline! { break }
            }
            let parkedDeadline = connections.waiting.compactMap { connections[$0]?.deadline }.min()
            let timeout = parkedDeadline.map { max(0, min(100, Int32((($0 - .now) / .milliseconds(1)).rounded(.up)))) } ?? 100
            let count = cl_epoll_wait(epoll, &readyDescriptors, &readyEvents, 64, timeout)
            var woken = false
            for index in 0..<max(0, Int(count)) {
                let fd = readyDescriptors[index]
                let flags = readyEvents[index]
                if fd == listener {
                    acceptAll(listener, epoll, &connections)
                } else if fd == wakeRead {
                    var drain = [UInt8](repeating: 0, count: 64)
                    while read(wakeRead, &drain, drain.count) > 0 {}
                    woken = true
                } else if var connection = connections[fd] {
                    var open = true
                    if flags & UInt32(CL_EPOLLIN | CL_EPOLLHUP | CL_EPOLLERR | CL_EPOLLRDHUP) != 0 {
                        open = receive(fd, &connection, parser, &readBuffer)
                    }
                    if open { open = flush(fd, epoll, &connection) }
                    update(fd, open ? connection : nil, &connections)
                }
            }
            deliverCompletions(epoll, parser, &connections)
            retryParked(epoll, parser, &connections)
            // Streams change only when what they follow does, which is what a wake says.
            if woken { pollStreams(epoll, &connections) }
            // Timeouts are seconds long: a sweep over every connection a few times a second
            // is enough, however many events a turn handles.
            if ContinuousClock.now - lastSweep >= .milliseconds(Self.sweepMilliseconds) {
                lastSweep = .now
                expireTimeouts(epoll, &connections)
            }
        }
        for fd in connections.all.keys { close(fd) }
    }

    /// Stores a connection's new state, or closes it (nil).
    private func update(_ fd: Int32, _ connection: Connection?, _ connections: inout ConnectionTable) {
        if connection == nil { close(fd) }
        connections[fd] = connection
    }

    private func watch(_ epoll: Int32, _ fd: Int32, _ flags: UInt32, modify: Bool = false) {
        _ = cl_epoll_watch(epoll, fd, flags, modify ? 1 : 0)
    }

    private func acceptAll(_ listener: Int32, _ epoll: Int32, _ connections: inout ConnectionTable) {
        while true {
            let fd = cl_accept(listener)
            if fd < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: none left; anything else: try again on the next event
            }
            if connections.count >= configuration.maxConnections, let reusable = longestIdle(connections) {
                update(reusable, nil, &connections)
            }
            guard connections.count < configuration.maxConnections else {
                // Every connection is busy. A handful over the limit are let in to hear why
                // (503, then a lingering close); past that the new one is closed unheard.
                guard connections.count < configuration.maxConnections + Self.refusalsOverLimit else {
                    close(fd)
                    continue
                }
                var refused = Connection()
                refused.output = HTTPResponse.error(503, code: "too_many_connections", message: "the server is at its connection limit")
                    .encoded(keepAlive: false)
                refused.closeAfterWrite = true
                watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLRDHUP))
                update(fd, flush(fd, epoll, &refused) ? refused : nil, &connections)
                continue
            }
            connections[fd] = Connection()
            watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLRDHUP))
        }
    }

    /// How many refused connections may linger over `maxConnections` at once.
    private static let refusalsOverLimit = 64

    /// The connection a new one may replace: a lingering one, else the one idle longest
    /// with no request in progress; nil when all are busy.
    private func longestIdle(_ connections: ConnectionTable) -> Int32? {
        var best: (fd: Int32, lingering: Bool, since: ContinuousClock.Instant)?
        for (fd, connection) in connections.all where connection.isReusable {
            let lingering = if case .lingering = connection.phase { true } else { false }
            if let current = best {
                if current.lingering && !lingering { continue }
                if current.lingering == lingering && current.since <= connection.lastActivity { continue }
            }
            best = (fd, lingering, connection.lastActivity)
        }
        return best?.fd
    }

    /// Reads what is there and answers every whole request; false when the peer is gone.
    private func receive(_ fd: Int32, _ connection: inout Connection, _ parser: HTTPRequestParser, _ chunk: inout [UInt8]) -> Bool {
        var peerClosed = false
        // A stream's client has nothing more to say, and a lingering one is only drained.
        let discarding =
            switch connection.phase {
            case .streaming, .lingering: true
            default: false
            }
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count > 0 {
                if discarding { continue }
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
        if discarding { return !peerClosed }
        answerRequests(&connection, parser)
        return !peerClosed || !connection.output.isEmpty
    }

    /// Answers whole requests from the input, in order, until one is not answered at once
    /// or more bytes are needed.
    private func answerRequests(_ connection: inout Connection, _ parser: HTTPRequestParser) {
        while connection.isReading, !connection.closeAfterWrite, !connection.input.isEmpty {
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
                let request = Request(head: head, body: body, arrived: .now)
                begin(handler(head, body), for: request, on: &connection)
            }
        }
    }

    /// Puts what the handler (or a completion) answered into effect for `request`.
    private func begin(_ reply: Reply, for request: Request, on connection: inout Connection) {
        switch reply {
        case .response(let response):
            send(response, for: request, on: &connection)
        case .retry(let deadline, let fallback):
            let (handler, head, body) = (handler, request.head, request.body)
            connection.phase = .parked(request, deadline: deadline, fallback: fallback) {
                if case .response(let ready) = handler(head, body) { return ready }
                return nil
            }
        case .awaiting(let deadline, let fallback, let check):
            connection.phase = .parked(request, deadline: deadline, fallback: fallback, check: check)
        case .deferred(let work):
            let ticket = tickets.add(1, ordering: .relaxed).newValue
            connection.phase = .working(request, ticket: ticket, deadline: nil, fallback: nil)
            workers.submit(ticket: ticket, work)
        case .pending(let deadline, let fallback, let start):
            let ticket = tickets.add(1, ordering: .relaxed).newValue
            connection.phase = .working(request, ticket: ticket, deadline: deadline, fallback: fallback)
            start { [workers] next in workers.complete(ticket: ticket, next) }
        case .stream(let head, let stream):
            observer?(request.head, head.status, .now - request.arrived)
            connection.output += head.encodedStreamHead()
            connection.output += stream.poll()
            connection.phase = .streaming(stream)
            connection.input = []
        }
    }

    private func send(_ response: HTTPResponse, for request: Request, on connection: inout Connection) {
        observer?(request.head, response.status, .now - request.arrived)
        let keepAlive = request.head.keepAlive && !stopping.load(ordering: .acquiring)
        let omitBody = request.head.method == "HEAD"
        if connection.output.isEmpty {
            connection.output = response.encoded(keepAlive: keepAlive, omitBody: omitBody)  // the usual case: no copy
        } else {
            connection.output += response.encoded(keepAlive: keepAlive, omitBody: omitBody)
        }
        if !keepAlive { connection.closeAfterWrite = true }
    }

    /// Puts an answer that was not given at once into effect (usually a response), then,
    /// once the connection reads again, answers what was pipelined after it.
    private func finish(
        _ fd: Int32, _ reply: Reply, for request: Request, _ epoll: Int32, _ parser: HTTPRequestParser,
        _ connections: inout ConnectionTable
    ) {
        guard var connection = connections[fd] else { return }
        connection.phase = .reading
        begin(reply, for: request, on: &connection)
        answerRequests(&connection, parser)
        update(fd, flush(fd, epoll, &connection) ? connection : nil, &connections)
    }

    /// Asks every parked request again; past its deadline it gets its fallback, and so does
    /// work off the loop that has not answered by its deadline.
    private func retryParked(_ epoll: Int32, _ parser: HTTPRequestParser, _ connections: inout ConnectionTable) {
        let now = ContinuousClock.now
        let stopping = stopping.load(ordering: .acquiring)
        for fd in connections.waiting {
            guard let connection = connections[fd] else { continue }
            switch connection.phase {
            case .parked(let request, let deadline, let fallback, let check):
                if let ready = check() {
                    finish(fd, .response(ready), for: request, epoll, parser, &connections)
                } else if now >= deadline || stopping {
                    finish(fd, .response(fallback), for: request, epoll, parser, &connections)
                }
            case .working(let request, _, let deadline?, let fallback?) where now >= deadline:
                finish(fd, .response(fallback), for: request, epoll, parser, &connections)
            default:
                continue
            }
        }
    }

    /// Puts into effect what other threads finished (for connections still waiting for it).
    private func deliverCompletions(_ epoll: Int32, _ parser: HTTPRequestParser, _ connections: inout ConnectionTable) {
        let done = workers.takeFinished()
        guard !done.isEmpty else { return }
        for fd in connections.waiting {
            guard let connection = connections[fd], case .working(let request, let ticket, _, _) = connection.phase,
                let reply = done[ticket]
            else { continue }
            finish(fd, reply, for: request, epoll, parser, &connections)
        }
    }

    /// Gives every stream the chance to send what is new.
    private func pollStreams(_ epoll: Int32, _ connections: inout ConnectionTable) {
        for fd in connections.streaming {
            guard var connection = connections[fd], case .streaming(let stream) = connection.phase else { continue }
            let bytes = stream.poll()
            guard !bytes.isEmpty else { continue }
            connection.output += bytes
            update(fd, flush(fd, epoll, &connection) ? connection : nil, &connections)
        }
    }

    /// Writes what is pending; waits for EPOLLOUT when the socket is full. False when the
    /// connection should close now.
    private func flush(_ fd: Int32, _ epoll: Int32, _ connection: inout Connection) -> Bool {
        while !connection.output.isEmpty {
            let sent = connection.sent
            let written = connection.output.withUnsafeBytes { bytes in
                // Suspended writes resume at `sent`: nothing is moved to drop what went.
                // MSG_NOSIGNAL: a client that reset the connection is EPIPE here, not SIGPIPE.
                Glibc.send(fd, bytes.baseAddress.map { $0 + sent }, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            if written == connection.output.count - sent {
                connection.output = []
                connection.sent = 0
                connection.lastActivity = .now
            } else if written > 0 {
                connection.sent += written
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
        if stopping.load(ordering: .acquiring) { return false }
        if connection.closeAfterWrite {
            // A lingering close: with the write side shut the client sees the end of the
            // response; reading on (and dropping) what it still sends keeps the kernel from
            // answering that with a reset, which could destroy the response unread.
            guard shutdown(fd, Int32(SHUT_WR)) == 0 else { return false }
            connection.closeAfterWrite = false
            connection.input = []
            connection.phase = .lingering(until: .now + .milliseconds(configuration.lingerMilliseconds))
        }
        return true
    }

    private func expireTimeouts(_ epoll: Int32, _ connections: inout ConnectionTable) {
        let now = ContinuousClock.now
        for (fd, var connection) in connections.all {
            switch connection.phase {
            case .streaming:
                // A quiet stream gets a comment line, so the client (and any proxy) sees it is alive.
                if connection.output.isEmpty, now - connection.lastActivity > .milliseconds(configuration.streamHeartbeatMilliseconds) {
                    connection.output = Array(": keep-alive\n\n".utf8)
                    update(fd, flush(fd, epoll, &connection) ? connection : nil, &connections)
                }
            case .reading:
                if let started = connection.requestStarted, connection.output.isEmpty,
                    now - started > .milliseconds(configuration.headerTimeoutMilliseconds)
                {
                    connection.output = HTTPResponse.error(408, code: "request_timeout", message: "the request did not arrive in time")
                        .encoded(keepAlive: false)
                    connection.closeAfterWrite = true
                    connection.input = []
                    connection.requestStarted = nil
                    update(fd, flush(fd, epoll, &connection) ? connection : nil, &connections)
                } else if connection.input.isEmpty, connection.output.isEmpty,
                    now - connection.lastActivity > .milliseconds(configuration.idleTimeoutMilliseconds)
                {
                    update(fd, nil, &connections)
                }
            case .lingering(let until):
                if now >= until { update(fd, nil, &connections) }
            case .parked, .working:
                break
            }
        }
    }
}

/// A body produced over time, for `HTTPServer.Reply.stream`.
package protocol HTTPStream: AnyObject, Sendable {
    /// The bytes to send now (empty: nothing new). Called on the server's loop thread when
    /// the stream starts and whenever the server is woken, so it must not block.
    func poll() -> [UInt8]
}

/// The worker threads that run `Reply.deferred` work off the loop thread, and the mailbox
/// where that work and `Reply.pending` completions leave their answers, by ticket.
private final class DeferredWork: Sendable {
    private struct Queue {
        var jobs: [(ticket: UInt64, work: @Sendable () -> HTTPResponse)] = []
        var finished: [UInt64: HTTPServer.Reply] = [:]
        var stopping = false
    }

    private let queue = Mutex(Queue())
    private let available = Semaphore()
    private let threads = Mutex<[LedgerThread]>([])
    /// In an array: a closure held directly in a `Mutex` is reabstracted on every
    /// `withLock` (its inout access) and grows a chain of thunks, one pair per completion.
    private let onFinished = Mutex<[@Sendable () -> Void]>([])

    /// Starts the threads; `onFinished` is called after each job and completion (to wake the loop).
    func start(threads count: Int, onFinished: @escaping @Sendable () -> Void) {
        self.onFinished.withLock { $0 = [onFinished] }
        let started = (0..<count).map { _ in
            LedgerThread { [self] in
                while true {
                    available.wait()
                    guard let job = queue.withLock({ $0.stopping ? nil : ($0.jobs.isEmpty ? nil : $0.jobs.removeFirst()) }) else {
                        if queue.withLock({ $0.stopping }) { return }
                        continue
                    }
                    complete(ticket: job.ticket, .response(job.work()))
                }
            }
        }
        threads.withLock { $0 = started }
        for thread in started { thread.start() }
    }

    func submit(ticket: UInt64, _ work: @escaping @Sendable () -> HTTPResponse) {
        queue.withLock { $0.jobs.append((ticket, work)) }
        available.signal()
    }

    /// Leaves the answer for `ticket` and wakes the loop.
    func complete(ticket: UInt64, _ reply: HTTPServer.Reply) {
        queue.withLock { $0.finished[ticket] = reply }
        for finished in onFinished.withLock({ $0 }) { finished() }
    }

    /// The answers left since the last call, by ticket (those nobody waits for any more are dropped).
    func takeFinished() -> [UInt64: HTTPServer.Reply] {
        queue.withLock { queue in
            defer { queue.finished = [:] }
            return queue.finished
        }
    }

    func stop() {
        let started = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        queue.withLock { $0.stopping = true }
        for _ in started { available.signal() }
        for thread in started { thread.join() }
    }
}
