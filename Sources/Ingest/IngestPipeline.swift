#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import Dispatch
import ChatProjection
import EventLog
import LedgerSupport

/// Turns consumed Kafka messages into log records and projection updates, exactly once
/// per offset: messages at or below a partition's last logged offset are skipped
/// (redeliveries); each batch is validated, staged, written and synced as the fsync
/// policy says, and only then applied to the projection. Used from one thread.
package final class IngestPipeline {
    package struct Options: Sendable {
        package var topic: String
        package var fsync: FsyncPolicy
        package var maxSegmentBytes: Int
        /// Segments are also sealed by age (see `PartitionWriter.Options`); nil: by size only.
        package var maxSegmentAgeMilliseconds: Int64?
        /// A checkpoint is written after this many records or seconds, whichever first.
        package var checkpointEveryRecords: Int
        package var checkpointEverySeconds: Double
        /// Attests every checkpoint with HMAC-SHA256 under this key (see `CheckpointStore`).
        package var attestationKey: [UInt8]?
        /// How much of each partition's log to keep; applied after every checkpoint. Fixed at
        /// `init`, which derives the segments' size and age from it.
        package let retention: RetentionPolicy
        /// Stage times of chosen records (`bench freshness`); nil: the one the environment
        /// asks for, if any (`FreshnessTrace.fromEnvironment`).
        package var trace: FreshnessTrace?

        package init(
            topic: String = DeviceEventsTopic.defaultName, fsync: FsyncPolicy = .batch, maxSegmentBytes: Int? = nil,
            checkpointEveryRecords: Int = 200_000, checkpointEverySeconds: Double = 30, attestationKey: [UInt8]? = nil,
            retention: RetentionPolicy = RetentionPolicy()
        ) {
            self.attestationKey = attestationKey
            self.retention = retention
            self.topic = topic
            self.fsync = fsync
            // Without a size given, segments as large as retention allows (128 MiB without it).
            self.maxSegmentBytes = maxSegmentBytes ?? retention.segmentBytes(atMost: PartitionWriter.Options().maxSegmentBytes)
            self.maxSegmentAgeMilliseconds = retention.segmentAgeMilliseconds
            self.checkpointEveryRecords = checkpointEveryRecords
            self.checkpointEverySeconds = checkpointEverySeconds
        }

        /// How each partition's writer seals segments and syncs.
        var writerOptions: PartitionWriter.Options {
            .init(fsync: fsync, maxSegmentBytes: maxSegmentBytes, maxSegmentAgeMilliseconds: maxSegmentAgeMilliseconds)
        }
    }

    /// What went through, for logs and metrics.
    package struct Counters: Sendable {
        package var records = 0
        package var events = 0
        package var deadLetters = 0
        /// Offsets already in the log, delivered again by Kafka.
        package var redeliveriesSkipped = 0
        package var deadLettersByReason: [String: Int] = [:]
        /// Offsets the broker no longer had, per partition: the log's gap records (those it
        /// held at start and those recorded since).
        package var lostRecords: [Int32: Int64] = [:]
        /// `ledger.erased` events applied, records they redacted, and records they named in
        /// version 1/2 segments, which cannot be redacted (see `schemas/event-log.md`).
        package var erasures = 0
        package var redactedRecords = 0
        package var unredactableRecords = 0
        /// Segments and bytes retention removed (`RetentionPolicy`).
        package var retentionRemovedSegments = 0
        package var retentionRemovedBytes: Int64 = 0
        /// Each partition's retention base offset: the log holds nothing before it.
        package var retainedFrom: [Int32: Int64] = [:]
        /// Partitions whose log was dropped because another instance owns them (`drop`).
        package var droppedPartitions = 0
    }

    package let options: Options
    package let log: EventLog
    package let store: ProjectionStore
    package let checkpoints: CheckpointStore
    /// The log's gaps (records the broker had lost), those found at start and those recorded since.
    package let gaps: GapRegister
    package private(set) var counters = Counters()

    private let parser = EventParser()
    private let logger: Logger
    /// Runs `--archive-command` off the consumer thread (a slow command must not stop ingest).
    private let archiver: SegmentArchiver?
    private var writers: [Int32: PartitionWriter] = [:]
    /// Events staged in the current batch, applied once the log has them.
    /// Staged records in the order they arrived (per partition, offset order), to apply
    /// once they are written; nil event: a dead letter. One list, so a partition's
    /// position only moves forward.
    private var pending: [ProjectionApplier.Record] = []
    /// Erasures staged in the current batch: their redactions run once the batch is written.
    private var pendingErasures: [(partition: Int32, deviceId: String, selector: ErasureSelector)] = []
    /// Folds written batches into `store` on its own thread.
    private let applier: ProjectionApplier
    /// Writes due checkpoints on its own thread.
    private let checkpointWriter: CheckpointWriter
    /// Stage times of the bench's marker records (`FreshnessTrace`); nil unless asked for.
    private let trace: FreshnessTrace?
    /// Indexes in `pending` of the records `trace` follows.
    private var pendingTraced: [Int] = []
    private var recordsSinceCheckpoint = 0
    /// Called after each batch is applied to the projection (e.g. to wake waiting queries).
    package var onBatchApplied: (@Sendable () -> Void)?
    private var lastCheckpoint = ContinuousClock.now

    /// Loads the projection (newest checkpoint, then the log after it).
    package convenience init(log: EventLog, options: Options, logger: Logger = Logger(label: "ingest")) throws {
        try self.init(
            log: log, options: options, logger: logger,
            checkpoints: CheckpointStore(dataDirectory: log.dataDirectory, attestationKey: options.attestationKey))
    }

    /// `init(log:options:logger:)` with the checkpoint store given (a test's, with hooks).
    package init(log: EventLog, options: Options, logger: Logger = Logger(label: "ingest"), checkpoints: CheckpointStore) throws {
        self.log = log
        self.options = options
        self.logger = logger
        self.checkpoints = checkpoints
        archiver = options.retention.isEnabled ? options.retention.archiveCommand.map(SegmentArchiver.init) : nil
        // Each partition's writer recovers its log (truncating a torn tail a crash left, of
        // whatever bytes) before the projection reads it: the reader refuses bytes that are
        // no record, wherever they are.
        try log.removeDroppedLeftovers(topic: options.topic)
        for (topic, partition) in try log.partitions() where topic == options.topic {
            writers[partition] = try log.openWriter(
                topic: topic, partition: partition, options: options.writerOptions)
            partitionsWithLogs.insert(partition)
        }
        let loaded = try ProjectionRecovery.load(log: log, topic: options.topic, checkpoints: checkpoints, logger: logger)
        logger.info(
            "projection loaded", ["checkpoint": loaded.checkpoint.map { String($0.sequence) } ?? "none",
                                  "replayed_records": loaded.replayedRecords, "devices": loaded.state.devices.count])
        store = ProjectionStore(loaded.state)
        trace = options.trace ?? FreshnessTrace.fromEnvironment()
        applier = ProjectionApplier(store: store, trace: trace)
        checkpointWriter = CheckpointWriter(checkpoints: checkpoints)
        gaps = try GapRegister(log: log, topic: options.topic)
        for gap in gaps.gaps { counters.lostRecords[gap.partition, default: 0] += gap.lostRecords }
        for (topic, partition) in try log.partitions() where topic == options.topic {
            if let base = try log.retentionBase(topic: topic, partition: partition) { counters.retainedFrom[partition] = base.baseOffset }
        }
        try completeInterruptedErasures(after: loaded.checkpoint?.positions ?? [:])
        if !gaps.unacknowledged.isEmpty {
            logger.error(
                "the log has gaps no operator has acknowledged: records the broker had lost (chatledger acknowledge-loss)",
                ["ranges": gaps.unacknowledged.map(\.range).joined(separator: ",")])
        }
    }

    deinit {
        applier.stop()
        checkpointWriter.stop()
    }

    /// Where to start consuming `partition`: after the log's last offset, or offset 0 when
    /// the log has nothing for it (an explicit 0, not "the beginning": if the broker no
    /// longer has it, the out-of-range answer makes the loss a gap record instead of a
    /// silent start further on). Opens (and recovers) the partition's log.
    package func startOffset(for partition: Int32) throws -> Int64? {
        let writer = try self.writer(partition)
        if writer.lastOffset == nil {
            logger.notice("partition has no log here: rebuilding it from the start of the topic", ["partition": partition])
        }
        catchingUp.insert(partition)
        return try nextOffset(partition)
    }

    /// The next offset the log of `partition` needs: the last one staged + 1, 0 when empty.
    package func nextOffset(_ partition: Int32) throws -> Int64 {
        (try writer(partition).lastStagedOffset ?? -1) + 1
    }

    /// Records that the broker no longer has the offsets from `nextOffset(partition)` up to
    /// `brokerLogStart` − 1: a gap record at `brokerLogStart` − 1, written and synced with
    /// what is staged before it, then passed by the projection (no event, no dead letter).
    /// Ingest goes on at `brokerLogStart`.
    /// - Returns: the gap recorded.
    /// - Throws: `EventLogError` for a write failure, or a `brokerLogStart` not beyond the next offset.
    @discardableResult
    package func recordGap(partition: Int32, brokerLogStart: Int64, reason: String, detectedAt: Int64) throws -> LogGap {
        let writer = try self.writer(partition)
        let gap = LogGap(
            topic: options.topic, partition: partition, firstLostOffset: try nextOffset(partition), lastLostOffset: brokerLogStart - 1,
            brokerLogStartOffset: brokerLogStart, detectedAt: detectedAt, reason: reason)
        try writer.stageGap(gap)
        pending.append((.gap, LogPosition(partition: partition, offset: gap.lastLostOffset), writer.chainHash))
        try commitBatch()
        try writer.sync()  // whatever the fsync policy: a gap is rare, and must not be lost
        gaps.add(gap)
        counters.lostRecords[partition, default: 0] += gap.lostRecords
        return gap
    }

    /// Partitions assigned and not yet caught up with their high watermark: while any is,
    /// this instance is not ready (`/readyz`).
    package private(set) var catchingUp: Set<Int32> = []

    /// Marks partitions whose log has reached `highWatermarks` (the next offset Kafka will
    /// write) as caught up; returns those that just did.
    @discardableResult
    package func updateReadiness(highWatermarks: [Int32: Int64]) -> [Int32] {
        var caughtUp: [Int32] = []
        for partition in catchingUp {
            guard let high = highWatermarks[partition], (writers[partition]?.lastOffset ?? -1) + 1 >= high else { continue }
            caughtUp.append(partition)
        }
        catchingUp.subtract(caughtUp)
        for partition in caughtUp.sorted() {
            logger.notice("partition caught up", ["partition": partition, "last_offset": writers[partition]?.lastOffset ?? -1])
        }
        return caughtUp
    }

    /// The log's last offset of a partition, nil when it has none.
    package func lastOffset(_ partition: Int32) -> Int64? { writers[partition]?.lastOffset }

    /// The writer of the partition last accepted from: a batch holds runs of messages of
    /// one partition, so most messages skip the dictionary lookup.
    private var recentWriter: PartitionWriter?

    private func writer(_ partition: Int32) throws -> PartitionWriter {
        if let recentWriter, recentWriter.partition == partition { return recentWriter }
        if let existing = writers[partition] {
            recentWriter = existing
            return existing
        }
        let writer = try log.openWriter(
            topic: options.topic, partition: partition,
            options: options.writerOptions)
        writers[partition] = writer
        recentWriter = writer
        partitionsWithLogs.insert(partition)
        return writer
    }

    /// Stages one consumed message: an event, or a dead letter with the reason.
    package func accept(partition: Int32, offset: Int64, timestamp: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?) throws {
        let writer = try self.writer(partition)
        guard offset > writer.lastStagedOffset ?? -1 else {
            counters.redeliveriesSkipped += 1
            return
        }
        let position = LogPosition(partition: partition, offset: offset)
        let parsed: Result<Event, EventValidationError>
        if let value {
            let emptyKey = UnsafeRawBufferPointer(start: nil, count: 0)
            parsed = Result { () throws(EventValidationError) in try parser.parse(value, kafkaKey: key ?? emptyKey) }
        } else {
            parsed = .failure(EventValidationError(code: .invalidJSON, path: "", byteOffset: 0, message: "no value (a tombstone)"))
        }
        switch parsed {
        case .success(let event):
            if case .ledgerErased(let erasure) = event.payload {
                guard let selector = ErasureSelector(erasure, deviceDigestName: event.deviceId, key: key, erasureOffset: offset),
                    let key
                else {
                    let reason = DeadLetterReason(
                        code: "key_mismatch", path: "deviceId",
                        message: "a ledger.erased event's deviceId is sha256: and the hex SHA-256 of its Kafka key")
                    try stageDeadLetter(writer, at: position, timestamp: timestamp, key: key, value: value, reason: reason)
                    return
                }
                try writer.stage(
                    kind: .event, offset: offset, timestamp: timestamp, key: key, value: value,
                    reason: LogErasure.reason(Self.logScope(erasure.scope)))
                pending.append((.event(event), position, writer.chainHash))
                pendingErasures.append((partition, String(decoding: key, as: UTF8.self), selector))
                counters.events += 1
                counters.records += 1
                return
            }
            try writer.stage(kind: .event, offset: offset, timestamp: timestamp, key: key, value: value)
            if let trace, trace.matches(key) {
                trace.record(.fetched, position, eventId: event.eventId)
                pendingTraced.append(pending.count)
            }
            pending.append((.event(event), position, writer.chainHash))
            counters.events += 1
        case .failure(let error):
            let reason = DeadLetterReason(code: error.code.description, path: error.path, message: error.message)
            try stageDeadLetter(writer, at: position, timestamp: timestamp, key: key, value: value, reason: reason)
            return
        }
        counters.records += 1
    }

    /// Stages a dead letter (the record's bytes, coordinates and reason), counts it, and logs
    /// it: one line each, at most `deadLetterLinesPerSecond` a second (a flood of bad input
    /// must not flood the log; the lines left out are counted in the next one written).
    private func stageDeadLetter(
        _ writer: PartitionWriter, at position: LogPosition, timestamp: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        reason: DeadLetterReason
    ) throws {
        try writer.stage(kind: .deadLetter, offset: position.offset, timestamp: timestamp, key: key, value: value, reason: reason.description)
        pending.append((.deadLetter, position, writer.chainHash))
        counters.deadLetters += 1
        counters.deadLettersByReason[reason.code, default: 0] += 1
        counters.records += 1
        let now = ContinuousClock.now
        if now - deadLetterLines.since >= .seconds(1) { deadLetterLines = (now, 0, deadLetterLines.leftOut) }
        guard deadLetterLines.written < Self.deadLetterLinesPerSecond else {
            deadLetterLines.leftOut += 1
            return
        }
        deadLetterLines.written += 1
        logger.warning(
            "dead letter",
            ["partition": position.partition, "offset": position.offset, "reason": reason.description,
             "not_logged_before": deadLetterLines.leftOut])
        deadLetterLines.leftOut = 0
    }

    static let deadLetterLinesPerSecond = 10
    /// Dead-letter lines written in the current second, and those left out since the last one.
    private var deadLetterLines = (since: ContinuousClock.now, written: 0, leftOut: 0)

    /// Ends a batch: writes (and syncs, per policy) every touched partition, then applies
    /// the batch to the projection. Returns the next offset to read per touched partition.
    @discardableResult
    package func commitBatch() throws -> [Int32: Int64] {
        var next: [Int32: Int64] = [:]
        let batch = writers.values.filter(\.hasStagedRecords)
        try ParallelCommit.commit(batch)
        if let trace { for index in pendingTraced { trace.record(.appended, pending[index].position) } }
        for writer in batch {
            if let last = writer.lastOffset { next[writer.partition] = last + 1 }
        }
        // Erasures: the log is redacted before the fold drops what they name, and the
        // checkpoints written before them are replaced by one after them.
        let erasures = pendingErasures
        pendingErasures = []
        for erasure in erasures { try redact(partition: erasure.partition, erasure.selector) }
        applier.submit(pending, traced: pendingTraced, onApplied: onBatchApplied)
        recordsSinceCheckpoint += pending.count
        pending = []  // handed to the applier
        pendingTraced = []
        if !erasures.isEmpty {
            applier.waitUntilApplied()
            for erasure in erasures where erasure.selector.erasure.scope != .device {
                try refold(erasure.deviceId, partition: erasure.partition)
            }
            try checkpointReplacingOlder()
        }
        return next
    }

    // MARK: - Erasure

    static func logScope(_ scope: ErasureScope) -> LogErasure.Scope {
        switch scope {
        case .device: .device
        case .chat: .chat
        case .contact: .contact
        }
    }

    /// Redacts what one erasure names in its partition's log (idempotent).
    private func redact(partition: Int32, _ selector: ErasureSelector) throws {
        let outcome = try selector.redact(in: writer(partition))
        counters.erasures += 1
        counters.redactedRecords += outcome.redacted
        counters.unredactableRecords += outcome.unredactable
        logger.notice(
            "erasure applied", ["partition": partition, "offset": selector.erasureOffset, "scope": selector.erasure.scope.rawValue,
                                "redacted_records": outcome.redacted, "unredactable_records": outcome.unredactable])
        if outcome.unredactable > 0 {
            logger.warning(
                "records in version 1/2 segments cannot be redacted (their chain covers the bytes): retention removes them",
                ["partition": partition, "records": outcome.unredactable])
        }
    }

    /// After a chat or contact erasure: the device's state folded again from the log (its
    /// redacted records left out), so the live state is what a replay from zero gives;
    /// not possible once retention removed the log's start, where the fold's drop stands.
    private func refold(_ deviceId: String, partition: Int32) throws {
        guard try log.retentionBase(topic: options.topic, partition: partition) == nil else { return }
        let device = try AuditLog(dataDirectory: log.dataDirectory, topic: options.topic).device(deviceId, partitions: [partition])
        store.replaceDevice(deviceId, with: device)
    }

    /// Once the fold has taken something out (an erasure applied, a partition dropped): a
    /// checkpoint after it, and every older one removed, so no checkpoint on disk holds it.
    private func checkpointReplacingOlder() throws {
        applier.waitUntilApplied()
        try checkpointIfDue(force: true)
        let sequences = checkpoints.sequences()
        for sequence in sequences.dropLast() { try checkpoints.remove(sequence) }
    }

    /// An erasure the log holds after the loaded checkpoint was written, but perhaps not
    /// redacted (a crash between writing it and the checkpoint after it): redacted again
    /// (a no-op if it was), and the checkpoints before it replaced.
    private func completeInterruptedErasures(after positions: [Int32: Int64]) throws {
        var found = false
        for (topic, partition) in try log.partitions() where topic == options.topic {
            var erasures: [(Int64, [UInt8])] = []
            try log.reader(topic: topic, partition: partition).forEach(from: (positions[partition] ?? -1) + 1) { record in
                if LogErasure(record) != nil, let value = record.value { erasures.append((record.offset, Array(value))) }
                return true
            }
            for (offset, value) in erasures {
                guard let event = try? parser.parse(value), case .ledgerErased(let erasure) = event.payload,
                    let selector = ErasureSelector(erasure, deviceDigestName: event.deviceId, erasureOffset: offset)
                else { continue }
                try redact(partition: partition, selector)
                if erasure.scope != .device, let deviceId = store.deviceId(named: event.deviceId) {
                    try refold(deviceId, partition: partition)
                }
                found = true
            }
        }
        if found { try checkpointReplacingOlder() }
    }

    /// Starts a checkpoint if enough records or time have passed; with `force`, writes one
    /// now and returns once it is on disk. The log is synced first, so a checkpoint never
    /// runs ahead of durable records.
    ///
    /// A due checkpoint is written in the background (`CheckpointWriter`): the consumer
    /// thread only syncs the log and takes a snapshot (a copy-on-write copy). While one is
    /// still being written, the next due one is skipped and waits for the following due
    /// time; checkpoints never queue up.
    /// - Throws: the failure of a background checkpoint, at the first call after it failed
    ///   (so ingest stops at the next batch, as it did when checkpoints were written
    ///   inline), or of a forced one; a log sync failure.
    package func checkpointIfDue(force: Bool = false) throws {
        if let outcome = checkpointWriter.collect() { try report(outcome) }
        let due = recordsSinceCheckpoint >= options.checkpointEveryRecords
            || (recordsSinceCheckpoint > 0 && (ContinuousClock.now - lastCheckpoint) / .seconds(1) >= options.checkpointEverySeconds)
        if force {
            // The one in flight first (sequences are taken in order), then this one even if
            // that one failed: its failure is thrown after.
            var earlierFailure: (any Error)?
            if let outcome = checkpointWriter.waitForInFlight() {
                do { try report(outcome) } catch { earlierFailure = error }
            }
            for writer in writers.values { try writer.sync() }
            try report(Result { try checkpoints.write(store.snapshot(), topic: options.topic) })
            if let earlierFailure { throw earlierFailure }
        } else if due {
            if checkpointWriter.isInFlight {
                logger.notice("checkpoint due while the previous one is still being written: skipped until the next is due")
            } else {
                for writer in writers.values { try writer.sync() }
                _ = checkpointWriter.start(store.snapshot(), topic: options.topic)
            }
        } else {
            return
        }
        recordsSinceCheckpoint = 0
        lastCheckpoint = .now
    }

    /// Logs a checkpoint written, or throws its failure.
    private func report(_ outcome: Result<CheckpointInfo, any Error>) throws {
        let info = try outcome.get()
        logger.info("checkpoint written", ["sequence": info.sequence, "digest": info.stateDigest.hex.prefix(16)])
        try enforceRetention(after: info)
    }

    // MARK: - Retention

    /// Applies the retention policy once `checkpoint` is on disk: each partition keeps
    /// everything after its position there, and the checkpoints the new bases leave
    /// without their log (positions before a base) are removed, so the oldest kept one is
    /// the partition's base for `verify` and `replay`.
    private func enforceRetention(after checkpoint: CheckpointInfo) throws {
        guard options.retention.isEnabled else { return }
        let retention = LogRetention(policy: options.retention, archiver: archiver)
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        let now = Int64(clock.tv_sec) * 1000 + Int64(clock.tv_nsec) / 1_000_000
        var bases: [Int32: Int64] = [:]
        // A gap no operator has acknowledged stays in the log (SPEC §5: never skipped
        // silently), and so does everything after it.
        var unacknowledged: [Int32: Int64] = [:]
        for gap in gaps.unacknowledged where gap.topic == options.topic {
            unacknowledged[gap.partition] = min(unacknowledged[gap.partition] ?? .max, gap.lastLostOffset)
        }
        for (partition, position) in checkpoint.positions.sorted(by: { $0.key < $1.key }) {
            let keepAfter = min(position, (unacknowledged[partition] ?? .max) - 1)
            let outcome = try retention.enforce(log: log, topic: options.topic, partition: partition, keepAfter: keepAfter, now: now)
            if let failure = outcome.archiveFailure { logger.error("segment not archived: kept", ["partition": partition, "error": failure]) }
            if outcome.archivePending > 0 {
                logger.debug("segments wait for the archive command", ["partition": partition, "segments": outcome.archivePending])
            }
            if outcome.removedSegments > 0 {
                logger.notice(
                    "retention removed segments",
                    ["partition": partition, "segments": outcome.removedSegments, "bytes": outcome.removedBytes,
                     "base": outcome.base?.baseOffset ?? 0])
            }
            counters.retentionRemovedSegments += outcome.removedSegments
            counters.retentionRemovedBytes += outcome.removedBytes
            if let base = outcome.base {
                counters.retainedFrom[partition] = base.baseOffset
                // Checkpoints need looking at only when a base has just moved (each read
                // decodes a whole state, on the consumer thread).
                if outcome.removedSegments > 0 { bases[partition] = base.baseOffset }
            }
        }
        guard !bases.isEmpty else { return }
        for sequence in checkpoints.sequences() where sequence != checkpoint.sequence {
            guard let (_, info) = try? checkpoints.read(sequence) else { continue }
            if bases.contains(where: { partition, base in (info.positions[partition] ?? -1) < base - 1 }) {
                try checkpoints.remove(sequence)
            }
        }
    }

    /// Partitions taken away: their pending work is already committed (batches end
    /// before a rebalance is served); their writers are closed.
    package func release(_ partitions: [Int32]) throws {
        for partition in partitions {
            try writers[partition]?.sync()
            writers[partition] = nil
            if recentWriter?.partition == partition { recentWriter = nil }
            catchingUp.remove(partition)
        }
    }

    /// The partitions this instance's log holds, assigned or not (a log once opened stays
    /// until `drop`).
    package private(set) var partitionsWithLogs: Set<Int32> = []

    /// Drops the log of partitions this instance no longer owns and another instance owns
    /// and has caught up (cluster mode): the copy here is no longer followed, so an erasure
    /// applied by the owner would never reach it. Their devices leave the projection; a
    /// checkpoint without them is written and every older one removed; then their log
    /// directories are deleted. A crash in between leaves the log, which is folded in again
    /// at the restart and dropped again. If one comes back to this instance, it is rebuilt
    /// from Kafka (or a standby log) like a partition never held.
    ///
    /// The state's digest is then what a replay of the other partitions gives; the counts
    /// of events seen keep what the partition added (they are totals).
    /// - Throws: a log or checkpoint failure (ingest stops, as for any).
    package func drop(_ partitions: [Int32]) throws {
        guard !partitions.isEmpty else { return }
        _ = try commitBatch()  // nothing is pending between batches; if anything were, it is written first
        applier.waitUntilApplied()  // the projection holds every record of the partitions before they go
        var dropped: [(partition: Int32, devices: Int)] = []
        for partition in partitions.sorted() {
            try writers[partition]?.sync()
            writers[partition] = nil
            if recentWriter?.partition == partition { recentWriter = nil }
            catchingUp.remove(partition)
            // The devices erased on it: the versions they left go too (read only when any is kept).
            var erased: [SHA256Digest] = []
            if store.holdsErasedDeviceVersions {
                try log.reader(topic: options.topic, partition: partition).forEach(from: 0) { record in
                    if let erasure = LogErasure(record), let digest = erasure.deviceDigest { erased.append(digest) }
                    return true
                }
            }
            dropped.append((partition, store.dropPartition(partition, erasedDevices: erased)))
            gaps.remove(partition: partition)
            counters.lostRecords[partition] = nil
            counters.retainedFrom[partition] = nil
        }
        try checkpointReplacingOlder()
        for (partition, devices) in dropped {
            let bytes = try log.removePartition(topic: options.topic, partition: partition)
            partitionsWithLogs.remove(partition)
            counters.droppedPartitions += 1
            logger.notice(
                "partition dropped: another instance owns it and has caught up", ["partition": partition, "devices": devices, "bytes": bytes])
        }
    }

    /// Returns once every committed batch is in the projection (`store`).
    package func waitUntilApplied() {
        applier.waitUntilApplied()
    }

    /// Syncs everything, waits for the projection and for a checkpoint being written, and
    /// writes a final checkpoint.
    /// - Throws: a failure of the checkpoint in flight or of the final one.
    package func close() throws {
        // A command still archiving is ended: its segment stays and goes after the next start.
        defer { archiver?.stop() }
        try commitBatch()
        for writer in writers.values { try writer.sync() }
        applier.waitUntilApplied()
        try checkpointIfDue(force: true)
    }
}

/// Commits several partitions' batches at once: each partition is its own file, so each
/// needs its own `fdatasync`; issued together, the file system folds them into one
/// journal commit instead of paying one disk round trip per partition.
enum ParallelCommit {
    /// The writers of one batch, each used by exactly one worker.
    private final class Batch: @unchecked Sendable {
        // SAFETY: `concurrentPerform` hands each index to one worker only, so each writer
        // (and each error slot) is touched by one thread; the caller waits for all.
        let writers: [PartitionWriter]
        var errors: [(any Error)?]

        init(_ writers: [PartitionWriter]) {
            self.writers = writers
            errors = Array(repeating: nil, count: writers.count)
        }
    }

    static func commit(_ writers: [PartitionWriter]) throws {
        guard writers.count > 1 else {
            try writers.first?.commit()
            return
        }
        let batch = Batch(writers)
        DispatchQueue.concurrentPerform(iterations: writers.count) { index in
            do {
                try batch.writers[index].commit()
            } catch {
                batch.errors[index] = error
            }
        }
        if let error = batch.errors.compactMap({ $0 }).first { throw error }
    }
}
