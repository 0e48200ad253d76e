#if canImport(Glibc)
import Glibc
#endif
import ChatLedgerCLI
import Foundation
import KafkaClient
import KafkaTestSupport
import QueryWorker
import Synchronization
import Testing

/// Cluster mode (SPEC §9) with real processes: three `chatledger run --advertise` on
/// loopback against one embedded broker (this process's mock cluster), 12 partitions.
@Suite("cluster mode: three instances, any one answers for any device", .serialized)
struct ClusterModeTests {
    static let topic = "wa.device-events"
    static let partitions = 12
    /// Fast failure detection for the tests (a dead member leaves the group after this).
    /// The eager protocol: librdkafka 2.0.2's mock coordinator, with cooperative-sticky,
    /// drops the survivors' assignments again and again after a member dies (measured: 28 s
    /// until every device answered again, against 14 s eager). `CLUSTER_TEST_KAFKA` overrides.
    static let kafka = ProcessInfo.processInfo.environment["CLUSTER_TEST_KAFKA"] ?? "session.timeout.ms=6000,heartbeat.interval.ms=500"

    /// A cluster: the broker and three instances, each with its own data directory.
    final class Cluster {
        let broker: MockCluster
        let directory: String
        var instances: [ServerProcess?] = []
        var ports: [UInt16] = []
        let extra: [String]

        init(instances count: Int = 3, extra: [String] = []) throws {
            broker = try MockCluster(topics: [(ClusterModeTests.topic, ClusterModeTests.partitions), (ClusterModeTests.topic + ".members", 1)])
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)").path
            self.extra = extra
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for _ in 0..<count { try add() }
        }

        /// Starts one more instance, with data directory `i<index>`; returns its index.
        @discardableResult
        func add() throws -> Int {
            let index = instances.count
            let port = try LoopbackPort.free()
            ports.append(port)
            instances.append(
                try ServerProcess(
                    executable: ChatLedgerProcess.executable,
                    arguments: [
                        "run", "--brokers", broker.bootstrapServers, "--data", data(index), "--http", "127.0.0.1:\(port)",
                        "--advertise", "http://127.0.0.1:\(port)", "--kafka-config", ClusterModeTests.kafka,
                    ] + extra,
                    standardError: "\(directory)/i\(index).log"))
            return index
        }

        /// Instance `index`'s data directory.
        func data(_ index: Int) -> String { "\(directory)/i\(index)" }

        /// The partitions whose log instance `index` holds.
        func logPartitions(_ index: Int) -> Set<Int32> {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(data(index))/log/\(ClusterModeTests.topic)")) ?? []
            return Set(names.compactMap { Int32($0) })
        }

        deinit {
            for instance in instances { _ = instance?.terminate() }
            // CLUSTER_TEST_KEEP keeps the instances' logs and data to look at.
            if ProcessInfo.processInfo.environment["CLUSTER_TEST_KEEP"] == nil {
                try? FileManager.default.removeItem(atPath: directory)
            } else {
                print("kept \(directory)")
            }
        }

