import ChatEvents
import KafkaClient
import KafkaTestSupport
import Testing

@Suite("KafkaProducer against librdkafka's mock cluster")
struct KafkaProducerTests {
    @Test("every sent message is delivered, counted per partition, and read back byte for byte")
    func deliversAndCounts() throws {
        let cluster = try MockCluster(topics: [("events", 3)])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        var model = TrafficModel(.init(devices: 6, chatsPerDevice: 5, seed: 4))
        var sent: [[UInt8]] = []
        for _ in 0..<500 {
            let event = model.next().event
            let value = EventEncoder.encode(event)
            sent.append(value)
            try producer.send(topic: "events", key: Array(event.deviceId.utf8), value: value)
        }
        try producer.flush(timeoutMilliseconds: 30_000)
        let report = producer.report
        #expect(report.delivered == 500)
        #expect(report.failed == 0)
        #expect(producer.inFlight == 0)

        let messages = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "events", partitions: 3)
        #expect(messages.count == 500)
        #expect(messages.map(\.value).sorted { $0.lexicographicallyPrecedes($1) } == sent.sorted { $0.lexicographicallyPrecedes($1) })
        for (partition, lastOffset) in report.lastOffsets {
            #expect(messages.filter { $0.partition == partition }.map(\.offset).max() == lastOffset)
        }
    }

    @Test("one key always lands in one partition, so a device's events stay in order")
    func keyedPartitioning() throws {
        let cluster = try MockCluster(topics: [("events", 4)])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        for index in 0..<200 {
            try producer.send(topic: "events", key: Array("dev-\(index % 7)".utf8), value: Array("\(index)".utf8))
        }
        try producer.flush(timeoutMilliseconds: 30_000)
        let messages = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "events", partitions: 4)
        var partitionOfKey: [[UInt8]: Int32] = [:]
        var lastValueOfKey: [[UInt8]: Int] = [:]
        for message in messages.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            #expect(partitionOfKey[message.key, default: message.partition] == message.partition)
            partitionOfKey[message.key] = message.partition
            let value = Int(String(decoding: message.value, as: UTF8.self))!
            #expect(value > lastValueOfKey[message.key, default: -1], "per-key order is kept")
            lastValueOfKey[message.key] = value
        }
        #expect(partitionOfKey.count == 7)
    }

    @Test("an invalid librdkafka property is refused with its name")
    func invalidConfiguration() {
        let error = #expect(throws: KafkaError.self) {
            _ = try KafkaProducer(bootstrapServers: "127.0.0.1:1", configuration: KafkaConfiguration(["linger.ms": "soon"]))
        }
        #expect(error?.description.contains("linger.ms") == true)
    }

    @Test("messages to an unreachable broker fail with a report instead of hanging")
    func unreachableBrokerFails() throws {
        let producer = try KafkaProducer(
            bootstrapServers: "127.0.0.1:9", configuration: KafkaConfiguration(["message.timeout.ms": "500"]))
        try producer.send(topic: "events", key: [1], value: [2])
        try producer.flush(timeoutMilliseconds: 30_000)
        #expect(producer.report.failed == 1)
        #expect(producer.report.delivered == 0)
        #expect(producer.report.firstFailure != nil)
    }

    @Test("a refused login fails flush with the authentication error instead of its timeout, and the password appears in no error")
    func refusedLoginFailsFlush() throws {
        // The mock speaks no SASL, which stands in for a cluster refusing the login
        // (as in KafkaAssignedConsumerTests).
        let cluster = try MockCluster(topics: [("events", 1)])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers, configuration: KafkaAssignedConsumerTests.sasl)
        try producer.send(topic: "events", key: Array("dev".utf8), value: Array("never delivered".utf8))
        var failure: KafkaError?
        do {
            try producer.flush(timeoutMilliseconds: 60_000)
        } catch {
            failure = error
        }
        // Ended by the refusal: a timeout would say "messages still undelivered".
        let error = try #require(failure)
        #expect(error.description.contains("cannot authenticate with the Kafka cluster"), "\(error)")
        #expect(!error.description.contains(KafkaAssignedConsumerTests.secret))
        #expect(producer.report.delivered == 0)
    }
}
