import Foundation
import KafkaClient
import KafkaTestSupport
import Synchronization
import Testing

struct NoCompletion: Error {
    var limit: Duration
}

@Suite("KafkaRecordProducer against librdkafka's mock cluster")
struct KafkaRecordProducerTests {
    /// Sends one record and waits for its completion (at most `limit`).
    func sendAndWait(
        _ producer: KafkaRecordProducer, key: String, value: String, limit: Duration = .seconds(30)
    ) throws -> (result: Result<KafkaRecordProducer.Delivery, KafkaRecordProducer.Failure>, elapsed: Duration) {
        let outcome = Mutex<Result<KafkaRecordProducer.Delivery, KafkaRecordProducer.Failure>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let start = ContinuousClock.now
        producer.send(key: Array(key.utf8), value: Array(value.utf8)) { result in
            outcome.withLock { $0 = result }
            done.signal()
        }
        guard done.wait(timeout: .now() + .milliseconds(Int(limit / .milliseconds(1)))) == .success else {
            throw NoCompletion(limit: limit)
        }
        let elapsed = ContinuousClock.now - start
        return (try #require(outcome.withLock { $0 }), elapsed)
    }

    @Test("each record's completion names the partition and offset it was written at, as a consumer reads it back")
    func completionsNamePositions() throws {
        let cluster = try MockCluster(topics: [("events", 3)])
        let producer = try KafkaRecordProducer(bootstrapServers: cluster.bootstrapServers, topic: "events", deliveryTimeoutMilliseconds: 10_000)
        var positions: [String: KafkaRecordProducer.Delivery] = [:]
        for index in 0..<20 {
            let (result, _) = try sendAndWait(producer, key: "dev-\(index % 4)", value: "value-\(index)")
            positions["value-\(index)"] = try result.get()
        }
        producer.close(timeoutMilliseconds: 5_000)
        let messages = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "events", partitions: 3)
        #expect(messages.count == 20, "one record per send")
        for message in messages {
            let value = String(decoding: message.value, as: UTF8.self)
            #expect(positions[value] == KafkaRecordProducer.Delivery(partition: message.partition, offset: message.offset), "\(value)")
        }
    }

    @Test("with the broker down a record fails within the delivery timeout, certainly not written; once the broker is back the same producer delivers again")
    func brokerDownFailsInBoundedTime() throws {
        let cluster = try MockCluster(topics: [("events", 1)])
        let producer = try KafkaRecordProducer(bootstrapServers: cluster.bootstrapServers, topic: "events", deliveryTimeoutMilliseconds: 1_000)
        _ = try sendAndWait(producer, key: "dev-1", value: "before").result.get()

        try cluster.setBroker(1, up: false)
        let (down, elapsed) = try sendAndWait(producer, key: "dev-1", value: "while down")
        guard case .failure(let failure) = down else {
            Issue.record("delivered while the broker was down: \(down)")
            return
        }
        #expect(!failure.possiblyWritten, "\(failure)")
        #expect(elapsed < .milliseconds(1_000 + 2_500), "bounded by the delivery timeout (checked about once a second): \(elapsed)")

        // Back: librdkafka reconnects within its backoff; until then records may still time out.
        try cluster.setBroker(1, up: true)
        var delivered: [String] = []
        var possiblyWritten: Set<String> = []
        for attempt in 0..<20 where delivered.isEmpty {
            switch try sendAndWait(producer, key: "dev-1", value: "after-\(attempt)").result {
            case .success: delivered.append("after-\(attempt)")
            case .failure(let failure) where failure.possiblyWritten: possiblyWritten.insert("after-\(attempt)")
            case .failure: break
            }
        }
        #expect(delivered.count == 1, "the same producer delivers again once the broker is back")
        producer.close(timeoutMilliseconds: 5_000)
        let values = try PlainConsumer(bootstrapServers: cluster.bootstrapServers).readAll(topic: "events", partitions: 1)
            .map { String(decoding: $0.value, as: UTF8.self) }
        #expect(values.first == "before")
        #expect(!values.contains("while down"), "nothing of the failed record reached the log")
        #expect(values.filter { $0 != "before" && !possiblyWritten.contains($0) } == delivered, "\(values)")
    }

    @Test("a record librdkafka refuses at once completes before send returns; a closed producer refuses every record")
    func immediateRefusals() throws {
        let cluster = try MockCluster(topics: [("events", 1)])
        let producer = try KafkaRecordProducer(
            bootstrapServers: cluster.bootstrapServers, topic: "events", deliveryTimeoutMilliseconds: 5_000,
            configuration: KafkaConfiguration(["message.max.bytes": "1000"]))
        let called = Atomic<Int>(0)
        producer.send(key: [1], value: [UInt8](repeating: 7, count: 5_000)) { result in
            if case .failure = result { called.add(1, ordering: .relaxed) }
        }
        #expect(called.load(ordering: .relaxed) == 1, "too large: refused at once")
        producer.close(timeoutMilliseconds: 1_000)
        producer.send(key: [1], value: [2]) { result in
            if case .failure = result { called.add(1, ordering: .relaxed) }
        }
        #expect(called.load(ordering: .relaxed) == 2)
    }
}
