@testable import BridgeAdapters
import KafkaClient
import KafkaTestSupport
import Testing

@Suite("The adapter stage's producer thread")
struct StageProducerTests {
    /// Kafka's TOPIC_AUTHORIZATION_FAILED: a permanent produce error (no retry).
    static let refused: Int32 = 29

    @Test("what is handed over in many batches reaches each topic whole, every device's events in the order sent; flush returns once all is delivered")
    func everythingInOrder() throws {
        let cluster = try MockCluster(topics: [("canonical", 4), ("dead", 1)])
        let producer = StageProducer(try KafkaProducer(bootstrapServers: cluster.bootstrapServers), topic: "canonical", deadLetterTopic: "dead")
        let devices = (0..<5).map { "device-\($0)" }
        // More than one batch (`batchSize`), handed over both by `send` and by hand.
        for index in 0..<3_000 {
            producer.send(.init(destination: .event(deviceId: devices[index % devices.count]), value: Array("\(index)".utf8)))
            if index % 700 == 0 { producer.handOver() }
            if index % 300 == 0 { producer.send(.init(destination: .deadLetter(key: Array("letter".utf8)), value: Array("dead \(index)".utf8))) }
        }
        try producer.flush()
        #expect(producer.delivered == 3_010, "every event and dead letter delivered when flush returns")
        producer.close()

        let events = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "canonical", partitions: 4)
        #expect(events.count == 3_000)
        for device in devices {
            let sent = (0..<3_000).filter { devices[$0 % devices.count] == device }
            let received = events.filter { $0.key == Array(device.utf8) }.sorted { $0.offset < $1.offset }
            #expect(Set(received.map(\.partition)).count == 1, "a device's events share one partition")
            #expect(received.map { String(decoding: $0.value, as: UTF8.self) } == sent.map(String.init), "\(device): in the order sent")
        }
        let letters = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "dead", partitions: 1)
        #expect(letters.map { String(decoding: $0.value, as: UTF8.self) } == stride(from: 0, to: 3_000, by: 300).map { "dead \($0)" })
    }

    @Test("a delivery the broker refuses fails that flush and every later one: nothing may be committed past it")
    func failureSticks() throws {
        let cluster = try MockCluster(topics: [("canonical", 1), ("dead", 1)])
        let producer = StageProducer(
            try KafkaProducer(bootstrapServers: cluster.bootstrapServers, configuration: KafkaConfiguration(["message.timeout.ms": "10000"])),
            topic: "canonical", deadLetterTopic: "dead")
        producer.send(.init(destination: .event(deviceId: "device"), value: Array("before".utf8)))
        try producer.flush()
        #expect(producer.delivered == 1)

        cluster.failNextRequests(.produce, errors: Array(repeating: Self.refused, count: 5))
        producer.send(.init(destination: .event(deviceId: "device"), value: Array("refused".utf8)))
        #expect(throws: AdapterStageError.self, "the refused delivery fails the flush") { try producer.flush() }
        #expect(throws: AdapterStageError.self, "and the next flush, with nothing new sent") { try producer.flush() }
        producer.close()
    }
}
