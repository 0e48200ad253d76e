#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import Foundation
import KafkaClient
import LedgerSupport

/// `bench freshness`: produce → visible latency on a large projection, across checkpoints.
///
/// For each size, a fresh `chatledger run` child (embedded broker) is preloaded through
/// Kafka with a history sync of every chat of `devices` × `chats` (one `chat.snapshot`
/// each, in chunks the broker keeps: the mock holds only 5 MiB per partition, so each
/// chunk is applied before the next is sent). Then, for `seconds`, the same model's
/// traffic runs at `rate` events/s while markers are produced every 20 ms and polled until
/// visible (`FreshnessProbe`): p50, p99, max, markers not visible within 20 s, and how
/// many checkpoints `run` wrote meanwhile (every 200,000 records or 30 s).
enum FreshnessBenchmark {
    static let topic = "wa.device-events"
    /// Partitions of the child's embedded broker: room for the preload's chunks.
    static let partitions = 16
    /// Events per preload chunk (≈ 300 bytes each: under 1 MiB per partition).
    static let chunk = 40_000

    static func run(devices sizes: [Int], chats: Int, rate: Int, seconds: Double) throws -> BenchReport {
        var report = BenchReport(bench: "freshness")
        for devices in sizes {
            let label = "\(devices)x\(chats)"
            let measured = try measure(devices: devices, chats: chats, rate: rate, seconds: seconds)
            report.add("freshness_p50_ms_\(label)", measured.result.p50, "ms")
            report.add("freshness_p99_ms_\(label)", measured.result.p99, "ms")
            report.add("freshness_max_ms_\(label)", measured.result.max, "ms")
            report.add("markers_\(label)", Double(measured.result.delays.count + measured.result.notVisible), "markers")
            report.add("markers_not_visible_\(label)", Double(measured.result.notVisible), "markers")
            report.add("checkpoints_during_\(label)", Double(measured.checkpoints), "checkpoints")
            report.add("background_events_per_s_\(label)", measured.result.backgroundRate, "events/s")
            report.add("preload_chats_\(label)", Double(devices * chats), "chats")
            report.add("preload_events_per_s_\(label)", measured.preloadRate, "events/s")
            if let rss = measured.residentBytes { report.add("run_resident_mib_\(label)", Double(rss) / Double(1 << 20), "MiB") }
        }
        report.notes.append(
            "chatledger run as a child process (embedded mock broker, \(partitions) partitions); preload: a chat.snapshot per chat through Kafka; "
                + "then \(rate) events/s of the same devices' traffic for \(Int(seconds)) s, a marker every 20 ms polled until visible")
        report.notes.append("checkpoints_during: checkpoints run wrote during the measurement (every 200,000 records or 30 s)")
        return report
    }

    struct Measured {
        var result: FreshnessProbe.Result
        var checkpoints: UInt64
        var preloadRate: Double
        var residentBytes: Int?
    }

    static func measure(devices: Int, chats: Int, rate: Int, seconds: Double) throws -> Measured {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("bench-freshness-\(getpid())-\(devices)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try ServerProcess(
            executable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(),
            arguments: ["run", "--http", "127.0.0.1:0", "--data", data, "--keys", try BenchKeys.file(data), "--partitions", String(partitions)])
        defer {
            _ = server.terminate()
            try? FileManager.default.removeItem(atPath: data + ".keys.json")
        }

        var model = TrafficModel(.init(devices: devices, chatsPerDevice: chats, seed: 24))
        let producer = try KafkaProducer(bootstrapServers: server.brokers, configuration: KafkaConfiguration(["linger.ms": "5"]))
        let client = try HTTPLoadClient(port: server.port)
        // Ready once its consumer has its partitions (all empty yet): the preload rate then
        // leaves out the group join.
        let joining = ContinuousClock.now
        while !(try client.get("/readyz")).contains("\"ready\"") {
            guard ContinuousClock.now - joining < .seconds(60) else { throw BenchFailure("run not ready after 60 s") }
            usleep(10_000)  // polling readiness, which has no other signal
        }
        let preloadStart = ContinuousClock.now
        var inChunk = 0
        for device in 0..<devices {
            for event in model.historySync(deviceIndex: device) {
                try producer.send(topic: topic, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event))
                inChunk += 1
            }
            if inChunk >= chunk || device == devices - 1 {
                try waitUntilApplied(producer, client)
                inChunk = 0
            }
        }
        let preloadRate = Double(devices * chats) / ((ContinuousClock.now - preloadStart) / .seconds(1))

        let checkpoints = CheckpointStore(dataDirectory: data)
        let before = checkpoints.sequences().last ?? 0
        let probe = FreshnessProbe(
            background: model, rate: rate, markerInterval: .milliseconds(20), markerTimeout: .seconds(20), failOnTimeout: false)
        let result = try probe.run(server: server, until: .seconds(seconds))
        let after = checkpoints.sequences().last ?? 0
        return Measured(result: result, checkpoints: after - before, preloadRate: preloadRate, residentBytes: server.residentBytes)
    }

    /// Sends what is queued and returns once the child has applied it (every partition's
    /// last offset, through `minPosition`).
    private static func waitUntilApplied(_ producer: KafkaProducer, _ client: HTTPLoadClient) throws {
        try producer.flush(timeoutMilliseconds: 120_000)
        guard producer.report.failed == 0 else { throw BenchFailure("preload: \(producer.report.failed) events not delivered") }
        for (partition, offset) in producer.report.lastOffsets.sorted(by: { $0.key < $1.key }) {
            let body = try client.get("/api/v1/devices/dev-1/unread?minPosition=\(partition):\(offset)&wait=30000")
            guard body.contains("unreadMessages") else { throw BenchFailure("preload: \(partition):\(offset) not applied within 30 s: \(body)") }
        }
    }
}
