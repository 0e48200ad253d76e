import ChatEvents
import EventLog
import Foundation
import Ingest
import KafkaClient
import LedgerSupport
import Testing

/// Standby logs (cluster mode, `--standby`) on disk: retention trims them by the main
/// log's rules, and a standby log this instance no longer needs is removed. As in
/// `StandbyErasureTests`, the follower's consumer is never polled: records are copied in
/// as `run` copies them.
@Suite("Standby logs: retention trims them; those no longer needed are removed")
struct StandbyRetentionTests {
    let topic = "wa.device-events"

    func records(_ count: Int, device: String = "dev-standby-retained") -> [(offset: Int64, timestamp: Int64, key: [UInt8], value: [UInt8])] {
        (0..<count).map { index in
            let event = Event(
                eventId: "\(device)-\(index)", deviceId: device, occurredAt: Int64(index), chatId: "4915550123\(index % 7)@c.us",
                payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "preview \(index)")))
            return (Int64(index), 1_000 + Int64(index), Array(device.utf8), EventEncoder.encode(event))
        }
    }

    func segments(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
    }

    func bytes(_ directory: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? 0)
        }
    }

    @Test("--retain-bytes trims a standby log's oldest sealed segments (never the live one) behind a retention base; it still verifies, and a takeover that finds the main log's offset gone falls back to Kafka")
    func retainBytes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("standby-retention-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let follower = try StandbyFollower(
            dataDirectory: directory, brokers: "127.0.0.1:9", topic: topic, kafka: KafkaConfiguration(), fsync: .never,
            retention: RetentionPolicy(maxBytes: 16_384, archiveCommand: "false"), maxSegmentBytes: 4_096)
        follower.follow([0])
        #expect(try follower.copyForTesting(partition: 0, records(600)) == 600)
        let partition = follower.log.directory(topic: topic, partition: 0)
        let before = segments(partition)
        #expect(before.count > 10, "\(before.count) segments")

        try follower.enforceRetention(now: StandbyFollower.wallClockMilliseconds())
        let after = segments(partition)
        #expect(after.count < before.count && after.last == before.last, "the oldest went, the live one stayed")
        #expect(bytes(partition) <= 16_384 + 4_096 * 2, "within the limit, give or take the segment that crossed it: \(bytes(partition))")
        #expect(follower.statistics.retentionRemovedSegments == before.count - after.count)
        #expect(try follower.log.retentionBase(topic: topic, partition: 0) != nil, "the base names the first segment kept")
        let verification = try LogVerifier.verify(follower.log)
        #expect(verification.isClean, "the trimmed standby log still verifies: \(verification.problems)")
        #expect(try follower.copyForTesting(partition: 0, records(610).suffix(10)) == 10, "following goes on after the trim")

        // The archive command (here one that fails) is not run for standby segments: they went anyway.
        // A takeover into an empty main log needs offset 0, which the standby log no longer has.
        let pipeline = try IngestPipeline(log: EventLog(dataDirectory: directory), options: .init(topic: topic, fsync: .never))
        #expect(try follower.takeOver(0, into: pipeline) == 0)
        #expect(follower.statistics.fallbacks == 1)
        #expect(access(partition, F_OK) != 0, "taken over: the standby log is removed")
        try pipeline.close()
    }

    @Test("--retain-days removes standby segments older than the limit by their files' age")
    func retainDays() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("standby-retention-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let follower = try StandbyFollower(
            dataDirectory: directory, brokers: "127.0.0.1:9", topic: topic, kafka: KafkaConfiguration(), fsync: .never,
            retention: RetentionPolicy(maxAgeMilliseconds: 86_400_000), maxSegmentBytes: 4_096)
        follower.follow([0])
        try follower.copyForTesting(partition: 0, records(200))
        let partition = follower.log.directory(topic: topic, partition: 0)
        let before = segments(partition)
        try follower.enforceRetention(now: StandbyFollower.wallClockMilliseconds())
        #expect(segments(partition) == before, "nothing is a day old yet")
        try follower.enforceRetention(now: StandbyFollower.wallClockMilliseconds() + 2 * 86_400_000)
        #expect(segments(partition) == [before.last], "two days on: every sealed segment went, the live one stayed")
    }

    @Test("a standby log is removed when another instance owns its partition and this one does not stand by for it; one without an owner, or owned by this instance awaiting the takeover, stays")
    func discardedLogsAreRemoved() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("standby-retention-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let follower = try StandbyFollower(
            dataDirectory: directory, brokers: "127.0.0.1:9", topic: topic, kafka: KafkaConfiguration(), fsync: .never)
        follower.follow([0, 1])
        try follower.copyForTesting(partition: 0, records(20))
        try follower.copyForTesting(partition: 1, records(20))
        let (zero, one) = (follower.log.directory(topic: topic, partition: 0), follower.log.directory(topic: topic, partition: 1))

        follower.follow([0])  // partition 1 without an owner (or owned here): kept for a takeover
        #expect(access(one, F_OK) == 0)
        follower.follow([0], discarding: [1])
        #expect(access(one, F_OK) != 0, "owned elsewhere, not stood by for: removed")
        #expect(access(zero, F_OK) == 0 && follower.statistics.removedLogs == 1)
        follower.follow([0], discarding: [0])
        #expect(access(zero, F_OK) == 0, "a partition still followed is never removed")
    }
}
