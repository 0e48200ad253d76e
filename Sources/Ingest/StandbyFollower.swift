#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaClient
import LedgerSupport
import Synchronization

/// Cluster mode's standby replicas (SPEC §9, `--standby N`): follows partitions of the
/// canonical topic that another instance owns into a separate local log,
/// `DATA/standby/log/<topic>/<partition>/` (the event log's format; every record with its
/// Kafka coordinates and raw key and value, no projection). When ingest is then assigned
/// such a partition, `takeOver` feeds what the standby log holds beyond the main log's end
/// through the normal ingest path, so the main log is appended by its one writer with the
/// chain it would have had from Kafka, and Kafka is asked only for the tail.
///
/// Erasure holds here too (SPEC §10): a `ledger.erased` event copied into a standby log
/// redacts what it names there, exactly as ingest redacts the main log, so no erased value
/// stays under `DATA/standby/`. A takeover imports only up to the first redacted record:
/// from there Kafka delivers, and ingest applies the erasure to the main log itself.
///
/// Retention (`--retain-days`, `--retain-bytes`) applies to standby logs with the main
/// log's rules, except that a standby log has no checkpoint to keep a base for: every
/// sealed segment is eligible, the live one never (nor is the archive command run: a
/// standby log is a copy of Kafka). A standby log is removed once this instance certainly
/// no longer needs it: after `takeOver` imported it (the main log holds it from then on),
/// or when the partition's owner is another instance that this one does not stand by for
/// (`follow(_:discarding:)`). A partition without an owner keeps its standby log: that is
/// the moment a takeover may need it.
///
/// `follow` (any thread), `run` (its own thread) and `takeOver` (the ingest thread, in the
/// rebalance callback) share one lock: a partition's standby log has one writer at a time.
package final class StandbyFollower: Sendable {
    /// What the follower has done so far (for `/metrics`).
    package struct Statistics: Sendable {
        package var partitions = 0
        package var recordsFollowed = 0
        package var recordsImported = 0
        package var imports = 0
        package var fallbacks = 0
        /// `ledger.erased` events applied to the standby logs, and the records they redacted.
        package var erasures = 0
        package var redactedRecords = 0
        /// Segments and bytes retention removed from the standby logs, and standby logs
        /// removed whole (taken over, or no longer this instance's to follow).
        package var retentionRemovedSegments = 0
        package var retentionRemovedBytes: Int64 = 0
        package var removedLogs = 0
    }

    private struct State: ~Copyable {
        let consumer: KafkaAssignedConsumer
        var writers: [Int32: PartitionWriter] = [:]
        /// The partitions to follow, as the ownership last said.
        var wanted: Set<Int32> = []
        /// Partitions ingest took over (until it gives them up again): never followed.
        var taken: Set<Int32> = []
        /// Partitions owned by another instance this one does not stand by for: their
        /// standby logs are removed.
        var discarded: Set<Int32> = []
        /// Partitions whose next offset the broker no longer has: not followed this run.
        var lost: Set<Int32> = []
        /// Erasures copied since the last commit, applied once their record is durable.
        var erasures: [(partition: Int32, selector: ErasureSelector)] = []
        var statistics = Statistics()
    }

    package let log: EventLog
    package let topic: String
    private let fsync: FsyncPolicy
    private let maxSegmentBytes: Int
    private let maxSegmentAgeMilliseconds: Int64?
    /// The retention of the main log, without its archive command (see the type's notes).
    private let retention: RetentionPolicy
    private let state: Mutex<State>
    private let stopping = Atomic<Bool>(false)
    private let logger = Logger(label: "standby")

    /// The standby log's data directory of an instance's data directory.
    package static func dataDirectory(of data: String) -> String { data + "/standby" }

    /// Connects the follower's consumer (group-less, nothing assigned yet).
    /// - Parameter retention: the main log's policy (`--retain-days`, `--retain-bytes`);
    ///   its archive command is not used here.
    /// - Parameter maxSegmentBytes: where a standby log's segment is sealed (nil: as the main
    ///   log's under `retention`).
    /// - Throws: `KafkaError` if librdkafka refuses the configuration.
    package init(
        dataDirectory: String, brokers: String, topic: String, kafka: KafkaConfiguration, fsync: FsyncPolicy,
        retention: RetentionPolicy = RetentionPolicy(), maxSegmentBytes: Int? = nil
    ) throws {
        self.maxSegmentBytes = maxSegmentBytes ?? retention.segmentBytes(atMost: PartitionWriter.Options().maxSegmentBytes)
        maxSegmentAgeMilliseconds = retention.segmentAgeMilliseconds
        log = EventLog(dataDirectory: Self.dataDirectory(of: dataDirectory))
        self.topic = topic
        self.fsync = fsync
        self.retention = RetentionPolicy(maxAgeMilliseconds: retention.maxAgeMilliseconds, maxBytes: retention.maxBytes)
        let consumer = try KafkaAssignedConsumer(bootstrapServers: brokers, topic: topic, configuration: kafka)
        state = Mutex(State(consumer: consumer))
    }

    /// What the follower has done so far.
    package var statistics: Statistics { state.withLock { $0.statistics } }

    /// Follows exactly `partitions` from now on (less those ingest has taken over), each
    /// from its standby log's end + 1 (0 when it has none), and removes the standby logs of
    /// `discarding` (partitions another instance owns that this one does not stand by for),
    /// less those followed or taken over.
    package func follow(_ partitions: Set<Int32>, discarding: Set<Int32> = []) {
        state.withLock { state in
            state.wanted = partitions
            state.discarded = discarding
            reassign(&state)
        }
    }

    /// Ingest gave `partitions` up: they may be followed again when the ownership says so.
    package func released(_ partitions: [Int32]) {
        state.withLock { state in
            state.taken.subtract(partitions)
            reassign(&state)
        }
    }

    /// Reads and writes until `stop()` (the body of the follower's thread).
    /// - Throws: a standby log write failure.
    package func run() throws {
        var lastRetention = ContinuousClock.now
        while !stopping.load(ordering: .acquiring) {
            if retention.isEnabled, ContinuousClock.now - lastRetention >= Self.retentionInterval {
                lastRetention = .now
                try enforceRetention(now: Self.wallClockMilliseconds())
            }
            try state.withLock { state in
                var touched: Set<Int32> = []
                var recordsFollowed = 0
                let writers = state.writers
                var erasures: [(partition: Int32, selector: ErasureSelector)] = []
                let polled = try state.consumer.poll(maxMessages: 10_000, timeoutMilliseconds: 50) { message in
                    guard let writer = writers[message.partition] else { return }
                    guard
                        try Self.copy(
                            into: writer, offset: message.offset, timestamp: message.timestamp, key: message.key, value: message.value,
                            erasures: &erasures)
                    else { return }
                    touched.insert(message.partition)
                    recordsFollowed += 1
                }
                state.erasures += erasures
                try commit(touched, &state)
                state.statistics.recordsFollowed += recordsFollowed
                if !polled.outOfRange.isEmpty {
                    logger.warning(
                        "the broker no longer has the offset the standby log needs: not following the partition in this run",
                        ["partitions": polled.outOfRange.map(String.init).joined(separator: ",")])
                    state.lost.formUnion(polled.outOfRange)
                    reassign(&state)
                }
            }
            if state.withLock({ $0.writers.isEmpty }) { usleep(50_000) }
        }
        state.withLock { state in
            for writer in state.writers.values { try? writer.sync() }
        }
    }

    /// Ends `run`.
    package func stop() { stopping.store(true, ordering: .releasing) }

    /// How often `run` applies retention to the standby logs.
    static let retentionInterval = Duration.seconds(10)

    /// The wall clock in ms since the epoch (segment ages are their files' mtimes).
    package static func wallClockMilliseconds() -> Int64 {
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        return Int64(clock.tv_sec) * 1000 + Int64(clock.tv_nsec) / 1_000_000
    }

    /// Applies the retention policy to the standby log of every followed partition: sealed
    /// segments go as `LogRetention` decides, with no checkpoint position to keep (a
    /// standby log is read only by a takeover, which falls back to Kafka for what it lacks).
    /// - Parameter now: the clock, ms since the epoch.
    /// - Throws: `EventLogError` for I/O failure.
    package func enforceRetention(now: Int64) throws {
        guard retention.isEnabled else { return }
        let enforcer = LogRetention(policy: retention)
        try state.withLock { state in
            for (partition, writer) in state.writers.sorted(by: { $0.key < $1.key }) {
                let outcome = try enforcer.enforce(
                    log: log, topic: topic, partition: partition, keepAfter: writer.lastOffset ?? -1, now: now)
                guard outcome.removedSegments > 0 else { continue }
                state.statistics.retentionRemovedSegments += outcome.removedSegments
                state.statistics.retentionRemovedBytes += outcome.removedBytes
                logger.notice(
                    "retention removed standby segments",
                    ["partition": partition, "segments": outcome.removedSegments, "bytes": outcome.removedBytes,
                     "base": outcome.base?.baseOffset ?? 0])
            }
        }
    }

    /// Removes the standby log of a partition no longer followed (its writer closed).
    private func removeLog(_ partition: Int32, _ state: inout State, why: String) {
        let directory = log.directory(topic: topic, partition: partition)
        guard access(directory, F_OK) == 0 else { return }
        do {
            try FileManager.default.removeItem(atPath: directory)
            state.statistics.removedLogs += 1
            logger.notice("standby log removed", ["partition": partition, "why": why])
        } catch {
            logger.error("cannot remove the standby log", ["partition": partition, "error": error])
        }
    }

    /// Ingest has been assigned `partition`: it is no longer followed, and what its standby
    /// log holds beyond the main log's end is fed through `pipeline` (accepted and
    /// committed, as if Kafka had delivered it), when the standby log continues the main
    /// log exactly (it holds the main log's last offset, or offset 0 for an empty main
    /// log); otherwise nothing is imported and Kafka delivers all (the reason is logged).
    /// - Returns: the records imported.
    /// - Throws: a main log write failure (ingest stops, as for a record from Kafka).
    @discardableResult
    package func takeOver(_ partition: Int32, into pipeline: IngestPipeline) throws -> Int {
        try state.withLock { state in
            state.taken.insert(partition)
            reassign(&state)
            let started = ContinuousClock.now
            let next = try pipeline.nextOffset(partition)
            let reader = log.reader(topic: topic, partition: partition)
            var imported = 0
            var continues: Bool?
            var stoppedAtRedaction: Int64?
            var readFailure: (any Error)?
            var writeFailure: (any Error)?
            do {
                try reader.forEach(from: max(0, next - 1)) { record in
                    if continues == nil {
                        continues = record.offset == next - 1 || (next == 0 && record.offset == 0)
                        guard continues == true else { return false }
                    }
                    guard record.offset >= next else { return true }
                    // What an erasure redacted here: Kafka delivers it from here on, and
                    // ingest applies the erasure to the main log as for any record.
                    guard !record.isRedacted else {
                        stoppedAtRedaction = record.offset
                        return false
                    }
                    do {
                        try pipeline.accept(
                            partition: partition, offset: record.offset, timestamp: record.timestamp, key: record.key, value: record.value)
                        imported += 1
                        if imported % 10_000 == 0 { try pipeline.commitBatch() }
                    } catch {
                        writeFailure = error
                        return false
                    }
                    return true
                }
            } catch {
                readFailure = error
            }
            if let writeFailure { throw writeFailure }
            try pipeline.commitBatch()
            let resume = try pipeline.nextOffset(partition)
            if imported > 0 {
                state.statistics.recordsImported += imported
                state.statistics.imports += 1
                logger.notice(
                    "partition imported from the standby log", ["partition": partition, "records": imported, "from": next, "to": resume - 1,
                                                                "kafka_from": resume,
                                                                "took_ms": Int((ContinuousClock.now - started) / .milliseconds(1))])
            } else if continues == false || readFailure != nil {
                state.statistics.fallbacks += 1
                let why = readFailure.map { "the standby log cannot be read: \($0)" }
                    ?? "the standby log does not continue the main log (it lacks offset \(next - 1))"
                logger.warning("partition not imported from the standby log: Kafka delivers it", ["partition": partition, "why": why, "kafka_from": resume])
            }
            if let stoppedAtRedaction {
                logger.info(
                    "standby import stopped at a record an erasure redacted: Kafka delivers from there",
                    ["partition": partition, "offset": stoppedAtRedaction])
            }
            if let readFailure, imported > 0 {
                logger.warning("standby log read stopped early: Kafka delivers the rest", ["partition": partition, "error": readFailure])
            }
            // The main log holds what it had (or Kafka delivers it): a copy no longer needed.
            removeLog(partition, &state, why: "taken over")
            return imported
        }
    }

    /// Stages one consumed record in a standby log (unless the log has it already), noting a
    /// `ledger.erased` event's selector in `erasures`, as ingest does for the main log.
    /// - Returns: whether the record was staged.
    static func copy(
        into writer: PartitionWriter, offset: Int64, timestamp: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        erasures: inout [(partition: Int32, selector: ErasureSelector)]
    ) throws -> Bool {
        guard offset > writer.lastStagedOffset ?? -1 else { return false }
        guard let key, let value, let selector = erasureSelector(key: key, value: value, offset: offset) else {
            try writer.stage(kind: .event, offset: offset, timestamp: timestamp, key: key, value: value)
            return true
        }
        // Marked as the main log marks it, so `verify` finds the erasure its redactions name.
        try writer.stage(
            kind: .event, offset: offset, timestamp: timestamp, key: key, value: value,
            reason: LogErasure.reason(IngestPipeline.logScope(selector.erasure.scope)))
        erasures.append((writer.partition, selector))
        return true
    }

    /// The selector of a record that is a valid `ledger.erased` event (its key the device id
    /// its digest names); nil for any other record. Only a record holding the type's name is parsed.
    static func erasureSelector(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, offset: Int64) -> ErasureSelector? {
        guard value.firstRange(of: erasureTypeName) != nil,
            let event = try? EventParser().parse(value, kafkaKey: key),
            case .ledgerErased(let erasure) = event.payload
        else { return nil }
        return ErasureSelector(erasure, deviceDigestName: event.deviceId, key: key, erasureOffset: offset)
    }

    private static let erasureTypeName = Array("\"ledger.erased\"".utf8)

    /// Commits what was staged in `partitions`, then applies the erasures noted meanwhile
    /// to their standby logs (the erasure record is durable before anything it names is redacted).
    private func commit(_ partitions: Set<Int32>, _ state: inout State) throws {
        for partition in partitions { _ = try state.writers[partition]?.commit() }
        let erasures = state.erasures
        state.erasures = []
        for (partition, selector) in erasures {
            guard let writer = state.writers[partition] else { continue }
            let outcome = try selector.redact(in: writer)
            state.statistics.erasures += 1
            state.statistics.redactedRecords += outcome.redacted
            logger.notice(
                "erasure applied to the standby log",
                ["partition": partition, "offset": selector.erasureOffset, "redacted_records": outcome.redacted])
        }
    }

    /// Copies records into the standby log of a followed partition and commits them, as
    /// `run` does with what the broker delivers (for tests of the standby log without a broker).
    /// - Returns: the records staged (those the log did not have).
    @discardableResult
    package func copyForTesting(
        partition: Int32, _ records: [(offset: Int64, timestamp: Int64, key: [UInt8], value: [UInt8])]
    ) throws -> Int {
        try state.withLock { state in
            guard let writer = state.writers[partition] else { return 0 }
            var staged = 0
            var erasures: [(partition: Int32, selector: ErasureSelector)] = []
            for record in records {
                let copied = try record.key.withUnsafeBytes { key in
                    try record.value.withUnsafeBytes { value in
                        try Self.copy(
                            into: writer, offset: record.offset, timestamp: record.timestamp, key: key, value: value, erasures: &erasures)
                    }
                }
                if copied { staged += 1 }
            }
            state.erasures += erasures
            try commit([partition], &state)
            return staged
        }
    }

    /// Assigns the consumer `wanted` less `taken` and `lost`, each from its standby log's
    /// end; closes the writers of partitions no longer followed.
    private func reassign(_ state: inout State) {
        let follow = state.wanted.subtracting(state.taken).subtracting(state.lost)
        var offsets: [Int32: Int64] = [:]
        for partition in follow.sorted() {
            do {
                let writer = try state.writers[partition]
                    ?? log.openWriter(topic: topic, partition: partition, options: .init(fsync: fsync, maxSegmentBytes: maxSegmentBytes, maxSegmentAgeMilliseconds: maxSegmentAgeMilliseconds))
                state.writers[partition] = writer
                offsets[partition] = (writer.lastOffset ?? -1) + 1
            } catch {
                logger.error("cannot open the standby log: not following the partition", ["partition": partition, "error": error])
            }
        }
        for partition in Array(state.writers.keys) where offsets[partition] == nil {
            try? state.writers[partition]?.sync()
            state.writers[partition] = nil
        }
        for partition in state.discarded.subtracting(follow).subtracting(state.taken).sorted() {
            removeLog(partition, &state, why: "owned by an instance this one does not stand by for")
        }
        // The same partitions: already fetching on from where their logs end.
        guard Set(offsets.keys) != Set(state.consumer.assignment.keys) else { return }
        do {
            try state.consumer.assign(offsets)
            state.statistics.partitions = offsets.count
            logger.info(
                "standby partitions", ["partitions": offsets.keys.sorted().map(String.init).joined(separator: ","),
                                       "start": offsets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")])
        } catch {
            logger.error("cannot assign the standby partitions", ["error": error])
        }
    }

    /// Registers `chatledger_standby_*` metrics.
    package func registerMetrics(in registry: MetricsRegistry) {
        registry.collect("chatledger_standby_partitions", help: "Partitions this instance follows as a standby replica.", kind: .gauge) {
            [.init(Double(self.statistics.partitions))]
        }
        registry.collect("chatledger_standby_records_total", help: "Records written to the standby log.", kind: .counter) {
            [.init(Double(self.statistics.recordsFollowed))]
        }
        registry.collect(
            "chatledger_standby_imported_records_total", help: "Records imported from the standby log when taking a partition over.",
            kind: .counter
        ) {
            [.init(Double(self.statistics.recordsImported))]
        }
        registry.collect(
            "chatledger_standby_takeovers_total", help: "Partitions taken over, by whether the standby log was imported or Kafka delivered all.",
            kind: .counter
        ) {
            let statistics = self.statistics
            return [.init([("outcome", "imported")], Double(statistics.imports)), .init([("outcome", "kafka")], Double(statistics.fallbacks))]
        }
        registry.collect(
            "chatledger_standby_redacted_records_total", help: "Records in the standby logs redacted by ledger.erased events copied there.",
            kind: .counter
        ) {
            [.init(Double(self.statistics.redactedRecords))]
        }
        registry.collect(
            "chatledger_standby_retention_removed_bytes_total", help: "Bytes of standby log segments retention removed.", kind: .counter
        ) {
            [.init(Double(self.statistics.retentionRemovedBytes))]
        }
        registry.collect(
            "chatledger_standby_logs_removed_total",
            help: "Standby logs removed whole: taken over, or owned by an instance this one does not stand by for.", kind: .counter
        ) {
            [.init(Double(self.statistics.removedLogs))]
        }
    }
}
