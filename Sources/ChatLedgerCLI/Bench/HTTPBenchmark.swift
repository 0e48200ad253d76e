#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import Foundation
import KafkaClient
import LedgerSupport
import Synchronization

/// `bench http`: a real `chatledger run` child process (embedded broker, ingest, HTTP),
/// measured from this process over loopback.
///
/// 1. Requests/s and latency of a cached chat-list GET with keep-alive, from `clients`
///    threads each keeping `connections` requests in flight, next to `/healthz` (the
///    server with no work per request) in the same run.
/// 2. Freshness under background load (`FreshnessProbe`): while a producer sends `load`
///    events/s for other devices, a probe produces one incoming message at a time for its
///    own device and polls `GET …/unread` until the count shows it; the delay from the
///    produce call to the first response that shows it, p50/p99.
enum HTTPBenchmark {
    static let topic = DeviceEventsTopic.defaultName

    static func run(seconds: Double, load backgroundRate: Int, probes: Int) throws -> BenchReport {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("bench-http-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let keys = try BenchKeys.file(data)
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let server = try seededServer(data: data, keys: keys, loops: 1)
        defer { _ = server.terminate() }

        var report = BenchReport(bench: "http")
        let baseline = try load(port: server.port, target: "/healthz", seconds: seconds)
        let chats = try load(port: server.port, target: "/api/v1/devices/dev-1/chats", seconds: seconds)
        report.add("chats_requests_per_s", chats.rate, "req/s")
        report.add("chats_p50_ms", chats.p50, "ms")
        report.add("chats_p99_ms", chats.p99, "ms")
        report.add("healthz_requests_per_s", baseline.rate, "req/s")
        report.add("chats_vs_healthz", chats.rate / baseline.rate, "ratio")
        report.add("chats_response_bytes", Double(chats.bytes), "bytes")
        // The same bytes from nginx, one core each (the servers are measured one at a time).
        let pinned = NginxReference.pin(server.processIdentifier, cores: "0")
        let pinnedChats = try load(port: server.port, target: "/api/v1/devices/dev-1/chats", seconds: seconds)
        report.add("chats_one_core_requests_per_s", pinnedChats.rate, "req/s")
        do {
            let body = try HTTPLoadClient(port: server.port).body("/api/v1/devices/dev-1/chats")
            let nginx = try NginxReference(serving: body)
            defer { nginx.stop() }
            _ = NginxReference.pin(nginx.processIdentifier, cores: "0")
            let reference = try load(port: nginx.port, target: nginx.target, seconds: seconds)
            report.add("nginx_same_bytes_requests_per_s", reference.rate, "req/s")
            report.add("chats_vs_nginx", pinnedChats.rate / reference.rate, "ratio")
            report.notes.append("nginx (1 worker, access log off) serves the chat list's bytes as a file; both servers on CPU 0\(pinned ? "" : " (pinning failed: taskset)")")
        } catch {
            report.notes.append("no nginx figure: \(error)")
        }
        _ = NginxReference.pin(server.processIdentifier, cores: "0-\(max(0, ProcessInfo.processInfo.activeProcessorCount - 1))")

        // The same list from a server with two loops (--http-threads 2), unpinned like the first figure.
        do {
            let twoLoops = try seededServer(data: data + "-2", keys: keys, loops: 2)
            defer {
                _ = twoLoops.terminate()
                try? FileManager.default.removeItem(atPath: data + "-2")
            }
            let two = try load(port: twoLoops.port, target: "/api/v1/devices/dev-1/chats", seconds: seconds)
            report.add("chats_2_loops_requests_per_s", two.rate, "req/s")
            report.add("chats_2_vs_1_loops", two.rate / chats.rate, "ratio")
        }

        // A marker not visible in time is a figure (markers_not_visible), not a failed bench:
        // on a loaded machine a marker can take seconds, and that is what the figure shows.
        let probe = FreshnessProbe(
            background: TrafficModel(.init(devices: 500, chatsPerDevice: 20, seed: 11)), rate: backgroundRate,
            markerTimeout: .seconds(20), failOnTimeout: false)
        let freshness = try probe.run(server: server, until: .markers(probes))
        report.add("freshness_markers_not_visible", Double(freshness.notVisible), "markers")
        report.add("freshness_p50_ms", freshness.p50, "ms")
        report.add("freshness_p99_ms", freshness.p99, "ms")
        report.add("freshness_max_ms", freshness.max, "ms")
        report.add("background_events_per_s", freshness.backgroundRate, "events/s")
        report.notes.append("chatledger run as a child process (embedded mock broker); \(Self.clients) client threads × \(Self.connections) keep-alive connections, one request in flight each")
        report.notes.append("freshness: \(probes) probes, each from the produce call to the first GET showing it")
        return report
    }

    /// A `run` child with `loops` HTTP loops, holding 50 devices × 50 chats (so the list is a
    /// realistic 50-chat page), all applied.
    static func seededServer(data: String, keys: String, loops: Int) throws -> ServerProcess {
        let server = try ServerProcess(
            executable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(),
            arguments: ["run", "--http", "127.0.0.1:0", "--data", data, "--keys", keys, "--http-threads", String(loops)])
        do {
            let producer = try KafkaProducer(bootstrapServers: server.brokers, configuration: KafkaConfiguration(["linger.ms": "0"]))
            var model = TrafficModel(.init(devices: 50, chatsPerDevice: 50, seed: 3))
            for _ in 0..<20_000 {
                let event = model.next().event
                try producer.send(topic: topic, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event))
            }
            try producer.flush(timeoutMilliseconds: 60_000)
            for (partition, offset) in producer.report.lastOffsets {
                _ = try HTTPLoadClient(port: server.port).get("/api/v1/devices/dev-1/unread?minPosition=\(partition):\(offset)&wait=30000")
            }
            return server
        } catch {
            _ = server.terminate()
            throw error
        }
    }

