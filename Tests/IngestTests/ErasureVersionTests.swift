import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Ingest
import Testing

/// A device's version is its `ETag`: after a chat or contact erasure it must stay above
/// every version handed out before (the refold from the redacted log counts fewer events,
/// and a count would repeat old ETags for different content), and every way of folding
/// the log (ingest live, its restart, a replay from zero, serve's refold, the audit view)
/// must reach the same version at the same position.
@Suite("Device versions across erasures")
struct ErasureVersionTests {
    static let topic = "wa.device-events"
    static let device = "dev-v"
    static let erased = "491555000001@c.us", kept = "491555000002@c.us", later = "491555000003@c.us"

    /// Feeds events one batch at a time to a pipeline, noting the device's version after each.
    final class Feed {
        let pipeline: IngestPipeline
        var offset: Int64 = 0
        var index = 0
        /// The device's version after each batch, in order: every ETag it handed out.
        var versions: [UInt64] = []

        init(_ pipeline: IngestPipeline) { self.pipeline = pipeline }

        func accept(_ event: Event) throws {
            defer { offset += 1 }
            let value = EventEncoder.encode(event)
            let key = event.payload.isErasure ? ErasureVersionTests.device : event.deviceId
            try Array(key.utf8).withUnsafeBytes { key in
                try value.withUnsafeBytes { try pipeline.accept(partition: 0, offset: offset, timestamp: 1_000 + offset, key: key, value: $0) }
            }
            try pipeline.commitBatch()
            pipeline.waitUntilApplied()
            guard key == ErasureVersionTests.device, let version = pipeline.store.device(key)?.version else { return }
            versions.append(version)
        }

