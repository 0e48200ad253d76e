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
        /// Event loops, each on its own thread, each accepting from the one listener (a new
        /// connection wakes one of them) up to its share of `maxConnections`; every route,
        /// stream and parked request works on any of them. At most `HTTPServer.maxLoops`.
        package var loops = 1
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
    /// How many event loops run (`Configuration.loops`, within 1...`maxLoops`).
    private let loops: Int
    private let workers: DeferredWork
    /// Numbers the requests answered off the loop, so a late answer never reaches a later
    /// request; a ticket is this number, then the connection's loop in the low byte.
    private let tickets = Atomic<UInt64>(0)
    private let logger = Logger(label: "http")
    /// Requests and connections refused before any route saw them, by status (for `/metrics`).
    package let refusals = Refusals()

    /// Counts of what the server refused on its own: a malformed or oversize request (400,
    /// 413, 414, 431, 501, 505), one that did not arrive in time (408), a connection over
    /// the limit (503). Routes' answers are counted by the observer instead.
    package final class Refusals: Sendable {
        private let counts = Mutex<[UInt16: Int]>([:])

        func count(_ status: UInt16) { counts.withLock { $0[status, default: 0] += 1 } }

        /// Each status refused so far, with its count, by status.
        package var byStatus: [(status: UInt16, count: Int)] {
            counts.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
    }

    package init(configuration: Configuration, observer: Observer? = nil, handler: @escaping Handler) {
        self.configuration = configuration
        self.observer = observer
        self.handler = handler
        loops = max(1, min(Self.maxLoops, configuration.loops))
        workers = DeferredWork(loops: loops)
    }

    /// Binds, listens and starts the loops; returns the port they listen on.
    package func start() throws -> UInt16 {
        let loops = loops
        // One listener (not SO_REUSEPORT: a second server on the port must fail), accepted
        // from by the first loop, which hands every other new connection to the next loop.
        handoffs.withLock { $0 = Array(repeating: [], count: loops) }
        let (listener, port) = try Self.listen(configuration.host, configuration.port)
        var pipes: [WakePipe] = []
        func closeAll() {
            close(listener)
            for pipe in pipes {
                close(pipe.read)
                close(pipe.write)
            }
        }
        for _ in 0..<loops {
            var wake: [Int32] = [-1, -1]
            guard cl_pipe(&wake) == 0 else {
                closeAll()
                throw StartError(description: "pipe2: errno \(errno)")
            }
            pipes.append(WakePipe(read: wake[0], write: wake[1]))
        }
        // The loop threads own the listener: the last one to end closes it. The wake pipes
        // belong to the lifecycle: `stop()` closes them once no thread that could wake a
        // loop is left (a write end whose read end is closed would raise SIGPIPE).
        let running = LoopCount(loops)
        let threads = (0..<loops).map { index in
            LedgerThread { [self, wakeRead = pipes[index].read] in
                runLoop(UInt8(index), loops: loops, listener: listener, wakeRead: wakeRead)
                if running.endOne() { close(listener) }
            }
        }
        let claimed = lifecycle.withLock { stage in
            guard case .idle = stage else { return false }
            stage = .running(wake: pipes, loops: threads)
            return true
        }
        guard claimed else {
            closeAll()
            throw StartError(description: "this server was started before (a server starts once)")
        }
        for thread in threads { thread.start() }
        workers.start(threads: max(1, configuration.workerThreads)) { [self] in self.wake() }
        return port
    }

    /// The most loops a server runs (tickets carry their loop in one byte).
    package static let maxLoops = 64

    /// How many loops are still running.
    private final class LoopCount: Sendable {
        private let count: Atomic<Int>

        init(_ count: Int) { self.count = Atomic(count) }

        /// Counts one loop's end; true for the last one.
        func endOne() -> Bool { count.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 }
    }

    /// A non-blocking listening socket on `host:port` (0: any free port); the port it got.
    private static func listen(_ host: String, _ port: UInt16) throws -> (Int32, UInt16) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw StartError(description: "socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(listener)
            throw StartError(description: "not an IPv4 address: \(host)")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(listener, 511) == 0 else {
            let error = errno
            close(listener)
            throw StartError(description: "bind/listen \(host):\(port): errno \(error)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) }
        }
        return (listener, UInt16(bigEndian: address.sin_port))
    }

    /// Makes every loop ask its parked requests again now (call it when what they wait for
    /// may have happened, e.g. after events were applied). Safe from any thread.
    package func wake() {
        var byte: UInt8 = 1
        lifecycle.withLock { stage in
            // Non-blocking: never waits under the lock. Idle or stopped: there is no loop to wake.
            for pipe in stage.wake { _ = write(pipe.write, &byte, 1) }
        }
    }

    /// Stops accepting, finishes writing in-flight responses, closes every connection, waits
    /// for the loop threads and the worker threads to end, and only then closes the wake
    /// pipes. A server that was never started just becomes stopped.
    package func stop() {
        let threads: [LedgerThread] = lifecycle.withLock { stage in
            switch stage {
            case .idle:
                stage = .stopped
                return []
            case .running(let wake, let loops):
                stage = .stopping(wake: wake)
                return loops
            case .stopping, .stopped:
                return []
            }
        }
        guard !threads.isEmpty else { return }
        stopping.store(true, ordering: .releasing)
        wake()
        for thread in threads { thread.join() }
        // Deferred work still running (an auditor replay) wakes the loops when it ends; the
        // write ends stay open until the last worker has been joined.
        workers.stop()
        for unadopted in handoffs.withLock({ $0.joined() }) { close(unadopted) }
        lifecycle.withLock { stage in
            for pipe in stage.wake {
                close(pipe.write)
                close(pipe.read)
            }
            stage = .stopped
        }
    }

    /// The two ends of the pipe that wakes a loop.
    private struct WakePipe {
        var read: Int32
        var write: Int32
    }

    /// The stages of a server's life. Only `running` and `stopping` hold the wake pipes;
    /// leaving `stopping` closes them.
    private enum Lifecycle {
        case idle
        case running(wake: [WakePipe], loops: [LedgerThread])
        /// The loops are draining and the worker threads finishing; they may still wake them.
        case stopping(wake: [WakePipe])
        case stopped

        var wake: [WakePipe] {
            switch self {
            case .running(let pipes, _), .stopping(let pipes): return pipes
            case .idle, .stopped: return []
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
        /// What arrived and is not answered yet: `input[inputStart...]` (consumed by index;
        /// emptied, keeping its capacity, once all of it is used).
        var input: [UInt8] = []
        var inputStart = 0
        /// How far the parser got with the request at `inputStart`.
        var progress = HTTPRequestParser.Progress()
        /// What to send: `output`, then `outputBody`, a response body sent from the bytes the
        /// handler answered with (a cached view), not copied; `sent` counts over both.
        var output: [UInt8] = []
        var outputBody: [UInt8] = []
        var sent = 0
        /// The loop it belongs to (answers computed off the loop find their way back by it).
        var loop: UInt8 = 0
        /// When its entry in the table's timer heap comes up (nil: none).
        var timer: ContinuousClock.Instant?
        /// Whether epoll also reports when the socket takes more (a write was cut short).
        var watchesWrites = false
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

        /// Whether anything is still to be sent.
        var hasOutput: Bool { !output.isEmpty || !outputBody.isEmpty }

        /// Queues bytes to send after what is queued.
        mutating func send(_ bytes: [UInt8]) {
            if !outputBody.isEmpty {
                output += outputBody
                outputBody = []
            }
            output += bytes
        }

        /// Drops what arrived and was not answered (after an error, or once a stream starts).
        mutating func dropInput() {
            input.removeAll(keepingCapacity: true)
            inputStart = 0
            progress = HTTPRequestParser.Progress()
        }

        /// Idle between requests: nothing read, nothing to write, nothing in progress. The
        /// kind of connection a new one may take the place of.
        var isReusable: Bool {
            switch phase {
            case .lingering: return true
            case .reading: return input.isEmpty && !hasOutput && !closeAfterWrite
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

    /// A response body at least this large is sent from the handler's bytes (`writev`-like),
    /// not copied behind its head; a smaller one is cheaper to copy.
    private static let unCopiedBodyBytes = 2_048

    /// The timeouts a connection's timer follows.
    private struct Timeouts {
        var header: Duration
        var idle: Duration
        var heartbeat: Duration

        /// When the loop must look at the connection next: a quiet stream's heartbeat, a head
        /// that has not arrived, an idle keep-alive, the end of a lingering close; nil when
        /// no timer applies (parked and working requests are timed by `retryParked`).
        func deadline(_ connection: Connection) -> ContinuousClock.Instant? {
            switch connection.phase {
            case .streaming:
                return connection.hasOutput ? nil : connection.lastActivity + heartbeat
            case .reading:
                if connection.hasOutput { return nil }
                if let started = connection.requestStarted { return started + header }
                return connection.input.isEmpty ? connection.lastActivity + idle : nil
            case .lingering(let until):
                return until
            case .parked, .working:
                return nil
            }
        }
    }

    /// The loop's connections by descriptor, with those a loop turn must visit kept apart:
    /// the ones waiting for an answer (parked or working), the streams, and the timers in a
    /// heap by deadline (so a loop turn looks only at connections whose time has come).
    private struct ConnectionTable {
        private(set) var all: [Int32: Connection] = [:]
        private(set) var waiting: Set<Int32> = []
        private(set) var streaming: Set<Int32> = []
        /// One entry per connection with a timer, at `Connection.timer`; an entry whose
        /// connection has since moved its timer (or closed) is dropped when it comes up. A
        /// timer that moves later (every request moves the idle one) costs nothing until then.
        private(set) var timers = MinHeap<ConnectionTimer>()
        /// Which of the server's loops this is.
        let loop: UInt8
        /// This loop's share of `maxConnections`.
        let limit: Int
        let timeouts: Timeouts

        init(loop: UInt8, limit: Int, timeouts: Timeouts) {
            self.loop = loop
            self.limit = limit
            self.timeouts = timeouts
        }

        var count: Int { all.count }
        var isEmpty: Bool { all.isEmpty }

        /// Takes a connection out of the table to work on it: its buffers are then referenced
        /// once and grow in place instead of being copied (`update` puts it back).
        mutating func take(_ fd: Int32) -> Connection? {
            all.removeValue(forKey: fd)
        }

        /// The connection whose timer is due by `now`, taken out of the table (nil: none left).
        mutating func takeDue(_ now: ContinuousClock.Instant) -> (fd: Int32, Connection)? {
            while let top = timers.first, top.at <= now {
                let fd = top.fd
                timers.removeFirst()
                guard all[fd]?.timer == top.at, var connection = take(fd) else { continue }  // moved or closed since
                connection.timer = nil
                return (fd, connection)
            }
            return nil
        }

        subscript(fd: Int32) -> Connection? {
            get { all[fd] }
            set {
                all[fd] = newValue
                // Scheduled in place, without a copy of the connection; usually the timer is
                // already at or before the new deadline and nothing is done.
                if let connection = newValue, let deadline = timeouts.deadline(connection), connection.timer.map({ deadline < $0 }) ?? true {
                    timers.insert(ConnectionTimer(at: deadline, fd: fd))
                    all[fd]?.timer = deadline
                }
                // The sets are usually empty: no hashing then.
                switch newValue?.phase {
                case .some(.parked), .some(.working):
                    waiting.insert(fd)
                    if !streaming.isEmpty { streaming.remove(fd) }
                case .some(.streaming):
                    streaming.insert(fd)
                    if !waiting.isEmpty { waiting.remove(fd) }
                default:
                    if !waiting.isEmpty { waiting.remove(fd) }
                    if !streaming.isEmpty { streaming.remove(fd) }
                }
            }
        }
    }

    /// Loop `loop` of `loops`: its connections, from its own listener.
    private func runLoop(_ loop: UInt8, loops: Int, listener: Int32, wakeRead: Int32) {
        let epoll = cl_epoll_create()
        defer { close(epoll) }
        if loop == 0 { watch(epoll, listener, UInt32(CL_EPOLLIN)) }
        watch(epoll, wakeRead, UInt32(CL_EPOLLIN))
        var nextLoop = 0
        var connections = ConnectionTable(
            loop: loop, limit: (configuration.maxConnections + loops - 1) / loops,
            timeouts: Timeouts(
                header: .milliseconds(configuration.headerTimeoutMilliseconds), idle: .milliseconds(configuration.idleTimeoutMilliseconds),
                heartbeat: .milliseconds(configuration.streamHeartbeatMilliseconds)))
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
                    if loop == 0 { cl_epoll_unwatch(epoll, listener) }
                }
                // Idle connections and streams close now; the rest once their response is out.
                for (fd, connection) in connections.all {
                    let closesNow =
                        switch connection.phase {
                        case .streaming, .lingering: true
                        case .reading: !connection.hasOutput
                        case .parked, .working: false
                        }
                    if closesNow {
                        close(fd)
                        connections[fd] = nil
                    }
                }
                if connections.isEmpty || ContinuousClock.now > drainDeadline! { break }
            }
            var nextDeadline = connections.timers.first?.at
            for fd in connections.waiting {
                if let deadline = connections[fd]?.deadline, nextDeadline.map({ deadline < $0 }) ?? true { nextDeadline = deadline }
            }
            let timeout = nextDeadline.map { max(0, min(100, Int32((($0 - .now) / .milliseconds(1)).rounded(.up)))) } ?? 100
            let count = cl_epoll_wait(epoll, &readyDescriptors, &readyEvents, 64, timeout)
            var woken = false
            for index in 0..<max(0, Int(count)) {
                let fd = readyDescriptors[index]
                let flags = readyEvents[index]
                if fd == listener {
                    acceptAll(listener, epoll, &connections, next: &nextLoop, loops: loops)
                } else if fd == wakeRead {
                    var drain = [UInt8](repeating: 0, count: 64)
                    while read(wakeRead, &drain, drain.count) > 0 {}
                    woken = true
                    // Connections the first loop accepted for this one.
                    for handed in handoffs.withLock({ handoffs in
                        defer { handoffs[Int(loop)] = [] }
                        return handoffs[Int(loop)]
                    }) {
                        adopt(handed, epoll, &connections)
                    }
                } else if var connection = connections.take(fd) {
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
            expireTimers(epoll, &connections)
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

    /// Accepts every waiting connection, in turn for each loop (`next`): this loop's are
    /// adopted here, the others handed to their loop, which is woken to adopt them.
    private func acceptAll(_ listener: Int32, _ epoll: Int32, _ connections: inout ConnectionTable, next: inout Int, loops: Int) {
        while true {
            let fd = cl_accept(listener)
            if fd < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: none left; anything else: try again on the next event
            }
            let target = next
            next = (next + 1) % loops
            if target == Int(connections.loop) {
                adopt(fd, epoll, &connections)
            } else {
                handoffs.withLock { $0[target].append(fd) }
                wake(loop: target)
            }
        }
    }

    /// Connections accepted by the first loop for each loop, until it adopts them.
    private let handoffs = Mutex<[[Int32]]>([])

    /// Wakes one loop (to adopt the connections handed to it).
    private func wake(loop: Int) {
        var byte: UInt8 = 1
        lifecycle.withLock { stage in
            let pipes = stage.wake
            if loop < pipes.count { _ = write(pipes[loop].write, &byte, 1) }
        }
    }

    /// Takes a new connection into this loop: at the limit it replaces the connection idle
    /// longest; with every connection busy it is refused (503).
    private func adopt(_ fd: Int32, _ epoll: Int32, _ connections: inout ConnectionTable) {
        if connections.count >= connections.limit, let reusable = longestIdle(connections) {
            update(reusable, nil, &connections)
        }
        guard connections.count < connections.limit else {
            // Every connection is busy. A handful over the limit are let in to hear why
            // (503, then a lingering close); past that the new one is closed unheard.
            guard connections.count < connections.limit + Self.refusalsOverLimit else {
                refusals.count(503)
                close(fd)
                return
            }
            refusals.count(503)
            var refused = Connection()
            refused.output = HTTPResponse.error(503, code: "too_many_connections", message: "the server is at its connection limit")
                .encoded(keepAlive: false)
            refused.closeAfterWrite = true
            watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLRDHUP))
            update(fd, flush(fd, epoll, &refused) ? refused : nil, &connections)
            return
        }
        var connection = Connection()
        connection.loop = connections.loop
        connections[fd] = connection
        watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLRDHUP))
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
                if connection.inputStart > 0 {
                    // Requests before it were answered: move the rest to the front (the
                    // parser's progress counts from the request's start, so it still holds).
                    connection.input.removeSubrange(..<connection.inputStart)
                    connection.inputStart = 0
                }
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
        return !peerClosed || connection.hasOutput
    }

    /// Answers whole requests from the input, in order, until one is not answered at once
    /// or more bytes are needed.
    private func answerRequests(_ connection: inout Connection, _ parser: HTTPRequestParser) {
        while connection.isReading, !connection.closeAfterWrite, connection.inputStart < connection.input.count {
            switch parser.parse(connection.input, from: connection.inputStart, progress: &connection.progress) {
            case .incomplete:
                return
            case .failure(let error):
                refusals.count(UInt16(clamping: error.status.rawValue))
                connection.send(HTTPResponse.error(error.status, code: "bad_request", message: error.reason).encoded(keepAlive: false))
                connection.closeAfterWrite = true
                connection.dropInput()
            case .request(let head, let body, let consumed):
                connection.inputStart += consumed
                connection.progress = HTTPRequestParser.Progress()
                if connection.inputStart == connection.input.count { connection.dropInput() }
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
            let ticket = tickets.add(1, ordering: .relaxed).newValue << 8 | UInt64(connection.loop)
            connection.phase = .working(request, ticket: ticket, deadline: nil, fallback: nil)
            workers.submit(ticket: ticket, work)
        case .pending(let deadline, let fallback, let start):
            let ticket = tickets.add(1, ordering: .relaxed).newValue << 8 | UInt64(connection.loop)
            connection.phase = .working(request, ticket: ticket, deadline: deadline, fallback: fallback)
            start { [workers] next in workers.complete(ticket: ticket, next) }
        case .stream(let head, let stream):
            observer?(request.head, head.status, .now - request.arrived)
            connection.send(head.encodedStreamHead())
            connection.send(stream.poll())
            connection.phase = .streaming(stream)
            connection.dropInput()
            if stream.isFinished { connection.closeAfterWrite = true }
        }
    }

    private func send(_ response: HTTPResponse, for request: Request, on connection: inout Connection) {
        observer?(request.head, response.status, .now - request.arrived)
        let keepAlive = request.head.keepAlive && !stopping.load(ordering: .acquiring) && !response.bodyRunsToClose
        let omitBody = request.head.method == "HEAD"
        if !connection.hasOutput, !omitBody, response.body.count >= Self.unCopiedBodyBytes {
            // The usual case: the head is written into the output buffer, the body goes from
            // where the handler keeps it.
            response.encode(into: &connection.output, keepAlive: keepAlive, omitBody: true)
            connection.outputBody = response.body
        } else {
            if !connection.outputBody.isEmpty { connection.send([]) }
            response.encode(into: &connection.output, keepAlive: keepAlive, omitBody: omitBody)
        }
        if !keepAlive { connection.closeAfterWrite = true }
    }

    /// Puts an answer that was not given at once into effect (usually a response), then,
    /// once the connection reads again, answers what was pipelined after it.
    private func finish(
        _ fd: Int32, _ reply: Reply, for request: Request, _ epoll: Int32, _ parser: HTTPRequestParser,
        _ connections: inout ConnectionTable
    ) {
        guard var connection = connections.take(fd) else { return }
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
        let done = workers.takeFinished(loop: connections.loop)
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
            guard case .streaming(let stream) = connections[fd]?.phase else { continue }
            let bytes = stream.poll()
            let finished = stream.isFinished
            guard !bytes.isEmpty || finished, var connection = connections.take(fd) else { continue }
            connection.send(bytes)
            if finished { connection.closeAfterWrite = true }
            update(fd, flush(fd, epoll, &connection) ? connection : nil, &connections)
        }
    }

    /// Writes what is pending; waits for EPOLLOUT when the socket is full. False when the
    /// connection should close now.
    private func flush(_ fd: Int32, _ epoll: Int32, _ connection: inout Connection) -> Bool {
        while connection.hasOutput {
            let sent = connection.sent
            let (head, body) = (connection.output, connection.outputBody)
            let total = head.count + body.count
            let written = head.withUnsafeBytes { head in
                body.withUnsafeBytes { body in
                    // Suspended writes resume at `sent`: nothing is moved to drop what went.
                    var pieces = (iovec(), iovec())
                    var count = 0
                    withUnsafeMutableBytes(of: &pieces) { raw in
                        let vectors = raw.bindMemory(to: iovec.self)
                        if let base = head.baseAddress, sent < head.count {
                            vectors[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base + sent), iov_len: head.count - sent)
                            count = 1
                        }
                        if let base = body.baseAddress, !body.isEmpty {
                            let skip = max(0, sent - head.count)
                            vectors[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base + skip), iov_len: body.count - skip)
                            count += 1
                        }
                    }
                    return withUnsafeMutablePointer(to: &pieces) { vectors in
                        vectors.withMemoryRebound(to: iovec.self, capacity: 2) { vectors in
                            var message = msghdr()
                            message.msg_iov = vectors
                            message.msg_iovlen = count
                            // MSG_NOSIGNAL: a client that reset the connection is EPIPE here, not SIGPIPE.
                            return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                        }
                    }
                }
            }
            if written == total - sent {
                connection.output.removeAll(keepingCapacity: true)  // the next response reuses it
                connection.outputBody = []
                connection.sent = 0
                connection.lastActivity = .now
            } else if written > 0 {
                connection.sent += written
                connection.lastActivity = .now
            } else if written < 0 && errno == EINTR {
                continue
            } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if !connection.watchesWrites {
                    watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLOUT | CL_EPOLLRDHUP), modify: true)
                    connection.watchesWrites = true
                }
                return true
            } else {
                return false
            }
        }
        if connection.watchesWrites {
            watch(epoll, fd, UInt32(CL_EPOLLIN | CL_EPOLLRDHUP), modify: true)  // no syscall per response otherwise
            connection.watchesWrites = false
        }
        if stopping.load(ordering: .acquiring) { return false }
        if connection.closeAfterWrite {
            // A lingering close: with the write side shut the client sees the end of the
            // response; reading on (and dropping) what it still sends keeps the kernel from
            // answering that with a reset, which could destroy the response unread.
            guard shutdown(fd, Int32(SHUT_WR)) == 0 else { return false }
            connection.closeAfterWrite = false
            connection.dropInput()
            connection.phase = .lingering(until: .now + .milliseconds(configuration.lingerMilliseconds))
        }
        return true
    }

    /// Acts on the connections whose timer is due: a quiet stream gets a heartbeat, a head
    /// that did not arrive in time 408, an idle keep-alive or a finished lingering close is
    /// closed. The others are not looked at.
    private func expireTimers(_ epoll: Int32, _ connections: inout ConnectionTable) {
        let now = ContinuousClock.now
        while let (fd, taken) = connections.takeDue(now) {
            var connection = taken
            // Due by what the connection is now (its timer may have moved later since).
            guard let deadline = connections.timeouts.deadline(connection), deadline <= now else {
                update(fd, connection, &connections)
                continue
            }
            switch connection.phase {
            case .streaming:
                // A quiet stream gets a comment line, so the client (and any proxy) sees it is alive.
                connection.output = Array(": keep-alive\n\n".utf8)
                update(fd, flush(fd, epoll, &connection) ? connection : nil, &connections)
            case .reading where connection.requestStarted != nil:
                refusals.count(408)
                connection.output = HTTPResponse.error(408, code: "request_timeout", message: "the request did not arrive in time")
                    .encoded(keepAlive: false)
                connection.closeAfterWrite = true
                connection.dropInput()
                connection.requestStarted = nil
                update(fd, flush(fd, epoll, &connection) ? connection : nil, &connections)
            case .reading, .lingering:
                update(fd, nil, &connections)
            case .parked, .working:
                update(fd, connection, &connections)
            }
        }
    }
}