    static let clients = 2
    static let connections = 16

    struct LoadResult {
        var rate: Double
        var p50: Double
        var p99: Double
        var bytes: Int
    }

    /// Closed-loop load: every connection sends a request as soon as its previous response is in.
    static func load(port: UInt16, target: String, seconds: Double) throws -> LoadResult {
        let latencies = Mutex<[Double]>([])
        let responseBytes = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let threads = try (0..<clients).map { _ in
            let sockets = try (0..<connections).map { _ in try HTTPLoadClient(port: port) }
            return LedgerThread {
                var local: [Double] = []
                local.reserveCapacity(1 << 20)
                while ContinuousClock.now < deadline {
                    let start = ContinuousClock.now
                    for socket in sockets { socket.send(target) }
                    for socket in sockets {
                        guard let bytes = socket.receive() else {
                            failures.add(1, ordering: .relaxed)
                            return
                        }
                        responseBytes.store(bytes, ordering: .relaxed)
                        local.append((ContinuousClock.now - start) / .milliseconds(1))
                    }
                }
                latencies.withLock { $0 += local }
            }
        }
        let start = ContinuousClock.now
        for thread in threads { thread.start() }
        for thread in threads { thread.join() }
        let elapsed = (ContinuousClock.now - start) / .seconds(1)
        guard failures.load(ordering: .relaxed) == 0 else { throw BenchFailure("\(target): a connection failed") }
        let sorted = latencies.withLock { $0 }.sorted()
        return LoadResult(
            rate: Double(sorted.count) / elapsed, p50: percentile(sorted, 0.50), p99: percentile(sorted, 0.99),
            bytes: responseBytes.load(ordering: .relaxed))
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))]
    }
}

/// The key `bench http` gives its `run` child.
enum BenchKeys {
    static let key = "bench-key"

    /// Writes a keys file with `key` (reader, every device) next to `data`; its path.
    static func file(_ data: String) throws -> String {
        let path = data + ".keys.json"
        try Data(#"{"keys":[{"key":"\#(key)","devices":["*"],"role":"reader"}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// A blocking keep-alive HTTP client for the benchmark: one request, one response. It
/// must cost little, since it shares the machine with the server it measures: responses
/// are framed by scanning bytes in place (the server writes `Content-Length` as is).
final class HTTPLoadClient: @unchecked Sendable {
    // SAFETY: each client is used by one thread at a time (the thread that owns it).
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    /// Received bytes not yet consumed: `buffer[start..<end]`.
    private var start = 0
    private var end = 0

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw BenchFailure("connect: errno \(errno)")
        }
    }

    deinit { close(fd) }

    func send(_ target: String) {
        let request = Array("GET \(target) HTTP/1.1\r\nHost: bench\r\nx-api-key: \(BenchKeys.key)\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { try? SystemCall.writeAll(fd, $0) }
    }

    /// Reads one whole response; its size in bytes, nil if the connection failed.
    func receive() -> Int? {
        response().map { $0.upperBound - $0.lowerBound }
    }

    /// One GET; the response body as text.
    func body(_ target: String) throws -> [UInt8] {
        send(target)
        guard let whole = response(), let bodyStart = headEnd(from: whole.lowerBound) else { throw BenchFailure("GET \(target): no response") }
        return Array(buffer[bodyStart..<whole.upperBound])
    }

    /// One GET; the response's head (status line and headers) as text.
    func head(_ target: String) throws -> String {
        send(target)
        guard let whole = response(), let bodyStart = headEnd(from: whole.lowerBound) else { throw BenchFailure("GET \(target): no response") }
        return String(decoding: buffer[whole.lowerBound..<bodyStart], as: UTF8.self)
    }

    func get(_ target: String) throws -> String {
        send(target)
        guard let whole = response(), let bodyStart = headEnd(from: whole.lowerBound) else { throw BenchFailure("GET \(target): no response") }
        return String(decoding: buffer[bodyStart..<whole.upperBound], as: UTF8.self)
    }

    /// The next response's range in `buffer` (valid until the next call).
    private func response() -> Range<Int>? {
        while true {
            if let bodyStart = headEnd(from: start) {
                let total = bodyStart - start + contentLength(start..<bodyStart)
                if end - start >= total {
                    defer { start += total }
                    return start..<(start + total)
                }
            }
            if start == end {
                (start, end) = (0, 0)
            } else if end == buffer.count {
                buffer.withUnsafeMutableBytes { raw in
                    raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: end - start)
                }
                (start, end) = (0, end - start)
            }
            let count = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + end, raw.count - end) }
            guard count > 0 else { return nil }
            end += count
        }
    }

    /// Where the body starts (after CRLF CRLF), if the head is complete.
    private func headEnd(from index: Int) -> Int? {
        var position = index
        while position + 3 < end {
            if buffer[position + 3] == 0x0A, buffer[position] == 0x0D, buffer[position + 1] == 0x0A, buffer[position + 2] == 0x0D {
                return position + 4
            }
            position += 1
        }
        return nil
    }

    private static let lengthField = Array("Content-Length: ".utf8)

    private func contentLength(_ head: Range<Int>) -> Int {
        let field = Self.lengthField
        var position = head.lowerBound
        while position + field.count < head.upperBound {
            if buffer[position] == field[0], buffer[position..<(position + field.count)].elementsEqual(field) {
                var value = 0
                position += field.count
                while position < head.upperBound, buffer[position] >= 0x30, buffer[position] <= 0x39 {
                    value = value * 10 + Int(buffer[position] - 0x30)
                    position += 1
                }
                return value
            }
            position += 1
        }
        return 0
    }
}
