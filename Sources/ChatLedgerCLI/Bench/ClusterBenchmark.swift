#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import Foundation
import KafkaClient
import LedgerSupport
import QueryWorker

/// `bench cluster`: two `chatledger run --advertise` children against one embedded broker
/// (in this process). Forwarding overhead: the same chat list asked of its owner and of the
/// other instance, which forwards it (closed loop, as `bench http`). Takeover: `events`
/// events on the topic, the owner SIGKILLed, then the time until the other instance answers
/// for the device again (failure detection, rebalance, rebuild or standby catch-up).
enum ClusterBenchmark {
    static let topic = DeviceEventsTopic.defaultName
    static let partitions = 4
    /// Failure detection in the benchmark (the group's session timeout).
    static let kafka = "session.timeout.ms=6000,heartbeat.interval.ms=500"

    static func run(seconds: Double, events: Int, standbys: [Int]) throws -> BenchReport {
        var report = BenchReport(bench: "cluster")
        let overhead = try Instances(standby: 0)
        try overhead.seed(events: 20_000)
        let (owner, other, device) = try overhead.ownedDevice()
        let target = "/api/v1/devices/\(device)/chats"
        let direct = try HTTPBenchmark.load(port: owner, target: target, seconds: seconds)
        let forwarded = try HTTPBenchmark.load(port: other, target: target, seconds: seconds)
        overhead.stop()
        report.add("owner_requests_per_s", direct.rate, "req/s")
        report.add("owner_p99_ms", direct.p99, "ms")
        report.add("forwarded_requests_per_s", forwarded.rate, "req/s")
        report.add("forwarded_p99_ms", forwarded.p99, "ms")
        report.add("forwarded_vs_owner_rate", forwarded.rate / max(direct.rate, 1), "ratio")
        for standby in standbys {
            let instances = try Instances(standby: standby)
            try instances.seed(events: events)
            let (_, survivor, device) = try instances.ownedDevice()
            if standby > 0, try !instances.awaitStandbys(events: events) {
                instances.stop()
                report.notes.append(
                    "standby \(standby): not measured, the embedded broker no longer had the start of the partitions (it keeps 5 MiB each), so there was nothing to follow; fewer --events (50000)")
                continue
            }
            let took = try instances.takeover(survivor: survivor, device: device)
            let rebuild = try instances.rebuild(survivor: survivor)
            instances.stop()
            report.add("takeover_standby_\(standby)_s", took, "s")
            report.add("takeover_standby_\(standby)_rebuild_s", rebuild.seconds, "s")
            if standby > 0 { report.add("takeover_standby_\(standby)_imported_records", Double(rebuild.imported), "records") }
        }
        report.notes.append("2 instances (chatledger run --advertise) on loopback, \(partitions) partitions, embedded broker in the bench process; \(HTTPBenchmark.clients)×\(HTTPBenchmark.connections) keep-alive connections for the overhead")
        report.notes.append("takeover: \(events) events on the topic, owner SIGKILLed, until the survivor answers for the device again; \(kafka)")
        report.notes.append("rebuild: in the survivor's log, the standby imports' own time plus from its partitions assigned to its last partition caught up (the Kafka fetch of what was not imported, and the fold)")
        return report
    }

    /// Two instances and their broker.
    final class Instances {
        let broker: MockCluster
        let directory: String
        var servers: [ServerProcess] = []
        var ports: [UInt16] = []

        init(standby: Int) throws {
            broker = try MockCluster(topics: [(ClusterBenchmark.topic, ClusterBenchmark.partitions), (ClusterBenchmark.topic + ".members", 1)])
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let keys = try BenchKeys.file(directory + "/k")
            for index in 0..<2 {
                let port = try LoopbackPort.free()
                var arguments = [
                    "run", "--brokers", broker.bootstrapServers, "--data", "\(directory)/i\(index)", "--http", "127.0.0.1:\(port)",
                    "--advertise", "http://127.0.0.1:\(port)", "--keys", keys, "--kafka-config", ClusterBenchmark.kafka,
                ]
                if standby > 0 { arguments += ["--standby", String(standby)] }
                servers.append(try ServerProcess(
                    executable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(), arguments: arguments,
                    standardError: "\(directory)/i\(index).log"))
                ports.append(port)
            }
        }

        func stop() {
            for server in servers { _ = server.terminate() }
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// `events` events of 200 devices, acknowledged.
        func seed(events: Int) throws {
            let producer = try KafkaProducer(bootstrapServers: broker.bootstrapServers, configuration: KafkaConfiguration(["linger.ms": "5"]))
            var model = TrafficModel(.init(devices: 200, chatsPerDevice: 30, seed: 5))
            for _ in 0..<events {
                let event = model.next().event
                try producer.send(topic: ClusterBenchmark.topic, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event))
            }
            try producer.flush(timeoutMilliseconds: 120_000)
        }

        /// A device, the port of its owner and of the other instance, once both answer for it.
        func ownedDevice() throws -> (owner: UInt16, other: UInt16, device: String) {
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let answers = ports.map { fetch($0, "/api/v1/devices/dev-1/unread") }
                if answers.allSatisfy({ $0.status == 200 }), let owner = answers[0].instance,
                    let index = ports.firstIndex(where: { "http://127.0.0.1:\($0)" == owner })
                {
                    return (ports[index], ports[1 - index], "dev-1")
                }
                usleep(100_000)
            }
            throw BenchFailure("the instances did not answer for dev-1 within 120 s")
        }

