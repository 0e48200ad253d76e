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
    static let kafka = "session.timeout.ms=6000,heartbeat.interval.ms=500,partition.assignment.strategy=cooperative-sticky"

    /// A cluster: the broker and three instances, each with its own data directory.
    final class Cluster {
        let broker: MockCluster
        let directory: String
        var instances: [ServerProcess?] = []
        var ports: [UInt16] = []

        init(instances count: Int = 3, extra: [String] = []) throws {
            broker = try MockCluster(topics: [(ClusterModeTests.topic, ClusterModeTests.partitions), (ClusterModeTests.topic + ".members", 1)])
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for index in 0..<count {
                let port = try freePort()
                ports.append(port)
                instances.append(
                    try ServerProcess(
                        executable: ChatLedgerProcess.executable,
                        arguments: [
                            "run", "--brokers", broker.bootstrapServers, "--data", "\(directory)/i\(index)", "--http", "127.0.0.1:\(port)",
                            "--advertise", "http://127.0.0.1:\(port)", "--kafka-config", ClusterModeTests.kafka,
                        ] + extra,
                        standardError: "\(directory)/i\(index).log"))
            }
        }

        deinit {
            for instance in instances { _ = instance?.terminate() }
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// SIGKILLs instance `index`.
        func kill(_ index: Int) {
            guard let instance = instances[index] else { return }
            Glibc.kill(instance.processIdentifier, SIGKILL)
            _ = instance.terminate()
            instances[index] = nil
        }
    }

    /// A port free right now on loopback (an instance must know its URL before it listens).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw NoFreePort(errno: errno) }
        return UInt16(bigEndian: address.sin_port)
    }

    struct NoFreePort: Error {
        var errno: Int32
    }

    /// One answer: status, the headers that matter, the body.
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    static func get(_ port: UInt16, _ target: String) throws -> Answer {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET \(target) HTTP/1.1\r\nHost: x\r\nx-api-key: demo-key\r\nConnection: close\r\n\r\n")
        let response = client.readToEnd()
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? -1
        guard let end = response.range(of: "\r\n\r\n") else { return Answer(status: status, headers: [:], body: "") }
        var headers: [String: String] = [:]
        for line in response[..<end.lowerBound].split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(status: status, headers: headers, body: String(response[end.upperBound...]))
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

    @Test("3 instances, 12 partitions, 1,000 devices: every device's chat list from every instance is identical (body, ETag, position) and correct, and names the owner in X-Ledger-Instance")
    func everyInstanceAnswersEveryDevice() throws {
        let cluster = try Cluster()
        let producer = try KafkaRecordProducer(bootstrapServers: cluster.broker.bootstrapServers, topic: Self.topic, deliveryTimeoutMilliseconds: 10_000)
        defer { producer.close(timeoutMilliseconds: 5_000) }
        let devices = (0..<1_000).map { "cd-\($0)" }
        var last: [String: KafkaRecordProducer.Delivery] = [:]
        let pending = Mutex<[String: KafkaRecordProducer.Delivery]>([:])
        let group = DispatchGroup()
        for (index, device) in devices.enumerated() {
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
        last = pending.withLock { $0 }
        #expect(last.count == devices.count, "every device's events acknowledged")
        for (device, delivery) in last {
            #expect(DevicePartitioner.partition(of: device, partitions: Self.partitions) == delivery.partition, "the producers' partitioner is the router's")
        }

        // Until membership settles, an instance may say 503 with Retry-After: then ask again.
        let deadline = ContinuousClock.now + .seconds(60)
        var owners: Set<String> = []
        for (index, device) in devices.enumerated() {
            let delivery = try #require(last[device])
            var answers: [Answer] = []
            for port in cluster.ports {
                var answer = try Self.get(port, "/api/v1/devices/\(device)/chats?minPosition=\(delivery.partition):\(delivery.offset)&wait=10000")
                while answer.status == 503, ContinuousClock.now < deadline {
                    #expect(answer.headers["retry-after"] != nil, "a 503 says when to come back")
                    usleep(100_000)
                    answer = try Self.get(port, "/api/v1/devices/\(device)/chats?minPosition=\(delivery.partition):\(delivery.offset)&wait=10000")
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
        #expect(owners == Set(cluster.ports.map { "http://127.0.0.1:\($0)" }), "the partitions are spread over all three instances")
    }
}
