#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatLedgerCLI
import ChatProjection
import EventLog
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// Records the broker drops before ingest reads them (the mock keeps at most 5 MiB per
/// partition and drops the oldest; a real cluster's retention does the same) are never
/// skipped silently.
@Suite("Records lost at the broker: recorded as a gap or stopped on, as real processes on the mock cluster")
struct BrokerLossTests {
    static let topic = "wa.device-events"

    /// One GET; the status and body.
    func get(_ port: UInt16, _ target: String) throws -> (status: Int, body: String) {
        let answer = try HTTPAnswer.get(port, target)
        return (answer.status, answer.body)
    }

    /// Publishes `count` incoming messages of ~4 KB for one device, so its partition holds
    /// more than the mock keeps; returns that partition and its last offset.
    func overflow(_ brokers: String, count: Int = 1_600) throws -> (partition: Int32, lastOffset: Int64) {
        let producer = try KafkaProducer(bootstrapServers: brokers)
        let preview = String(repeating: "x", count: 4_000)
        for index in 0..<count {
            let event = Event(
                eventId: "big-\(index)", deviceId: "dev-big", occurredAt: 2_000_000 + Int64(index), chatId: "big@c.us",
                payload: .messageCreated(MessageCreated(messageId: "B\(index)", fromMe: false, kind: .text, preview: preview)))
            try producer.send(topic: Self.topic, key: Array("dev-big".utf8), value: EventEncoder.encode(event))
        }
        try producer.flush(timeoutMilliseconds: 60_000)
        #expect(producer.report.delivered == count)
        let last = try #require(producer.report.lastOffsets.first)
        return (last.key, last.value)
    }

    /// Offsets of a partition's log, and its gaps.
    func logOffsets(_ data: String, _ partition: Int32) throws -> [Int64] {
        try EventLog(dataDirectory: data).reader(topic: Self.topic, partition: partition).records().map(\.offset)
    }

    @Test(
        "records dropped while ingest was stopped: stop exits 1 naming the exact range and writes nothing; record writes a gap with that range, logs it, counts it, says it on /readyz until acknowledged, and goes on; verify reports it and --strict fails; a partition rebuilt elsewhere records its lost start"
    )
    func lostWhileStopped() throws {
        let cluster = try MockCluster(topics: [(Self.topic, 2)])
        let brokers = cluster.bootstrapServers
        let data = IngestTesting.temporaryData("broker-loss")
        let fresh = IngestTesting.temporaryData("broker-loss-fresh")
        defer {
            for path in [data, fresh, data + ".stderr", fresh + ".stderr"] { try? FileManager.default.removeItem(atPath: path) }
        }
        let before = try IngestTesting.produce(brokers, count: 600, seed: 41).partitions
        let first = try IngestProcess(brokers: brokers, data: data, group: "loss-first")
        try IngestTesting.waitForLog(data: data, lastOffsets: before)
        #expect(first.terminate() == 0)

        // While ingest is stopped, one partition receives more than the mock keeps.
        let (lossy, end) = try overflow(brokers)
        let other: Int32 = lossy == 0 ? 1 : 0
        let plain = try PlainConsumer(bootstrapServers: brokers)
        let brokerStart = try plain.watermarks(topic: Self.topic, partition: lossy).low
        let firstLost = try #require(before[lossy]) + 1
        let lastLost = brokerStart - 1
        #expect(brokerStart > firstLost, "the broker dropped records ingest had not read (its log starts at \(brokerStart))")
        #expect(try plain.watermarks(topic: Self.topic, partition: other).low == 0, "the other partition lost nothing")
        let range = "\(firstLost)..\(lastLost)"

        // --on-broker-loss stop: ingest ends on its own, non-zero, naming the range; the log is untouched.
        let stopping = try IngestProcess(brokers: brokers, data: data, group: "loss-stop", extra: ["--on-broker-loss", "stop"])
        let stopStatus = stopping.waitForExit(seconds: 60)
        #expect(stopStatus == 1, "exit 1 on its own (nil: still running after 60 s)")
        let stopLog = stopping.standardError
        #expect(stopLog.contains("level=error") && stopLog.contains("partition \(lossy) offsets \(range)"), "\(stopLog.suffix(1_500))")
        #expect(try logOffsets(data, lossy).last == before[lossy], "nothing written")
        #expect(try EventLog(dataDirectory: data).gaps(topic: Self.topic).isEmpty)

        // Default (record): a gap with exactly the lost range, then the broker's records from its new beginning.
        let ingest = try IngestProcess(brokers: brokers, data: data, group: "loss-record", http: true)
        #expect(ingest.port != 0)
        try IngestTesting.waitForLog(data: data, lastOffsets: [lossy: end])
        let gaps = try EventLog(dataDirectory: data).gaps(topic: Self.topic)
        #expect(gaps.count == 1)
        let gap = try #require(gaps.first)
        #expect(gap.partition == lossy && gap.firstLostOffset == firstLost && gap.lastLostOffset == lastLost && gap.brokerLogStartOffset == brokerStart)
        #expect(gap.reason.hasPrefix("offset_out_of_range"))
        let expectedOffsets = Array(0..<firstLost) + [lastLost] + Array(brokerStart...end)
        #expect(try logOffsets(data, lossy) == expectedOffsets, "the old records, the gap, then every record the broker still has")

        let metrics = try get(ingest.port, "/metrics").body
        #expect(metrics.contains("chatledger_ingest_records_lost_total{partition=\"\(lossy)\"} \(lastLost - firstLost + 1)\n"), "\(metrics.prefix(3_000))")
        #expect(metrics.contains("chatledger_ingest_records_lost_total{partition=\"\(other)\"} 0\n"), "an assigned partition without loss counts 0")
        #expect(metrics.contains("chatledger_log_gaps_unacknowledged 1\n"))
        let errorLine = ingest.standardError.split(separator: "\n").first { $0.contains("level=error") && $0.contains("records lost at the broker") }
        #expect(errorLine?.contains("range=\(lossy):\(range)") == true, "the error line names the range: \(ingest.standardError.suffix(2_000))")
        let lost = try get(ingest.port, "/readyz")
        #expect(lost.status == 503 && lost.body.contains("\"status\":\"data lost\"")
                && lost.body.contains("\"partition\":\(lossy),\"firstOffset\":\(firstLost),\"lastOffset\":\(lastLost)"), "\(lost)")