        /// SIGKILLs instance `index`.
        func kill(_ index: Int) {
            guard let instance = instances[index] else { return }
            Glibc.kill(instance.processIdentifier, SIGKILL)
            _ = instance.terminate()
            instances[index] = nil
        }
    }

    /// One answer: status, the headers, the body.
    typealias Answer = HTTPAnswer

    static func get(_ port: UInt16, _ target: String, key: String = "demo-key") throws -> Answer {
        try HTTPAnswer.get(port, target, key: key)
    }

    /// `count` messages from another person in chat `c1@c.us` of `device`, numbered from `first`.
    static func messages(_ device: String, from first: Int, count: Int) -> [String] {
        (first..<(first + count)).map { number in
            #"{"schemaVersion":1,"eventId":"E-\#(device)-\#(number)","deviceId":"\#(device)","type":"message.created","occurredAt":\#(1_000 + number),"chatId":"c1@c.us","data":{"messageId":"M-\#(device)-\#(number)","fromMe":false,"kind":"text","preview":"hi"}}"#
        }
    }

    /// Sends one event and waits for the broker's acknowledgement: where it was written.
    static func send(_ producer: KafkaRecordProducer, device: String, value: String) throws -> KafkaRecordProducer.Delivery {
        let result = Mutex<Result<KafkaRecordProducer.Delivery, KafkaRecordProducer.Failure>?>(nil)
        let done = DispatchSemaphore(value: 0)
        producer.send(key: Array(device.utf8), value: Array(value.utf8)) { outcome in
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0 }!.get()
    }

    /// `index % 4 + 1` messages for each device `cd-index`, acknowledged; each device's last delivery.
    static func produceDevices(_ broker: MockCluster, count: Int) throws -> [String: KafkaRecordProducer.Delivery] {
        let producer = try KafkaRecordProducer(bootstrapServers: broker.bootstrapServers, topic: Self.topic, deliveryTimeoutMilliseconds: 10_000)
        defer { producer.close(timeoutMilliseconds: 5_000) }
        let pending = Mutex<[String: KafkaRecordProducer.Delivery]>([:])
        let group = DispatchGroup()
        for index in 0..<count {
            let device = "cd-\(index)"
            for value in Self.messages(device, from: 1, count: index % 4 + 1) {
                group.enter()
                producer.send(key: Array(device.utf8), value: Array(value.utf8)) { outcome in
                    if case .success(let delivery) = outcome {
                        pending.withLock { deliveries in
                            if delivery.offset > deliveries[device]?.offset ?? -1 { deliveries[device] = delivery }
                        }
                    }
                    group.leave()
                }
            }
        }
        group.wait()
        return pending.withLock { $0 }
    }

    /// Every device's chat list from every port in `ports` (waiting for its last event with
    /// `minPosition`; a 503 must say Retry-After and is asked again): identical everywhere
    /// and correct. Returns the instances that answered as owners.
    static func expectEveryDeviceEverywhere(_ last: [String: KafkaRecordProducer.Delivery], count: Int, ports: [UInt16], key: String = "demo-key") throws -> Set<String> {
        let deadline = ContinuousClock.now + .seconds(60)
        // Each request waits for its partition's last event, not only the device's: an answer
        // reflects the partition up to where its instance has applied it, so only answers
        // from the partition's end can be asked to carry the same position.
        var partitionEnds: [Int32: Int64] = [:]
        for delivery in last.values { partitionEnds[delivery.partition] = max(partitionEnds[delivery.partition] ?? 0, delivery.offset) }
        var owners: Set<String> = []
        for index in 0..<count {
            let device = "cd-\(index)"
            let delivery = try #require(last[device], "every device's events acknowledged")
            #expect(DevicePartitioner.partition(of: device, partitions: Self.partitions) == delivery.partition, "the producers' partitioner is the router's")
            let end = partitionEnds[delivery.partition] ?? delivery.offset
            var answers: [Answer] = []
            for port in ports {
                let target = "/api/v1/devices/\(device)/chats?minPosition=\(delivery.partition):\(end)&wait=10000"
                var answer = try Self.get(port, target, key: key)
                while answer.status == 503, ContinuousClock.now < deadline {
                    #expect(answer.headers["retry-after"] != nil, "a 503 says when to come back")
                    usleep(100_000)
                    answer = try Self.get(port, target, key: key)
                }
                try #require(answer.status == 200, "\(device) from port \(port): \(answer.status) \(answer.body)")
                answers.append(answer)
            }
            let chats = answers[0].json["chats"] as? [[String: Any]]
            #expect(chats?.count == 1)
            #expect(chats?.first?["id"] as? String == "c1@c.us")
            #expect(chats?.first?["unreadCount"] as? Int == index % 4 + 1, "\(device)")
            #expect((chats?.first?["lastMessage"] as? [String: Any])?["id"] as? String == "M-\(device)-\(index % 4 + 1)")
            for answer in answers.dropFirst() {
                #expect(answer.body == answers[0].body, "\(device): the same body from every instance")
                #expect(answer.headers["etag"] == answers[0].headers["etag"])
                #expect(answer.headers["x-ledger-position"] == answers[0].headers["x-ledger-position"])
                #expect(answer.headers["x-ledger-instance"] == answers[0].headers["x-ledger-instance"], "the owner answered, whoever was asked")
            }
            let position = (answers[0].headers["x-ledger-position"] ?? "").split(separator: ":").compactMap { Int64($0) }
            #expect(position.count == 2 && position[0] == Int64(delivery.partition) && position[1] >= delivery.offset, "the device's partition, at or past its last event")
            owners.insert(answers[0].headers["x-ledger-instance"] ?? "")
        }
        return owners
    }

    @Test("3 instances, 12 partitions, 1,000 devices: every device's chat list from every instance is identical (body, ETag, position) and correct, and names the owner in X-Ledger-Instance")
    func everyInstanceAnswersEveryDevice() throws {
        let cluster = try Cluster()
        let last = try Self.produceDevices(cluster.broker, count: 1_000)
        let owners = try Self.expectEveryDeviceEverywhere(last, count: 1_000, ports: cluster.ports)
        #expect(owners == Set(cluster.ports.map { "http://127.0.0.1:\($0)" }), "the partitions are spread over all three instances")
    }

    @Test("ingest and serve as separate processes: each ingest advertises the serve beside it, and both serves answer every device identically and correctly")
    func ingestAndServePairs() throws {
        let broker = try MockCluster(topics: [(Self.topic, Self.partitions), (Self.topic + ".members", 1)])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-pairs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = directory + "/keys.json"
        try Data(#"{"keys":[{"key":"pair-key","devices":["*"],"role":"reader"}]}"#.utf8).write(to: URL(fileURLWithPath: keys))
        let last = try Self.produceDevices(broker, count: 200)
        var processes: [ServerProcess] = []
        defer { for process in processes.reversed() { _ = process.terminate() } }
        var ports: [UInt16] = []
        for index in 0..<2 {
            let port = try LoopbackPort.free()
            let url = "http://127.0.0.1:\(port)"
            let data = "\(directory)/i\(index)"
            processes.append(try ServerProcess(
                executable: ChatLedgerProcess.executable,
                arguments: ["ingest", "--brokers", broker.bootstrapServers, "--data", data, "--http", "127.0.0.1:0", "--advertise", url, "--kafka-config", Self.kafka],
                standardError: "\(directory)/ingest\(index).log"))
            processes.append(try ServerProcess(
                executable: ChatLedgerProcess.executable,
                arguments: ["serve", "--data", data, "--http", "127.0.0.1:\(port)", "--keys", keys, "--brokers", broker.bootstrapServers, "--advertise", url],
                standardError: "\(directory)/serve\(index).log"))
            ports.append(port)
        }
        let owners = try Self.expectEveryDeviceEverywhere(last, count: 200, ports: ports, key: "pair-key")
        #expect(owners == Set(ports.map { "http://127.0.0.1:\($0)" }), "both pairs own partitions")
    }

    /// One instance alone, owning every partition, answering for `devices` devices produced before.
    static func oneInstance(devices count: Int) throws -> (Cluster, [String: KafkaRecordProducer.Delivery]) {
        let cluster = try Cluster(instances: 1)
        let last = try produceDevices(cluster.broker, count: count)
        _ = try expectEveryDeviceEverywhere(last, count: count, ports: cluster.ports)
        return (cluster, last)
    }

    @Test("an instance joins: the first drops the logs of the partitions the newcomer owns once it has caught up, and an erasure the newcomer applies leaves nothing of the device on either disk")
    func partitionsMovedAwayAreDropped() throws {
        let count = 200
        let (cluster, last) = try Self.oneInstance(devices: count)
        #expect(cluster.logPartitions(0).count == Self.partitions, "alone, the first instance holds every partition")

        let joined = try cluster.add()
        // The first instance drops what the newcomer owns once it has caught up (checked
        // before asking both: while ownership moves, two answers may name two owners).
        let settled = Polling.until(seconds: 60, every: .milliseconds(100)) {
            let first = cluster.logPartitions(0)
            let second = cluster.logPartitions(joined)
            return !second.isEmpty && first.isDisjoint(with: second) && first.union(second).count == Self.partitions
        }
        #expect(settled, "logs: first \(cluster.logPartitions(0).sorted()), newcomer \(cluster.logPartitions(joined).sorted())")
        let dropped = MetricsText.value(try Self.get(cluster.ports[0], "/metrics").body, "chatledger_partitions_dropped_total") ?? 0
        #expect(dropped == Double(cluster.logPartitions(joined).count), "one drop per partition moved")
        // Every device still answers, from its owner, through either instance.
        let owners = try Self.expectEveryDeviceEverywhere(last, count: count, ports: cluster.ports)
        #expect(owners.count == 2, "both instances own partitions")

        // A device of a partition that moved (three digits: no other id starts with it) is erased.
        let moved = cluster.logPartitions(joined)
        let device = try #require((100..<count).map { "cd-\($0)" }.first { last[$0].map { moved.contains($0.partition) } ?? false })
        let erase = try ChatLedgerProcess.run(["erase", "--brokers", cluster.broker.bootstrapServers, "--device", device, "--reason", "test"])
        #expect(erase.status == 0, "\(erase.standardError)")
        let erased = Polling.until(seconds: 60, every: .milliseconds(100)) {
            guard let answer = try? Self.get(cluster.ports[joined], "/api/v1/devices/\(device)/chats") else { return false }
            return answer.status == 404 || (answer.status == 200 && (answer.json["chats"] as? [Any])?.isEmpty == true)
        }
        #expect(erased, "the owner applied the erasure")
        for index in [0, joined] {
            for (path, bytes) in try DirectoryFiles.all(under: cluster.data(index)) {
                #expect(bytes.firstRange(of: Array(device.utf8)) == nil, "\(path) still names \(device)")
            }
        }
    }

    @Test("another deployment on the same topic (another consumer group) advertising its own URL is not this cluster: no device is routed to it and no partition log is dropped for it")
    func anotherGroupIsAnotherCluster() throws {
        let count = 100
        let (cluster, last) = try Self.oneInstance(devices: count)
        // An ingest of another group, advertising a URL nobody serves, catches every partition up.
        let other = cluster.directory + "/other"
        let ingest = try IngestProcess(
            brokers: cluster.broker.bootstrapServers, data: other, group: "another-deployment",
            extra: ["--advertise", "http://127.0.0.1:9", "--kafka-config", Self.kafka])
        defer { _ = ingest.terminate() }
        var ends: [Int32: Int64] = [:]
        for delivery in last.values { ends[delivery.partition] = max(ends[delivery.partition] ?? -1, delivery.offset) }
        try IngestTesting.waitForLog(data: other, lastOffsets: ends)
        let log = try String(contentsOfFile: ingest.standardErrorPath, encoding: .utf8)
        try #require(Polling.until(seconds: 30, every: .milliseconds(100)) {
            ((try? String(contentsOfFile: ingest.standardErrorPath, encoding: .utf8)) ?? log).contains("state=ready")
        }, "the other deployment wrote its ready records")
        let owners = try Self.expectEveryDeviceEverywhere(last, count: count, ports: cluster.ports)
        #expect(owners == ["http://127.0.0.1:\(cluster.ports[0])"], "every device answered by this cluster's own instance")
        #expect(cluster.logPartitions(0).count == Self.partitions, "no partition log dropped")
        let metrics = try Self.get(cluster.ports[0], "/metrics").body
        #expect(MetricsText.value(metrics, "chatledger_partitions_dropped_total") == 0)
    }

    /// What the load has had acknowledged for a device: its unread messages and where the last one is.
    struct Acknowledged {
        var count: Int
        var position: String
    }

    /// What the queries under load saw.
    struct Tally {
        var ok = 0
        var unavailable = 0
        var failures: [String] = []
    }

    @Test("SIGKILL one of three instances under query and produce load: every answer is correct (never behind an acknowledged minPosition) or 503 with Retry-After; a change stream relayed from the killed owner is told to reconnect; every device answers again (time printed)")
    func failoverAfterSigkill() throws {
        let cluster = try Cluster()
        let producer = try KafkaRecordProducer(bootstrapServers: cluster.broker.bootstrapServers, topic: Self.topic, deliveryTimeoutMilliseconds: 10_000)
        defer { producer.close(timeoutMilliseconds: 5_000) }
        let devices = (0..<120).map { "kd-\($0)" }
        let acknowledged = Mutex<[String: Acknowledged]>([:])
        for device in devices {
            let delivery = try Self.send(producer, device: device, value: Self.messages(device, from: 1, count: 1)[0])
            acknowledged.withLock { $0[device] = Acknowledged(count: 1, position: "\(delivery.partition):\(delivery.offset)") }
        }
        let survivors = Array(cluster.ports.dropFirst())
        let doomed = "http://127.0.0.1:\(cluster.ports[0])"
        // Every device answers everywhere, and one owned by the instance to kill is watched
        // through a change stream relayed by another.
        _ = try Self.sweep(devices, ports: cluster.ports, acknowledged: acknowledged, deadline: .now + .seconds(60))
        var watched: String?
        for device in devices where watched == nil {
            if try Self.get(survivors[0], "/api/v1/devices/\(device)/unread").headers["x-ledger-instance"] == doomed { watched = device }
        }
        let device = try #require(watched, "the instance to kill owns some device")
        let stream = try LoopbackClient(port: survivors[0])
        defer { stream.close() }
        stream.send("GET /api/v1/devices/\(device)/changes HTTP/1.1\r\nHost: x\r\nx-api-key: demo-key\r\n\r\n")
        let opening = stream.readUntil("event: version")
        #expect(opening.contains("X-Ledger-Instance: \(doomed)"), "relayed from the owner")

        // Load: one producer, two query threads against the survivors.
        let stopping = Atomic<Bool>(false)
        let tally = Mutex(Tally())
        let produced = Atomic<Int>(0)
        let load = LedgerTestThreads()
        load.start {
            var number = 2
            while !stopping.load(ordering: .acquiring) {
                for device in devices where !stopping.load(ordering: .acquiring) {
                    guard let delivery = try? Self.send(producer, device: device, value: Self.messages(device, from: number, count: 1)[0]) else { continue }
                    acknowledged.withLock { $0[device] = Acknowledged(count: number, position: "\(delivery.partition):\(delivery.offset)") }
                    produced.add(1, ordering: .relaxed)
                    usleep(2_000)
                }
                number += 1
            }
        }
        for worker in 0..<2 {
            load.start {
                var index = worker
                while !stopping.load(ordering: .acquiring) {
                    index += 7
                    let device = devices[index % devices.count]
                    guard let expected = acknowledged.withLock({ $0[device] }) else { continue }
                    let port = survivors[index % survivors.count]
                    let verdict = Self.judge(try? Self.get(port, "/api/v1/devices/\(device)/unread?minPosition=\(expected.position)&wait=3000"), expected)
                    tally.withLock { tally in
                        switch verdict {
                        case .none: tally.ok += 1
                        case .some("503"): tally.unavailable += 1
                        case .some(let failure): tally.failures.append("\(device) via \(port): \(failure)")
                        }
                    }
                }
            }
        }
        try AdaptTesting.waitUntil("200 events produced under load") { produced.load(ordering: .relaxed) >= 200 }
        let killed = ContinuousClock.now
        cluster.kill(0)
        let told = stream.readUntil("event: reconnect")
        #expect(told.contains("event: reconnect"), "the relayed stream says its owner is gone")
        let recovered = try Self.sweep(devices, ports: survivors, acknowledged: acknowledged, deadline: killed + .seconds(90))
        stopping.store(true, ordering: .releasing)
        load.join()
        let result = tally.withLock { $0 }
        print("cluster failover: every device answered again from both survivors \(recovered - killed) after SIGKILL; under load \(result.ok) correct answers, \(result.unavailable) 503 with Retry-After, \(result.failures.count) wrong; \(produced.load(ordering: .relaxed)) events produced")
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.ok > 0)
    }

    /// nil when `answer` is a correct answer for a device with `expected` acknowledged;
    /// "503" for a 503 with Retry-After; otherwise what is wrong with it.
    static func judge(_ answer: Answer?, _ expected: Acknowledged) -> String? {
        guard let answer else { return "no answer" }
        switch answer.status {
        case 200:
            guard let messages = answer.json["unreadMessages"] as? Int else { return "200 without unreadMessages: \(answer.body)" }
            return messages >= expected.count ? nil : "stale: \(messages) unread, \(expected.count) acknowledged at \(expected.position)"
        case 503:
            return answer.headers["retry-after"] == nil ? "503 without Retry-After" : "503"
        default:
            return "\(answer.status): \(answer.body)"
        }
    }

    /// Asks every device of every instance in `ports` (with `minPosition` of what is
    /// acknowledged) until one whole pass answers 200 for all; returns when that pass ended.
    /// Answers that are not 200 must be 503 with Retry-After.
    static func sweep(
        _ devices: [String], ports: [UInt16], acknowledged: borrowing Mutex<[String: Acknowledged]>, deadline: ContinuousClock.Instant
    ) throws -> ContinuousClock.Instant {
        while true {
            var all = true
            for device in devices {
                for port in ports {
                    guard let expected = acknowledged.withLock({ $0[device] }) else { continue }
                    let answer = try get(port, "/api/v1/devices/\(device)/unread?minPosition=\(expected.position)&wait=3000")
                    switch judge(answer, expected) {
                    case .none: continue
                    case .some("503"): all = false
                    case .some(let failure): Issue.record("\(device) via \(port): \(failure)")
                    }
                }
            }
            if all { return .now }
            guard ContinuousClock.now < deadline else {
                Issue.record("not every device answered before the deadline")
                return .now
            }
            usleep(100_000)
        }
    }
}
