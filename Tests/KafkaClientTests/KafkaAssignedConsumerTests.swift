import KafkaClient
import KafkaTestSupport
import Testing

/// The group-less readers beside ingest's consumer (cluster standbys, the membership
/// channel) are built as every client is (`KafkaClientHandle`), so they fail on a refused
/// login as ingest's consumer does instead of retrying quietly forever. librdkafka's mock
/// cluster speaks no SASL ("SASL Handshake not supported by broker"), which stands in for a
/// cluster refusing the login.
@Suite("Group-less readers against librdkafka's mock cluster")
struct KafkaAssignedConsumerTests {
    static let secret = "s3cr3t-Pa55word-7Q"
    static let sasl = KafkaConfiguration([
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN", "sasl.username": "chatledger", "sasl.password": secret,
    ])

    /// A mock cluster whose topic `events` holds `records` records keyed by device; the last
    /// offset of each partition.
    static func topic(partitions: Int, records: Int) throws -> (MockCluster, [Int32: Int64]) {
        let cluster = try MockCluster(topics: [("events", partitions)])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        for index in 0..<records { try producer.send(topic: "events", key: Array("dev-\(index)".utf8), value: Array("\(index)".utf8)) }
        try producer.flush(timeoutMilliseconds: 30_000)
        return (cluster, producer.report.lastOffsets)
    }

    @Test("an assigned consumer reads each assigned partition from the offset it was given, and nothing else")
    func readsAssignedPartitionsFromTheirOffsets() throws {
        let (cluster, ends) = try Self.topic(partitions: 2, records: 40)
        let last = try #require(ends[0], "partition 0 got records")
        #expect(last >= 2)

        let consumer = try KafkaAssignedConsumer(bootstrapServers: cluster.bootstrapServers, topic: "events")
        try consumer.assign([0: 2])
        var offsets: [Int64] = []
        for _ in 0..<600 where offsets.count < Int(last - 1) {
            _ = try consumer.poll(maxMessages: 100, timeoutMilliseconds: 100) { message in
                #expect(message.partition == 0, "only the assigned partition is read")
                offsets.append(message.offset)
            }
        }
        #expect(offsets == Array(2...last), "from offset 2 to the end, each once, in order")
    }

    @Test("assignments that follow one another at once (a standby while the cluster forms: one partition more at a time, then fewer) never abort the process, and the final one reads each partition from its offset, a partition kept reading on from where it was")
    func rapidAssignmentChanges() throws {
        let (cluster, ends) = try Self.topic(partitions: 12, records: 600)
        let consumer = try KafkaAssignedConsumer(bootstrapServers: cluster.bootstrapServers, topic: "events")
        var read: [Int32: [Int64]] = [:]
        for round in 0..<15 {
            for count in 1...12 {
                try consumer.assign(Dictionary(uniqueKeysWithValues: (0..<Int32(count)).map { ($0, 0) }))
                if count % 4 == 0 { _ = try consumer.poll(maxMessages: 50, timeoutMilliseconds: 0) { _ in } }
            }
            for count in stride(from: 11, through: round % 2 == 0 ? 1 : 6, by: -1) {
                try consumer.assign(Dictionary(uniqueKeysWithValues: (0..<Int32(count)).map { ($0, 0) }))
            }
        }
        // From no assignment: every partition from offset 0 (partition 0, kept all along,
        // may already have handed some messages over; it goes on from there).
        try consumer.assign([:])
        try consumer.assign(Dictionary(uniqueKeysWithValues: (0..<Int32(12)).map { ($0, 0) }))
        #expect(consumer.assignment.count == 12)
        let total = ends.values.reduce(0) { $0 + Int($1) + 1 }
        for _ in 0..<600 where read.values.reduce(0, { $0 + $1.count }) < total {
            _ = try consumer.poll(maxMessages: 500, timeoutMilliseconds: 100) { message in read[message.partition, default: []].append(message.offset) }
        }
        for (partition, last) in ends {
            #expect(read[partition] == Array(0...last), "partition \(partition): every record from offset 0, once, in order")
        }
    }

    @Test("a refused login ends the assigned consumer's polling with the authentication error, every later poll says the same, and the password appears in no error")
    func refusedLoginEndsPolling() throws {
        let cluster = try MockCluster(topics: [("events", 1)])
        let consumer = try KafkaAssignedConsumer(bootstrapServers: cluster.bootstrapServers, topic: "events", configuration: Self.sasl)
        try consumer.assign([0: 0])
        let error = try #require(Self.firstError { _ = try consumer.poll(maxMessages: 100, timeoutMilliseconds: 100) { _ in } })
        #expect(error.description.contains("cannot authenticate with the Kafka cluster"), "\(error)")
        #expect(!error.description.contains(Self.secret))
        #expect(throws: KafkaError.self, "it stays failed") {
            _ = try consumer.poll(maxMessages: 100, timeoutMilliseconds: 0) { _ in }
        }
    }

    @Test("a refused login ends the membership channel's reads with the authentication error")
    func refusedLoginEndsChannelReads() throws {
        let cluster = try MockCluster(topics: [("events.members", 1)])
        let channel = try KafkaPartitionChannel(bootstrapServers: cluster.bootstrapServers, topic: "events.members", configuration: Self.sasl)
        let error = try #require(Self.firstError { try channel.read(timeoutMilliseconds: 100) { _ in } })
        #expect(error.description.contains("cannot authenticate with the Kafka cluster"), "\(error)")
        #expect(!error.description.contains(Self.secret))
    }

    /// Calls `poll` (each call waits up to 100 ms) until it throws; the error, or nil after
    /// 60 s without one (librdkafka retrying quietly), so a regression fails instead of hanging.
    static func firstError(_ poll: () throws -> Void) -> KafkaError? {
        for _ in 0..<600 {
            do {
                try poll()
            } catch let error as KafkaError {
                return error
            } catch {
                Issue.record("not a KafkaError: \(error)")
                return nil
            }
        }
        return nil
    }
}