        let acknowledged = try ChatLedgerProcess.run(["acknowledge-loss", "--data", data, "--note", "test: seen"])
        #expect(acknowledged.status == 0 && acknowledged.standardOutput.contains("offsets \(range)"), "\(acknowledged)")
        #expect(try get(ingest.port, "/readyz").status == 200, "acknowledged and caught up")
        #expect(ingest.terminate() == 0)

        // serve on the same data directory counts the loss too, from the log's gap record.
        let keys = data + ".keys"
        try Data(#"{"keys":[{"key":"loss-key-123","devices":["*"],"role":"reader"}]}"#.utf8).write(to: URL(fileURLWithPath: keys))
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let serve = try ServerProcess(["serve", "--data", data, "--http", "127.0.0.1:0", "--keys", keys])
        let served = try get(serve.port, "/metrics").body
        #expect(served.contains("chatledger_ingest_records_lost_total{partition=\"\(lossy)\"} \(lastLost - firstLost + 1)\n"), "\(served.prefix(3_000))")
        #expect(served.contains("chatledger_ingest_records_lost_total{partition=\"\(other)\"} 0\n"))
        #expect(serve.terminate() == 0)

        // The projection passed the gap: the newest checkpoint is a reference fold of the events the log holds.
        var reference = ProjectionState()
        let parser = EventParser()
        for partition in [lossy, other] {
            for record in try EventLog(dataDirectory: data).reader(topic: Self.topic, partition: partition).records() {
                let position = LogPosition(partition: partition, offset: record.offset)
                if record.kind == .event, let value = record.value, let event = try? parser.parse(value, kafkaKey: record.key ?? []) {
                    reference.apply(event, at: position)
                }
            }
        }
        #expect(try IngestTesting.newestCheckpointDigest(data: data) == reference.digest.hex)

        // verify: holds, names the gap; --strict fails on it.
        let verify = try ChatLedgerProcess.run(["verify", "--data", data])
        #expect(verify.status == 0, "\(verify.standardOutput)")
        #expect(verify.standardOutput.contains("gap: \(Self.topic)/\(lossy) offsets \(range) lost at the broker"), "\(verify.standardOutput)")
        #expect(verify.standardOutput.contains("; acknowledged)"), "the acknowledgement shows")
        let strict = try ChatLedgerProcess.run(["verify", "--data", data, "--strict", "--json"])
        #expect(strict.status == 1, "\(strict.standardOutput)")
        let summary = try JSONSerialization.jsonObject(with: Data(strict.standardOutput.utf8)) as? [String: Any]
        let listed = (summary?["gaps"] as? [[String: Any]])?.first
        #expect(listed?["firstLostOffset"] as? Int == Int(firstLost) && listed?["lastLostOffset"] as? Int == Int(lastLost))
        #expect(summary?["clean"] as? Bool == true && summary?["passed"] as? Bool == false)

        // A partition rebuilt on another instance (an empty data directory) records the start it can no longer read.
        let rebuilt = try IngestProcess(brokers: brokers, data: fresh, group: "loss-fresh")
        try IngestTesting.waitForLog(data: fresh, lastOffsets: [lossy: end, other: try #require(before[other])])
        #expect(rebuilt.terminate() == 0)
        let freshGaps = try EventLog(dataDirectory: fresh).gaps(topic: Self.topic)
        #expect(freshGaps.map { [Int64($0.partition), $0.firstLostOffset, $0.lastLostOffset] } == [[Int64(lossy), 0, lastLost]])
        #expect(try logOffsets(fresh, other) == Array(0...(try #require(before[other]))), "the other partition is whole, no gap")
    }

    @Test("an out-of-range answer for offsets the broker still has (injected into fetches) records no gap, loses and duplicates nothing")
    func spuriousOutOfRange() throws {
        let cluster = try MockCluster(topics: [(Self.topic, 2)])
        let data = IngestTesting.temporaryData("spurious-range")
        defer {
            try? FileManager.default.removeItem(atPath: data)
            try? FileManager.default.removeItem(atPath: data + ".stderr")
        }
        let ingest = try IngestProcess(brokers: cluster.bootstrapServers, data: data, group: "spurious")
        try IngestTesting.waitForLog(data: data, lastOffsets: try IngestTesting.produce(cluster.bootstrapServers, count: 400, seed: 51).partitions)
        cluster.failNextRequests(.fetch, errors: [1, 1, 1])  // OFFSET_OUT_OF_RANGE
        let summary = try IngestTesting.produce(cluster.bootstrapServers, count: 400, seed: 52)
        try IngestTesting.waitForLog(data: data, lastOffsets: summary.partitions)
        #expect(ingest.terminate() == 0)
        #expect(ingest.standardError.contains("offset out of range, but the broker has the offset the log needs"), "the injected errors were seen")
        #expect(try EventLog(dataDirectory: data).gaps(topic: Self.topic).isEmpty)
        try IngestTesting.expectLogAndCheckpointMatchTopic(data: data, brokers: cluster.bootstrapServers, partitions: 2)
    }
}