/// A connection's timer: when, and whose; ordered by when.
private struct ConnectionTimer: Comparable {
    var at: ContinuousClock.Instant
    var fd: Int32

    static func < (lhs: ConnectionTimer, rhs: ConnectionTimer) -> Bool { lhs.at < rhs.at }
    static func == (lhs: ConnectionTimer, rhs: ConnectionTimer) -> Bool { lhs.at == rhs.at }
}

/// A body produced over time, for `HTTPServer.Reply.stream`.
package protocol HTTPStream: AnyObject, Sendable {
    /// The bytes to send now (empty: nothing new). Called on the server's loop thread when
    /// the stream starts and whenever the server is woken, so it must not block.
    func poll() -> [UInt8]

    /// Whether the stream has sent its last bytes: the server closes the connection once
    /// they are written (an SSE client then reconnects), with no heartbeat after them.
    var isFinished: Bool { get }
}

extension HTTPStream {
    /// Most streams run until the client goes (a wrapper must pass its inner stream's on).
    package var isFinished: Bool { false }
}

/// Where `Reply.deferred` work and `Reply.pending` completions leave their answers for the
/// loop that waits for them: the work runs on a `WorkerPool`, and each loop has its own
/// mailbox of answers by ticket, so a loop looks only at its own.
private final class DeferredWork: Sendable {
    /// One loop's answers by ticket.
    private final class Mailbox: Sendable {
        let finished = Mutex<[UInt64: HTTPServer.Reply]>([:])
    }