        /// Waits until each instance holds every event: its own partitions in its log, the
        /// other's in its standby log; false if a standby could not follow (records lost at the broker).
        func awaitStandbys(events: Int) throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(600)
            for (index, port) in ports.enumerated() {
                while true {
                    let log = (try? String(contentsOfFile: "\(directory)/i\(index).log", encoding: .utf8)) ?? ""
                    if log.contains("the broker no longer has the offset the standby log needs") { return false }
                    let text = (try? HTTPLoadClient(port: port)).flatMap { try? $0.get("/metrics") } ?? ""
                    let held = ClusterBenchmark.metric(text, "chatledger_ingest_records_total") + ClusterBenchmark.metric(text, "chatledger_standby_records_total")
                    if held >= Double(events) { break }
                    guard ContinuousClock.now < deadline else { throw BenchFailure("the standby logs did not catch up within 600 s") }
                    usleep(100_000)
                }
            }
            return true
        }

        /// From `survivor`'s log after the takeover: seconds spent importing from the standby
        /// log plus from the assignment to its last partition caught up, and the records imported.
        func rebuild(survivor: UInt16) throws -> (seconds: Double, imported: Int) {
            guard let index = ports.firstIndex(of: survivor) else { throw BenchFailure("no such instance") }
            let deadline = ContinuousClock.now + .seconds(600)
            while ContinuousClock.now < deadline {
                let lines = ((try? String(contentsOfFile: "\(directory)/i\(index).log", encoding: .utf8)) ?? "").split(separator: "\n")
                // The takeover: the last revocation, and every partition caught up after it
                // (the eager protocol assigns the survivor all of them again).
                if let revoked = lines.lastIndex(where: { $0.contains("msg=\"partitions revoked\"") }),
                    lines[revoked...].filter({ $0.contains("msg=\"partition caught up\"") }).count >= ClusterBenchmark.partitions,
                    let caught = lines[revoked...].lastIndex(where: { $0.contains("msg=\"partition caught up\"") }),
                    let assigned = lines[revoked...].firstIndex(where: { $0.contains("msg=\"partitions assigned\"") }),
                    let start = ClusterBenchmark.time(lines[assigned]), let end = ClusterBenchmark.time(lines[caught])
                {
                    // Imports run inside the assignment, before its log line: their own times are added.
                    let imports = lines[revoked...].filter { $0.contains("partition imported from the standby log") }
                    func field(_ line: Substring, _ name: String) -> Int {
                        line.split(separator: " ").first { $0.hasPrefix(name + "=") }.flatMap { Int($0.dropFirst(name.count + 1)) } ?? 0
                    }
                    let importSeconds = Double(imports.reduce(0) { $0 + field($1, "took_ms") }) / 1000
                    return (end - start + importSeconds, imports.reduce(0) { $0 + field($1, "records") })
                }
                usleep(100_000)
            }
            throw BenchFailure("no takeover in the survivor's log")
        }

        /// SIGKILLs the instance that is not `survivor`; seconds until `survivor` answers for `device` again.
        func takeover(survivor: UInt16, device: String) throws -> Double {
            let victim = servers[ports[0] == survivor ? 1 : 0]
            let start = ContinuousClock.now
            kill(victim.processIdentifier, SIGKILL)
            _ = victim.terminate()
            while ContinuousClock.now < start + .seconds(600) {
                let answer = fetch(survivor, "/api/v1/devices/\(device)/unread")
                if answer.status == 200, answer.instance == "http://127.0.0.1:\(survivor)" { return (ContinuousClock.now - start) / .seconds(1) }
                usleep(20_000)
            }
            throw BenchFailure("no takeover within 600 s")
        }
    }

    /// A sample's value in a `/metrics` text (summed over label sets), 0 when absent.
    static func metric(_ text: String, _ name: String) -> Double {
        text.split(separator: "\n").filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    /// A log line's `time=…T HH:MM:SS.mmm Z` as seconds of the day.
    static func time(_ line: Substring) -> Double? {
        guard let field = line.split(separator: " ").first(where: { $0.hasPrefix("time=") }), let t = field.firstIndex(of: "T") else { return nil }
        let parts = field[field.index(after: t)...].dropLast().split(separator: ":")
        guard parts.count == 3, let hours = Double(parts[0]), let minutes = Double(parts[1]), let seconds = Double(parts[2]) else { return nil }
        return hours * 3600 + minutes * 60 + seconds
    }

    /// One GET on a new connection: status and `X-Ledger-Instance`.
    static func fetch(_ port: UInt16, _ target: String) -> (status: Int, instance: String?) {
        guard let client = try? HTTPLoadClient(port: port), let text = try? client.head(target) else { return (0, nil) }
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let instance = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-ledger-instance:") }
            .map { $0.dropFirst("x-ledger-instance:".count).trimmingCharacters(in: .whitespaces) }
        return (status, instance)
    }

}