        /// A message on `chat` of `device`, and another device's message every third one (so
        /// offsets run ahead of the device's event count).
        func message(_ chat: String, device: String = ErasureVersionTests.device) throws {
            index += 1
            try accept(Event(
                eventId: "\(device)-\(index)", deviceId: device, occurredAt: Int64(index), chatId: chat,
                payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "secret \(index)"))))
            if index % 3 == 0, device == ErasureVersionTests.device { try message("491555000009@c.us", device: "dev-other") }
        }

        func erase(chat: String?) throws {
            index += 1
            try accept(try ErasureRequest(deviceId: ErasureVersionTests.device, chatId: chat, reason: "ticket \(index)")
                .event(eventId: "erase-\(index)", occurredAt: Int64(index)))
        }
    }

    @Test("after chat erasures, and more events than the erasures removed, the device's version never repeats one handed out before and never falls: a pre-erasure ETag can never match the new content; ingest restarted, a replay from zero, serve's refold and the audit view hold the same device, version included")
    func versionsNeverRepeat() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-version-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let pipeline = try IngestPipeline(log: log, options: .init(topic: Self.topic, fsync: .never, checkpointEveryRecords: 10))
        let feed = Feed(pipeline)
        for step in 0..<12 { try feed.message(step % 2 == 0 ? Self.erased : Self.kept) }
        for _ in 0..<3 { try feed.message(Self.later) }
        let beforeErasure = feed.versions
        #expect(beforeErasure == Array(1...15), "one version per event: \(beforeErasure)")

        try feed.erase(chat: Self.erased)
        let afterErasure = try #require(feed.versions.last)
        #expect(afterErasure > beforeErasure.max() ?? 0, "the erasure moves the version above every one before: \(afterErasure)")
        #expect(pipeline.store.device(Self.device)?.chat(Self.erased) == nil)
        // More events than the erasure removed: a count of the surviving events would now pass
        // through the versions 10...15 again, each with other content than it had.
        for _ in 0..<10 { try feed.message(Self.kept) }
        try feed.erase(chat: Self.later)
        for _ in 0..<4 { try feed.message(Self.kept) }

        let versions = feed.versions
        #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "every version above the one before: \(versions)")
        #expect(Set(versions).count == versions.count, "no version handed out twice: \(versions)")
        let live = try #require(pipeline.store.device(Self.device))
        #expect(live.version == versions.last && live.chats.count == 1 && live.chat(Self.kept) != nil)
        let last = feed.offset - 1
        #expect(try LogVerifier.verify(log).isClean)

        // Every other fold of the same log reaches the same device, version included.
        #expect(try ErasureRefold.device(Self.device, log: log, topic: Self.topic, partition: 0, through: last) == live, "serve's refold")
        #expect(try AuditLog(dataDirectory: directory, topic: Self.topic).device(Self.device) == live, "the audit view (replay)")
        #expect(try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic).state.devices[Self.device] == live, "a replay from zero")
        try pipeline.close()
        let restarted = try IngestPipeline(log: log, options: .init(topic: Self.topic, fsync: .never))
        #expect(restarted.store.device(Self.device) == live, "ingest restarted from its checkpoint")
        try restarted.close()
        let checks = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: CheckpointStore(dataDirectory: directory))
        #expect(!checks.isEmpty && checks.allSatisfy(\.problems.isEmpty), "verify replays to every checkpoint's digest: \(checks.map(\.problems))")
    }

    @Test("a device erased whole, and one whose only chat is erased, come back with versions above every one they had: the erasure's version is kept for the device's next event (checkpoints keep it), so a restart and a replay from zero agree")
    func erasedDevicesComeBackAbove() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-version-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let pipeline = try IngestPipeline(log: log, options: .init(topic: Self.topic, fsync: .never))
        let feed = Feed(pipeline)
        for _ in 0..<8 { try feed.message(Self.erased) }
        try feed.erase(chat: Self.erased)  // the device's only chat: nothing of it is left
        #expect(pipeline.store.device(Self.device) == nil)
        for _ in 0..<10 { try feed.message(Self.kept) }
        try feed.erase(chat: nil)  // the whole device
        #expect(pipeline.store.device(Self.device) == nil)
        // Checkpointed while the device has no state: its version is in the checkpoint.
        try pipeline.close()
        let restarted = try IngestPipeline(log: log, options: .init(topic: Self.topic, fsync: .never))
        let resumed = Feed(restarted)
        (resumed.offset, resumed.index) = (feed.offset, feed.index)
        for _ in 0..<12 { try resumed.message(Self.later) }

        let versions = feed.versions + resumed.versions
        #expect(versions.count == 8 + 10 + 12)
        #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "every version above the one before: \(versions)")
        let live = try #require(restarted.store.device(Self.device))
        #expect(live.chats.count == 1 && live.chat(Self.later) != nil)
        #expect(try ProjectionRecovery.replayFromZero(log: log, topic: Self.topic).state.devices[Self.device] == live, "a replay from zero")
        #expect(try AuditLog(dataDirectory: directory, topic: Self.topic).device(Self.device) == live, "the audit view")
        let verification = try LogVerifier.verify(log)
        #expect(verification.isClean, "\(verification.problems)")
        try restarted.close()
    }

    @Test("with the log's start removed by retention (no refold is possible), a chat erasure still moves the version above every one before; a restart, serve's load and the audit view from the retention base agree")
    func erasureAfterRetention() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erasure-version-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = EventLog(dataDirectory: directory)
        let options = IngestPipeline.Options(
            topic: Self.topic, fsync: .never, maxSegmentBytes: 16 << 10, checkpointEveryRecords: .max,
            retention: RetentionPolicy(maxBytes: 48 << 10))
        let pipeline = try IngestPipeline(log: log, options: options)
        let feed = Feed(pipeline)
        for step in 0..<600 {
            try feed.message(step % 2 == 0 ? Self.erased : Self.kept)
            if step % 100 == 99 { try pipeline.checkpointIfDue(force: true) }
        }
        #expect(try log.retentionBase(topic: Self.topic, partition: 0) != nil, "retention removed the log's start")
        let before = feed.versions.max() ?? 0
        try feed.erase(chat: Self.erased)
        #expect((feed.versions.last ?? 0) > before && pipeline.store.device(Self.device)?.chat(Self.erased) == nil)
        for _ in 0..<5 { try feed.message(Self.kept) }
        let versions = feed.versions
        #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "every version above the one before")
        let live = try #require(pipeline.store.device(Self.device))
        try pipeline.close()

        let restarted = try IngestPipeline(log: log, options: options)
        #expect(restarted.store.device(Self.device) == live, "ingest restarted")
        try restarted.close()
        var loaded = try ProjectionRecovery.load(log: log, topic: Self.topic, checkpoints: CheckpointStore(dataDirectory: directory))
        try ErasureRefold.refoldErasedDevices(in: &loaded.state, log: log, topic: Self.topic, after: loaded.checkpoint?.positions ?? [:])
        #expect(loaded.state.devices[Self.device] == live, "serve's load")
        #expect(try AuditLog(dataDirectory: directory, topic: Self.topic).device(Self.device) == live, "the audit view from the base")
        let checks = CheckpointVerifier.verify(log: log, topic: Self.topic, checkpoints: CheckpointStore(dataDirectory: directory))
        #expect(!checks.isEmpty && checks.allSatisfy(\.problems.isEmpty), "verify replays to every checkpoint's digest: \(checks.map(\.problems))")
    }
}

extension EventPayload {
    /// Whether this is a `ledger.erased` event (keyed by the device id, not its digest name).
    fileprivate var isErasure: Bool {
        if case .ledgerErased = self { return true }
        return false
    }
}
