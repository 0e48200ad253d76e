#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import Foundation
import Ingest
import KafkaClient
import LedgerSupport
import Synchronization

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
    static let topic = DeviceEventsTopic.defaultName
    /// Partitions of the child's embedded broker: room for the preload's chunks.
    static let partitions = 16
    /// Events per preload chunk (≈ 300 bytes each: under 1 MiB per partition).
    static let chunk = 40_000
    /// The background producer's `linger.ms` (see `FreshnessProbe`): about 20 events per
    /// message set and partition at 3,000 events/s over 16 partitions, as a bridge's
    /// producer batches under load; the markers have their own producer (`linger.ms=0`).
    static let backgroundLingerMilliseconds = 100
    /// Between two polls of a marker (see `FreshnessProbe`): the delays' resolution.
    static let pollPause = Duration.microseconds(250)

    /// - Parameters:
    ///   - directory: where each child's data directory is made (the disk measured).
    ///   - server: the `chatledger` binary run as the child (another build's, to compare
    ///     two builds under the same harness); nil: this one.
    static func run(devices sizes: [Int], chats: Int, rate: Int, seconds: Double, directory: String, server: String? = nil) throws -> BenchReport {
        var report = BenchReport(bench: "freshness")
        for devices in sizes {
            let label = "\(devices)x\(chats)"
            let measured = try measure(
                devices: devices, chats: chats, rate: rate, seconds: seconds, data: directory + "/freshness-\(getpid())-\(devices)", server: server)
            report.add("freshness_p50_ms_\(label)", measured.result.p50, "ms")
            report.add("freshness_p99_ms_\(label)", measured.result.p99, "ms")
            report.add("freshness_max_ms_\(label)", measured.result.max, "ms")
            report.add("markers_\(label)", Double(measured.result.delays.count + measured.result.notVisible), "markers")
            report.add("markers_not_visible_\(label)", Double(measured.result.notVisible), "markers")
            report.add("checkpoints_during_\(label)", Double(measured.checkpoints), "checkpoints")
            report.add("markers_over_50ms_\(label)", Double(measured.slowMarkers), "markers")
            report.add("markers_over_50ms_at_checkpoint_\(label)", Double(measured.slowMarkersAtCheckpoint), "markers")
            report.add("disk_fdatasync_p99_ms_\(label)", measured.diskSync.p99, "ms")
            report.add("disk_fdatasync_max_ms_\(label)", measured.diskSync.max, "ms")
            report.add("background_events_per_s_\(label)", measured.result.backgroundRate, "events/s")
            report.add("preload_chats_\(label)", Double(devices * chats), "chats")
            report.add("preload_events_per_s_\(label)", measured.preloadRate, "events/s")
            if let rss = measured.residentBytes { report.add("run_resident_mib_\(label)", Double(rss) / Double(1 << 20), "MiB") }
            report.add("run_cpu_percent_\(label)", measured.runCPU.total / measured.wall * 100, "% of a core")
            report.add("bench_cpu_percent_\(label)", measured.benchCPU.total / measured.wall * 100, "% of a core")
            measured.stages.add(to: &report, label: label, since: measured.started)
            report.notes.append("\(label): load average before \(measured.loadBefore), after \(measured.loadAfter)")
            report.notes.append("\(label): run's busiest threads: \(measured.runCPU.busiest(6, over: measured.wall))")
            report.notes.append("\(label): the bench's busiest threads: \(measured.benchCPU.busiest(4, over: measured.wall))")
        }
        report.notes.append(
            "chatledger run as a child process (embedded mock broker, \(partitions) partitions); preload: a chat.snapshot per chat through Kafka; "
                + "then \(rate) events/s of the same devices' traffic (producer linger.ms=\(backgroundLingerMilliseconds)) for \(Int(seconds)) s, a marker every 20 ms polled until visible (\(Int(pollPause / .microseconds(1))) µs between polls)")
        report.notes.append("checkpoints_during: checkpoints run wrote during the measurement (every 200,000 records or 30 s)")
        report.notes.append(
            "stage_*: per marker, ms from produced to fetched by ingest (kafka), to its batch in the log (append), to the applier "
                + "taking the batch (queue), to the record folded (apply), to the first poll answer showing it (poll); "
                + "tail_*: each stage's mean over the slowest 1 % of markers")
        report.notes.append(
            "markers_over_50ms_at_checkpoint: slow markers (over 50 ms or not visible) during which a checkpoint was completed; "
                + "disk_fdatasync: 4 KiB write + fdatasync every 100 ms next to the log meanwhile (how busy the disk was)")
        return report
    }

    struct Measured {
        var result: FreshnessProbe.Result
        var checkpoints: UInt64
        var preloadRate: Double
        var residentBytes: Int?
        var slowMarkers = 0
        var slowMarkersAtCheckpoint = 0
        var diskSync = FreshnessProbe.Result(delays: [])
        var stages: FreshnessStages
        var started: ContinuousClock.Instant
        /// Seconds the markers were measured, and the CPU time of `run` and of the bench meanwhile.
        var wall: Double
        var runCPU: ThreadCPU
        var benchCPU: ThreadCPU
        var loadBefore: String
        var loadAfter: String
    }

    /// `/proc/loadavg`'s three averages.
    private static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func measure(devices: Int, chats: Int, rate: Int, seconds: Double, data: String, server executable: String?) throws -> Measured {
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        // The child traces the markers' records through its stages (`FreshnessTrace`).
        let traceFile = data + ".trace"
        setenv(FreshnessTrace.keyVariable, "probe", 1)
        setenv(FreshnessTrace.fileVariable, traceFile, 1)
        let started = Result {
            try ServerProcess(
                executable: executable.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(),
                arguments: ["run", "--http", "127.0.0.1:0", "--data", data, "--keys", try BenchKeys.file(data), "--partitions", String(partitions)])
        }
        unsetenv(FreshnessTrace.keyVariable)
        unsetenv(FreshnessTrace.fileVariable)
        let server = try started.get()
        defer {
            _ = server.terminate()
            try? FileManager.default.removeItem(atPath: data + ".keys.json")
            try? FileManager.default.removeItem(atPath: traceFile)
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
        let watch = MeasurementWatch(data: data, checkpoints: checkpoints)
        watch.start()
        let probe = FreshnessProbe(
            background: model, rate: rate, markerInterval: .milliseconds(20), markerTimeout: .seconds(20), failOnTimeout: false,
            backgroundLingerMilliseconds: backgroundLingerMilliseconds, pollPause: pollPause)
        let loadBefore = loadAverage()
        let (runBefore, benchBefore) = (ThreadCPU(pid: server.processIdentifier), ThreadCPU(pid: getpid()))
        let probeStart = ContinuousClock.now
        let result = Result { try probe.run(server: server, until: .seconds(seconds)) }
        let wall = (ContinuousClock.now - probeStart) / .seconds(1)
        let (runCPU, benchCPU) = (ThreadCPU(pid: server.processIdentifier).since(runBefore), ThreadCPU(pid: getpid()).since(benchBefore))
        let (checkpointTimes, diskSync) = watch.stop()
        let after = checkpoints.sequences().last ?? 0
        let probed = try result.get()
        var measured = Measured(
            result: probed, checkpoints: after - before, preloadRate: preloadRate, residentBytes: server.residentBytes,
            stages: FreshnessStages(markers: probed.markers, traceFile: traceFile), started: probeStart, wall: wall, runCPU: runCPU,
            benchCPU: benchCPU, loadBefore: loadBefore, loadAfter: loadAverage())
        for marker in measured.result.markers where (marker.milliseconds ?? .infinity) > 50 {
            let (start, milliseconds) = (marker.start, marker.milliseconds)
            measured.slowMarkers += 1
            let end = start + .milliseconds(Int((milliseconds ?? 20_000) + 100))
            if checkpointTimes.contains(where: { $0 >= start && $0 <= end }) { measured.slowMarkersAtCheckpoint += 1 }
        }
        measured.diskSync = FreshnessProbe.Result(delays: diskSync.sorted())
        return measured
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

/// What happens around the markers, on its own thread: when each checkpoint appears (its
/// file is renamed into place at the end of the write), and how long a small write +
/// `fdatasync` next to the log takes (the disk's own latency meanwhile).
private final class MeasurementWatch: Sendable {
    private let data: String
    private let checkpoints: CheckpointStore
    private let stopping = Atomic<Bool>(false)
    private let observed = Mutex<(checkpointTimes: [ContinuousClock.Instant], diskSync: [Double])>(([], []))
    private let thread = Mutex<LedgerThread?>(nil)

    init(data: String, checkpoints: CheckpointStore) {
        self.data = data
        self.checkpoints = checkpoints
    }

    func start() {
        let worker = LedgerThread(name: "bench-watch") { [self] in watch() }
        thread.withLock { $0 = worker }
        worker.start()
    }

    /// Stops watching; the checkpoint completion times and the disk sync times in ms.
    func stop() -> (checkpointTimes: [ContinuousClock.Instant], diskSync: [Double]) {
        stopping.store(true, ordering: .releasing)
        thread.withLock { $0 }?.join()
        return observed.withLock { $0 }
    }

    private func watch() {
        let path = data + "/bench-disk-probe"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer {
            if descriptor >= 0 { close(descriptor) }
            unlink(path)
        }
        let block = [UInt8](repeating: 0x2A, count: 4096)
        var newest = checkpoints.sequences().last
        var tick = 0
        while !stopping.load(ordering: .acquiring) {
            let latest = checkpoints.sequences().last
            if latest != newest {
                newest = latest
                observed.withLock { $0.checkpointTimes.append(.now) }
            }
            if tick % 2 == 0, descriptor >= 0 {
                let start = ContinuousClock.now
                let synced = block.withUnsafeBytes { bytes in
                    (try? SystemCall.run("pwrite") { pwrite(descriptor, bytes.baseAddress, bytes.count, 0) }) != nil
                        && (try? SystemCall.run("fdatasync") { fdatasync(descriptor) }) != nil
                }
                if synced { observed.withLock { $0.diskSync.append((ContinuousClock.now - start) / .milliseconds(1)) } }
            }
            tick += 1
            usleep(50_000)  // the watch's sampling period, not synchronisation
        }
    }
}