    private let mailboxes: [Mailbox]
    private let pool = Mutex<WorkerPool?>(nil)
    /// In an array: a closure held directly in a `Mutex` is reabstracted on every
    /// `withLock` (its inout access) and grows a chain of thunks, one pair per completion.
    private let onFinished = Mutex<[@Sendable () -> Void]>([])

    init(loops: Int) {
        mailboxes = (0..<max(1, loops)).map { _ in Mailbox() }
    }

    /// Starts the threads; `onFinished` is called after each job and completion (to wake the loop).
    func start(threads count: Int, onFinished: @escaping @Sendable () -> Void) {
        self.onFinished.withLock { $0 = [onFinished] }
        let started = WorkerPool(name: "chatledger-work", threads: count)
        pool.withLock { $0 = started }
    }

    func submit(ticket: UInt64, _ work: @escaping @Sendable () -> HTTPResponse) {
        pool.withLock { $0 }?.submit { [self] in complete(ticket: ticket, .response(work())) }
    }

    /// Leaves the answer for `ticket` in its loop's mailbox and wakes the loops.
    func complete(ticket: UInt64, _ reply: HTTPServer.Reply) {
        let loop = Int(UInt8(truncatingIfNeeded: ticket))
        guard loop < mailboxes.count else { return }
        mailboxes[loop].finished.withLock { $0[ticket] = reply }
        for finished in onFinished.withLock({ $0 }) { finished() }
    }

    /// The answers left for `loop` since its last call, by ticket (those nobody waits for
    /// any more are dropped).
    func takeFinished(loop: UInt8) -> [UInt64: HTTPServer.Reply] {
        guard Int(loop) < mailboxes.count else { return [:] }
        return mailboxes[Int(loop)].finished.withLock { finished in
            guard !finished.isEmpty else { return [:] }
            defer { finished = [:] }
            return finished
        }
    }

    /// Stops the threads once the work queued and running is done.
    func stop() {
        pool.withLock { $0 }?.stop()
    }
}
