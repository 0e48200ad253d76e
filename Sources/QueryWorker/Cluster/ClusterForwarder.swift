#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport
import Synchronization

/// Relays requests to the instance that owns them, on its own worker threads (the HTTP
/// loop never blocks on another instance): a plain HTTP/1.1 client over kept-alive
/// loopback or cluster-network connections, at most `idlePerInstance` kept per instance.
/// A change stream (SSE) gets its own connection and thread (`RelayStream`) for as long as
/// it runs.
package final class ClusterForwarder: Sendable {
    /// What a forward gave.
    package enum Outcome: Sendable {
        /// The owner's response, ready to relay (hop-by-hop headers removed).
        case response(HTTPResponse)
        /// The owner's change stream: its head, then what `stream` yields.
        case stream(HTTPResponse, RelayStream)
        /// The owner could not be reached or did not answer: why.
        case unreachable(String)
    }

    private struct Job {
        var address: InstanceAddress
        var request: [UInt8]
        var method: String
        var isStream: Bool
        var mayRetry: Bool
    }

    private let workers: WorkerPool
    private let idle = Mutex<[String: [Int32]]>([:])
    private let idlePerInstance: Int
    private let connectTimeoutMilliseconds: Int32
    private let answerTimeoutMilliseconds: Int
    /// Wakes the HTTP loop (for relayed streams with something new).
    let wake: @Sendable () -> Void

    /// - Parameters:
    ///   - threads: how many forwards run at once (each blocks a thread while it waits).
    ///   - answerTimeoutMilliseconds: how long an owner may take to answer (a `minPosition`
    ///     wait of up to 30 s runs there).
    package init(
        threads: Int = 32, idlePerInstance: Int = 32, connectTimeoutMilliseconds: Int32 = 1_000, answerTimeoutMilliseconds: Int = 35_000,
        wake: @escaping @Sendable () -> Void
    ) {
        self.idlePerInstance = idlePerInstance
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.answerTimeoutMilliseconds = answerTimeoutMilliseconds
        self.wake = wake
        workers = WorkerPool(name: "chatledger-fwd", threads: threads)
    }

    /// Stops the threads (after the forwards queued and in progress) and closes kept connections.
    package func stop() {
        workers.stop()
        for fds in idle.withLock({ $0.values }) { for fd in fds { close(fd) } }
        idle.withLock { $0 = [:] }
    }

    /// Sends `head` and `body` to `address` (marked as forwarded by `sender`) on a worker
    /// thread and calls `complete` there with what came back.
    package func forward(
        _ head: HTTPRequestHead, _ body: [UInt8], to address: InstanceAddress, sender: String, isStream: Bool,
        complete: @escaping @Sendable (Outcome) -> Void
    ) {
        // A HEAD goes on as GET: this server leaves the body out of its answer, whose
        // Content-Length is then GET's, as RFC 9110 §9.3.2 asks.
        var head = head
        if head.method == "HEAD" { head.method = "GET" }
        let request = Self.encode(head, body, to: address, sender: sender, isStream: isStream)
        let job = Job(
            address: address, request: request, method: head.method, isStream: isStream,
            mayRetry: head.method == "GET")
        let accepted = workers.submit { [self] in complete(exchange(job)) }
        if !accepted { complete(.unreachable("this instance is stopping")) }
    }

    /// The request bytes: the client's head without hop-by-hop fields, `Host` for the
    /// owner, `X-Ledger-Forwarded` naming this instance, and the body.
    static func encode(_ head: HTTPRequestHead, _ body: [UInt8], to address: InstanceAddress, sender: String, isStream: Bool) -> [UInt8] {
        var text = "\(head.method) \(head.target) HTTP/1.1\r\nHost: \(address.host):\(address.port)\r\n"
        for header in head.headers where !hopByHop.contains(header.name) && header.name != "host" && header.name != "x-ledger-forwarded" {
            text += header.name + ": " + header.value + "\r\n"
        }
        text += "X-Ledger-Forwarded: \(sender)\r\n"
        if !body.isEmpty || head.method == "POST" { text += "Content-Length: \(body.count)\r\n" }
        text += isStream ? "Connection: close\r\n\r\n" : "\r\n"
        return Array(text.utf8) + body
    }

    /// Header fields that describe one connection, never relayed (RFC 9110 §7.6.1).
    static let hopByHop: Set<String> = ["connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "content-length", "trailer"]

    private func exchange(_ job: Job) -> Outcome {
        let key = job.address.description
        if !job.isStream, job.mayRetry, let fd = idle.withLock({ $0[key]?.popLast() }) {
            // A kept connection the owner may have closed meanwhile: a failure before any
            // answer byte is retried once on a new connection (only for GET and HEAD).
            switch exchange(job, on: fd) {
            case .unreachable: break
            case let outcome: return outcome
            }
        }
        guard let fd = job.address.connect(
            timeoutMilliseconds: connectTimeoutMilliseconds, ioTimeoutMilliseconds: job.isStream ? RelayStream.silenceMilliseconds : answerTimeoutMilliseconds)
        else { return .unreachable("cannot connect to \(key)") }
        return exchange(job, on: fd)
    }

    private func exchange(_ job: Job, on fd: Int32) -> Outcome {
        guard Self.writeAll(fd, job.request) else {
            close(fd)
            return .unreachable("the connection to \(job.address) failed while sending")
        }
        var input: [UInt8] = []
        // One read buffer for the whole answer (a read copies out only what arrived).
        var chunk = Self.readChunk()
        guard let parsed = Self.readHead(fd, into: &input, using: &chunk) else {
            close(fd)
            return .unreachable("no answer from \(job.address)")
        }
        var response = HTTPResponse(status: HTTPStatus(rawValue: parsed.status), headers: parsed.headers.filter { !Self.hopByHop.contains($0.name.lowercased()) })
        if job.method == "HEAD" || parsed.status == 304 || parsed.status == 204 {
            finish(fd, keep: parsed.keepAlive, key: job.address.description)
            return .response(response)
        }
        if let length = parsed.contentLength {
            while input.count < length {
                guard Self.readSome(fd, into: &input, using: &chunk) > 0 else {
                    close(fd)
                    return .unreachable("\(job.address) closed the connection mid-answer")
                }
            }
            response.body = Array(input.prefix(length))
            finish(fd, keep: parsed.keepAlive && input.count == length, key: job.address.description)
            return .response(response)
        }
        if parsed.contentType.hasPrefix("text/event-stream") {
            return .stream(response, RelayStream(fd: fd, buffered: input, wake: wake))
        }
        while Self.readSome(fd, into: &input, using: &chunk) > 0 {}
        close(fd)
        response.body = input
        return .response(response)
    }

    private func finish(_ fd: Int32, keep: Bool, key: String) {
        guard keep else {
            close(fd)
            return
        }
        let kept = idle.withLock { idle in
            guard (idle[key]?.count ?? 0) < idlePerInstance else { return false }
            idle[key, default: []].append(fd)
            return true
        }
        if !kept { close(fd) }
    }

    private struct ParsedHead {
        var status: Int
        var headers: [(name: String, value: String)]
        var contentLength: Int?
        var contentType: String
        var keepAlive: Bool
    }

    /// Reads up to the end of the response head; `input` keeps what came after it.
    private static func readHead(_ fd: Int32, into input: inout [UInt8], using chunk: inout [UInt8]) -> ParsedHead? {
        let limit = 64 * 1024
        var end: Int?
        while end == nil {
            let before = max(0, input.count - 3)
            guard readSome(fd, into: &input, using: &chunk) > 0 else { return nil }
            end = findHeadEnd(input, from: before)
            if end == nil && input.count > limit { return nil }
        }
        guard let end else { return nil }
        let text = String(decoding: input[..<end], as: UTF8.self)
        input.removeFirst(end + 4)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return nil }
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]), (100...599).contains(status) else { return nil }
        var head = ParsedHead(status: status, headers: [], contentLength: nil, contentType: "", keepAlive: statusLine[0] == "HTTP/1.1")
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            switch name.lowercased() {
            case "content-length":
                guard let length = Int(value), length >= 0, length <= 256 << 20 else { return nil }
                head.contentLength = length
            case "content-type": head.contentType = value
            case "connection": head.keepAlive = value.lowercased() != "close"
            default: break
            }
            head.headers.append((name, value))
        }
        return head
    }

    private static func findHeadEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = start
        while index + 3 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 { return index }
            index += 1
        }
        return nil
    }

    /// A buffer for `readSome`, made once per exchange or relayed stream and reused for
    /// each of its reads.
    static func readChunk() -> [UInt8] { [UInt8](repeating: 0, count: 16 * 1024) }

    /// Appends what one `read` into `chunk` (a `readChunk()`, reused from read to read)
    /// gives; 0 at the end or on an error (or timeout).
    static func readSome(_ fd: Int32, into input: inout [UInt8], using chunk: inout [UInt8]) -> Int {
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return 0 }
            input += chunk[..<count]
            return count
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = self
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
