import Foundation
import KafkaClient
import KafkaTestSupport
import LedgerSupport
import Synchronization
import Testing

@Suite("RetainedMessage: a consumed message read and released on another thread")
struct RetainedMessageTests {
    @Test("messages handed over by poll(retaining:) keep their key, value and coordinates after later polls, and another thread reads and releases them")
    func readAndReleasedElsewhere() throws {
        let cluster = try MockCluster(topics: [("bridge", 2)])
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrapServers)
        for index in 0..<200 { try producer.send(topic: "bridge", key: Array("dev-\(index % 7)".utf8), value: Array("record \(index)".utf8)) }
        try producer.send(topic: "bridge", key: Array("dev-0".utf8), value: nil)
        try producer.flush(timeoutMilliseconds: 30_000)

        let consumer = try KafkaGroupConsumer(
            bootstrapServers: cluster.bootstrapServers, groupId: "retained", subscription: ["bridge"], onAssigned: { _ in }, onRevoked: { _ in })
        var retained: [RetainedMessage] = []
        for _ in 0..<600 where retained.count < 201 {
            try consumer.poll(maxMessages: 16, timeoutMilliseconds: 100, retaining: { retained.append($0) })
        }
        #expect(retained.count == 201)

        // Every message is read and released on a thread of its own, after the polls that
        // handed it over returned (their batch arrays were reused meanwhile).
        let handedOver = retained
        let read = Mutex<[(key: String, value: String?, topic: String, offset: Int64)]>([])
        let done = Semaphore()
        LedgerThread(name: "retained-test") {
            var seen: [(key: String, value: String?, topic: String, offset: Int64)] = []
            for message in handedOver {
                seen.append((
                    String(decoding: message.key ?? UnsafeRawBufferPointer(start: nil, count: 0), as: UTF8.self),
                    message.value.map { String(decoding: $0, as: UTF8.self) }, message.topic, message.offset))
                message.release()
            }
            read.withLock { $0 = seen }
            done.signal()
        }.start()
        done.wait()
        let seen = read.withLock { $0 }
        #expect(Set(seen.compactMap(\.value)) == Set((0..<200).map { "record \($0)" }), "every value intact")
        #expect(seen.filter { $0.value == nil }.count == 1, "the tombstone stays a tombstone")
        #expect(seen.allSatisfy { $0.topic == "bridge" && $0.key.hasPrefix("dev-") })
        #expect(Set(seen.map { "\($0.key)/\($0.offset)" }).count == 201, "coordinates kept per message")
        consumer.close()
    }
}
