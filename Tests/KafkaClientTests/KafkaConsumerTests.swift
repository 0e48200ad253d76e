import Dispatch
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

@Suite("KafkaConsumer against librdkafka's mock cluster")
struct KafkaConsumerTests {
    @Test("a fatal librdkafka error ends polling with its code and cause, every later poll says the same, and the consumer can still be destroyed")
    func fatalErrorSurfaces() throws {
        let cluster = try MockCluster(topics: [("events", 2)])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        for index in 0..<20 { try producer.send(topic: "events", key: Array("dev-\(index)".utf8), value: Array("\(index)".utf8)) }
        try producer.flush(timeoutMilliseconds: 30_000)
        // Made and used in a function of its own, so the holder has the only reference after.
        let holder = try ConsumerHolder(failedConsumer(cluster))
        let destroyed = DispatchSemaphore(value: 0)
        Thread {
            holder.release()
            destroyed.signal()
        }.start()
        // A plain rd_kafka_destroy after a fatal error never returned (librdkafka 2.0.2),
        // so `ingest` would hang on its way out: destroy on another thread, wait bounded.
        #expect(destroyed.wait(timeout: .now() + 60) == .success, "destroying the failed consumer returns")
    }

    /// A consumer that read the topic, then hit a fatal error, checked on the way.
    private func failedConsumer(_ cluster: MockCluster) throws -> KafkaConsumer {
        let consumer = try KafkaConsumer(
            bootstrapServers: cluster.bootstrapServers, groupId: "fatal", topic: "events", startOffset: { _ in nil })
        var received = 0
        for _ in 0..<300 where received < 20 {
            received += try consumer.poll(maxMessages: 100, timeoutMilliseconds: 100) { _ in }
        }
        #expect(received == 20, "the consumer works before the error")

        // 82: FENCED_INSTANCE_ID, what a static member replaced by another gets.
        consumer.raiseFatalErrorForTesting(code: 82, reason: "fenced by a newer instance")
        var failure: KafkaError?
        for _ in 0..<300 where failure == nil {
            do {
                try consumer.poll(maxMessages: 100, timeoutMilliseconds: 100) { _ in }
            } catch let error as KafkaError {
                failure = error
            }
        }
        let error = try #require(failure, "polling stops with the fatal error")
        #expect(error.code == 82)
        #expect(error.description.contains("fatal consumer error"))
        #expect(error.detail.contains("fenced by a newer instance"), "the cause is kept: \(error.detail)")
        #expect(throws: KafkaError.self, "it stays failed") {
            try consumer.poll(maxMessages: 100, timeoutMilliseconds: 0) { _ in }
        }
        return consumer
    }

    /// Hands the last reference to a consumer to another thread.
    // SAFETY: the test stops using the consumer before `release` runs on the other thread,
    // and only that thread touches it afterwards.
    final class ConsumerHolder: @unchecked Sendable {
        private var consumer: KafkaConsumer?
        init(_ consumer: KafkaConsumer) { self.consumer = consumer }
        func release() { consumer = nil }
    }
}
