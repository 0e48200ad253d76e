import ChatEvents
import EventLog
import Foundation
import Ingest
import KafkaClient
import LedgerSupport
import Testing

/// Standby logs (cluster mode, `--standby`) under erasure: what a `ledger.erased` event
/// names must not stay on disk under `DATA/standby/` either, and a takeover must not import
/// a redacted record as if it were what Kafka delivered. The follower's consumer is never
/// polled here (its broker address leads nowhere): records are copied in as `run` copies them.
@Suite("Standby logs: an erasure copied there redacts them; a takeover imports up to the first redacted record")
struct StandbyErasureTests {
    let topic = "wa.device-events"
    let erasedDevice = "dev-standby-forget-me"
    let erasedPreview = "private-standby-preview"
    let keptDevice = "dev-standby-keep"

    func message(_ device: String, index: Int, preview: String) -> [UInt8] {
        EventEncoder.encode(Event(
            eventId: "\(device)-m\(index)", deviceId: device, occurredAt: Int64(10_000 + index), chatId: "4915550777\(index % 5)@c.us",
            payload: .messageCreated(MessageCreated(messageId: "\(device)-msg-\(index)", fromMe: false, kind: .text, preview: preview))))
    }

    @Test("a device erasure in a standby log leaves none of the device's values there; the takeover imports the records before the first redacted one and Kafka is asked for the rest")
    func erasureInStandbyLog() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("standby-erasure-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let follower = try StandbyFollower(
            dataDirectory: directory, brokers: "127.0.0.1:9", topic: topic, kafka: KafkaConfiguration(), fsync: .never)
        follower.follow([0])

        // 10 records of the kept device, then 100 alternating, then the erasure, then 5 more kept.
        var records: [(offset: Int64, timestamp: Int64, key: [UInt8], value: [UInt8])] = []
        func add(_ device: String, _ value: [UInt8]) {
            records.append((Int64(records.count), 1_000 + Int64(records.count), Array(device.utf8), value))
        }
        for index in 0..<10 { add(keptDevice, message(keptDevice, index: index, preview: "kept \(index)")) }
        for index in 10..<110 {
            if index % 2 == 0 {
                add(erasedDevice, message(erasedDevice, index: index, preview: "\(erasedPreview) \(index)"))
            } else {
                add(keptDevice, message(keptDevice, index: index, preview: "kept \(index)"))
            }
        }
        let erasure = try ErasureRequest(deviceId: erasedDevice, reason: "request 7").record(eventId: "erasure-standby", occurredAt: 99_000)
        add(erasedDevice, erasure.value)
        for index in 200..<205 { add(keptDevice, message(keptDevice, index: index, preview: "kept \(index)")) }
        #expect(try follower.copyForTesting(partition: 0, records) == records.count)
        #expect(try follower.copyForTesting(partition: 0, Array(records.prefix(20))) == 0, "a redelivery is not copied again")
        #expect(follower.statistics.erasures == 1)
        #expect(follower.statistics.redactedRecords == 51, "50 events of the device and the erasure's own key")

        let standby = StandbyFollower.dataDirectory(of: directory)
        let leaks = try ErasureTests.files(standby).filter { file in
            [erasedDevice, erasedPreview, "\(erasedDevice)-msg-"].contains { file.bytes.firstRange(of: Array($0.utf8)) != nil }
        }
        #expect(leaks.isEmpty, "\(leaks.map(\.path))")
        #expect(try ErasureTests.files(standby).contains { $0.bytes.firstRange(of: Array("kept 11".utf8)) != nil }, "the other device's records stay")
        let verification = try LogVerifier.verify(EventLog(dataDirectory: standby))
        #expect(verification.isClean, "the standby log still verifies: \(verification.problems)")

        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: topic, fsync: .never))
        let imported = try follower.takeOver(0, into: pipeline)
        #expect(imported == 10, "the kept device's first 10 records, up to the erased device's first one")
        #expect(try pipeline.nextOffset(0) == 10, "Kafka delivers from the first redacted record on")
        pipeline.waitUntilApplied()
        #expect(pipeline.store.device(keptDevice) != nil)
        #expect(pipeline.store.device(erasedDevice) == nil)
        try pipeline.close()
    }
}
