#if canImport(Glibc)
import Glibc
#endif
import EventLog
import KafkaClient
import LedgerSupport
import Synchronization

/// Runs ingest: a consumer and the pipeline on one dedicated thread, until `stop()`.
///
/// Backpressure is by construction: the thread fetches the next batch only after the
/// previous one is in the log and the projection, so librdkafka's bounded prefetch
/// queue is all that can pile up.
package final class IngestService: Sendable {
    package struct Configuration: Sendable {
        package var brokers: String
        package var group: String
        package var kafka: KafkaConfiguration
        package var pipeline: IngestPipeline.Options
        package var batchSize: Int
        package var progressEverySeconds: Double
        /// What to do when the broker no longer has records the log needs.
        package var onBrokerLoss: BrokerLossPolicy
        /// Cluster mode: told of every partition assigned, caught up and revoked.
        package var ownership: (any PartitionOwnershipListener)?
        /// Cluster mode's standby replicas: a partition assigned is first imported from its standby log.
        package var standby: StandbyFollower?

        package init(brokers: String, group: String = "chatledger", kafka: KafkaConfiguration = KafkaConfiguration(),
                    pipeline: IngestPipeline.Options = .init(), batchSize: Int = 10_000, progressEverySeconds: Double = 5,
                    onBrokerLoss: BrokerLossPolicy = .record) {
            self.brokers = brokers
            self.group = group
            self.kafka = kafka
            self.pipeline = pipeline
            self.batchSize = batchSize
            self.progressEverySeconds = progressEverySeconds
            self.onBrokerLoss = onBrokerLoss
        }
    }

    /// What ingest has done so far, published after every batch (for `/metrics`).
    package struct Statistics: Sendable {
        package var counters = IngestPipeline.Counters()
        /// Per assigned partition: the log's last offset and the broker's high watermark.
        package var partitions: [Int32: (lastOffset: Int64?, highWatermark: Int64?)] = [:]
        /// Records per second over the last second or so.
        package var recordsPerSecond = 0.0
    }

    private let stopping = Atomic<Bool>(false)
    private let caughtUp = Atomic<Bool>(false)
    private let published = Mutex(Statistics())
    private let logger = Logger(label: "ingest")

    package init() {}

    /// The statistics as of the last batch.
    package var statistics: Statistics { published.withLock { $0 } }

    /// True once every assigned partition has reached its high watermark (and stays true
    /// until a newly assigned partition has to catch up): what `/readyz` reports.
    package var isCaughtUp: Bool { caughtUp.load(ordering: .acquiring) }

    /// Asks the loop to finish its batch and shut down cleanly.
    package func stop() { stopping.store(true, ordering: .releasing) }

    /// Consumes until `stop()`; then syncs, checkpoints and leaves the group.
    /// - Throws: what stops ingest for good (a fatal Kafka error, a damaged log).
    package func run(log: EventLog, configuration: Configuration) throws {
        try run(pipeline: try IngestPipeline(log: log, options: configuration.pipeline), configuration: configuration)
    }

    /// Consumes into a pipeline the caller made (to share its projection store) until `stop()`.
    package func run(pipeline: IngestPipeline, configuration: Configuration) throws {
        // A partition whose next offset the broker no longer has must come back to us, not
        // be moved on by librdkafka (`earliest` skipped the lost records with a warning).
        var kafka = configuration.kafka
        if let asked = kafka["auto.offset.reset"], asked != "error" {
            logger.warning("ignoring auto.offset.reset=\(asked): ingest decides what a lost offset means (--on-broker-loss)")
        }
        kafka["auto.offset.reset"] = "error"
        // Whether the group has given this instance an assignment yet (perhaps an empty one).
        let joined = Atomic<Bool>(false)
        let consumer = try KafkaConsumer(
            bootstrapServers: configuration.brokers, groupId: configuration.group, topic: configuration.pipeline.topic,
            configuration: kafka,
            startOffset: { partition in
                try configuration.standby?.takeOver(partition, into: pipeline)
                return try pipeline.startOffset(for: partition)
            },
            onAssigned: { partitions in
                joined.store(true, ordering: .relaxed)
                configuration.ownership?.assigned(partitions)
            },
            onRevoked: { partitions in
                configuration.ownership?.revoked(partitions)
                configuration.standby?.released(partitions)
                do {
                    try pipeline.release(partitions)
                } catch {
                    Logger(label: "ingest").error("releasing partitions", ["error": error])
                }
            })
        var lastProgress = ContinuousClock.now
        var recordsAtLastProgress = 0
        var rateWindow = (start: ContinuousClock.now, records: 0, perSecond: 0.0)
        var stoppedBy: IngestError?
        while !stopping.load(ordering: .acquiring) {
            try Self.consumeBatch(from: consumer, into: pipeline, batchSize: configuration.batchSize)
            if !consumer.offsetsOutOfRange.isEmpty {
                do {
                    try Self.resumeOutOfRange(consumer, pipeline, policy: configuration.onBrokerLoss, logger: logger)
                } catch let error as IngestError {
                    stoppedBy = error
                    break
                }
            }
            if !pipeline.catchingUp.isEmpty {
                var highs: [Int32: Int64] = [:]
                for partition in pipeline.catchingUp { highs[partition] = consumer.highWatermark(partition: partition) }
                let caughtUp = pipeline.updateReadiness(highWatermarks: highs)
                if !caughtUp.isEmpty { configuration.ownership?.caughtUp(caughtUp) }
            }
            // Not before the first assignment: at a restart the table still names the owners
            // that stood in while this instance was away, and it may get those partitions back.
            if let ownership = configuration.ownership, joined.load(ordering: .relaxed) {
                try Self.dropOwnedElsewhere(pipeline, consumer, ownership)
            }
            caughtUp.store(!consumer.assignment.isEmpty && pipeline.catchingUp.isEmpty, ordering: .releasing)
            try pipeline.checkpointIfDue()
            let windowSeconds = (ContinuousClock.now - rateWindow.start) / .seconds(1)
            if windowSeconds >= 1 {
                rateWindow = (.now, pipeline.counters.records, Double(pipeline.counters.records - rateWindow.records) / windowSeconds)
            }
            publish(pipeline, consumer, recordsPerSecond: rateWindow.perSecond)
            let elapsed = (ContinuousClock.now - lastProgress) / .seconds(1)
            if elapsed >= configuration.progressEverySeconds {
                let counters = pipeline.counters
                var lag: [String] = []
                for partition in consumer.assignment.sorted() {
                    if let high = consumer.highWatermark(partition: partition) {
                        lag.append("\(partition):\(high - ((pipeline.lastOffset(partition) ?? -1) + 1))")
                    }
                }
                logger.info(
                    "progress", ["records": counters.records, "events": counters.events, "dead_letters": counters.deadLetters,
                                 "redeliveries_skipped": counters.redeliveriesSkipped,
                                 "records_per_s": Int(Double(counters.records - recordsAtLastProgress) / elapsed),
                                 "lag": lag.joined(separator: ","),
                                 "catching_up": pipeline.catchingUp.sorted().map(String.init).joined(separator: ",")])
                lastProgress = .now
                recordsAtLastProgress = counters.records
            }
        }
        try pipeline.close()
        consumer.close()
        published.withLock { $0.partitions = [:] }
        logger.info("stopped", ["records": pipeline.counters.records, "dead_letters": pipeline.counters.deadLetters])
        if let stoppedBy { throw stoppedBy }
    }

    /// Partitions whose next offset the broker did not have: the broker's log start and end
    /// decide what happened. Records gone (log start beyond the log's next offset): a gap
    /// record and on from the log start, or with `stop` an `IngestError` naming the range.
    /// The log's next offset beyond the broker's end: an `IngestError` (this log is not from
    /// this topic). Otherwise the offset is there after all: on from it.
    /// - Throws: `IngestError` to stop ingest; a log write or assignment failure.
    static func resumeOutOfRange(_ consumer: KafkaConsumer, _ pipeline: IngestPipeline, policy: BrokerLossPolicy, logger: Logger) throws {
        for (partition, asked) in consumer.offsetsOutOfRange.sorted(by: { $0.key < $1.key }) {
            let next = try pipeline.nextOffset(partition)
            let broker: (low: Int64, high: Int64)
            do {
                broker = try consumer.queryWatermarks(partition: partition, timeoutMilliseconds: 5_000)
            } catch {
                logger.warning("cannot ask the broker where its log starts: trying again", ["partition": partition, "error": error])
                continue
            }
            if broker.low > next {
                let gap = LogGap(
                    topic: consumer.topic, partition: partition, firstLostOffset: next, lastLostOffset: broker.low - 1,
                    brokerLogStartOffset: broker.low, detectedAt: Self.now(),
                    reason: "offset_out_of_range: the broker's log of partition \(partition) starts at \(broker.low) "
                        + "(ends at \(broker.high)); the log needed offset \(next)")
                let what = policy == .record
                    ? "records lost at the broker: gap recorded in the log, going on from the broker's log start"
                    : "records lost at the broker: stopping (--on-broker-loss stop)"
                if policy == .record {
                    try pipeline.recordGap(partition: partition, brokerLogStart: broker.low, reason: gap.reason, detectedAt: gap.detectedAt)
                }
                logger.error(
                    what, ["topic": gap.topic, "partition": partition, "range": gap.range, "first_lost_offset": gap.firstLostOffset,
                           "last_lost_offset": gap.lastLostOffset, "lost_records": gap.lostRecords,
                           "broker_log_start": gap.brokerLogStartOffset, "policy": policy.rawValue])
                guard policy == .record else { throw IngestError.brokerLoss(gap) }
                try consumer.restart(partition: partition, at: broker.low, others: pipeline.nextOffset)
            } else if next > broker.high {
                throw IngestError.logAheadOfBroker(partition: partition, nextOffset: next, brokerLogEnd: broker.high)
            } else {
                logger.warning(
                    "offset out of range, but the broker has the offset the log needs: going on from it",
                    ["partition": partition, "asked": asked, "next": next, "broker_log_start": broker.low, "broker_log_end": broker.high])
                try consumer.restart(partition: partition, at: next, others: pipeline.nextOffset)
            }
        }
    }

    /// Cluster mode: drops the logs of partitions this instance is not assigned that
    /// another instance owns and has caught up (`IngestPipeline.drop`). Between batches,
    /// on the ingest thread, so the assignment cannot change meanwhile.
    static func dropOwnedElsewhere(_ pipeline: IngestPipeline, _ consumer: KafkaConsumer, _ ownership: any PartitionOwnershipListener) throws {
        let elsewhere = ownership.ownedAndReadyElsewhere.subtracting(consumer.assignment)
        guard !elsewhere.isEmpty else { return }
        let held = pipeline.partitionsWithLogs.intersection(elsewhere)
        guard !held.isEmpty else { return }
        try pipeline.drop(held.sorted())
    }

    /// Wall-clock time, ms since the epoch.
    private static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }

    /// One batch: what arrives within one poll, topped up from what is already queued, up
    /// to `batchSize` records; then one write and sync per partition, the batch handed to
    /// the projection, and the next offsets committed to Kafka (for lag only).
    /// - Returns: the messages consumed (`onMessage` is told each one's partition).
    @discardableResult
    package static func consumeBatch(
        from consumer: KafkaConsumer, into pipeline: IngestPipeline, batchSize: Int, onMessage: (Int32) -> Void = { _ in }
    ) throws -> Int {
        var batched = 0
        var received = 0
        repeat {
            received = try consumer.poll(maxMessages: batchSize - batched, timeoutMilliseconds: batched == 0 ? 100 : 0) { message in
                try pipeline.accept(
                    partition: message.partition, offset: message.offset, timestamp: message.timestamp, key: message.key,
                    value: message.value)
                onMessage(message.partition)
            }
            batched += received
        } while received > 0 && batched < batchSize
        consumer.commitAsync(try pipeline.commitBatch())
        return batched
    }

    private func publish(_ pipeline: IngestPipeline, _ consumer: KafkaConsumer, recordsPerSecond: Double) {
        var statistics = Statistics(counters: pipeline.counters, recordsPerSecond: recordsPerSecond)
        for partition in consumer.assignment {
            statistics.partitions[partition] = (pipeline.lastOffset(partition), consumer.highWatermark(partition: partition))
        }
        published.withLock { $0 = statistics }
    }
}

extension IngestService {
    /// Registers ingest's metrics: records, events and dead letters (by reason), rate, and
    /// lag per partition (high watermark − next offset the log needs).
    package func registerMetrics(in registry: MetricsRegistry) {
        registry.collect("chatledger_ingest_records_total", help: "Kafka records written to the log (events and dead letters).", kind: .counter) {
            [.init(Double(self.statistics.counters.records))]
        }
        registry.collect("chatledger_ingest_events_total", help: "Valid events written to the log.", kind: .counter) {
            [.init(Double(self.statistics.counters.events))]
        }
        registry.collect("chatledger_ingest_redeliveries_skipped_total", help: "Redelivered Kafka records already in the log.", kind: .counter) {
            [.init(Double(self.statistics.counters.redeliveriesSkipped))]
        }
        registry.collect("chatledger_dead_letters_total", help: "Invalid records kept as dead letters, by reason code.", kind: .counter) {
            self.statistics.counters.deadLettersByReason.sorted { $0.key < $1.key }.map { .init([("reason", $0.key)], Double($0.value)) }
        }
        registry.collect("chatledger_ingest_records_per_second", help: "Records written per second, over the last second.", kind: .gauge) {
            [.init(self.statistics.recordsPerSecond)]
        }
        registry.collect("chatledger_ingest_lag_records", help: "Records on the broker not yet in the log, per assigned partition.", kind: .gauge) {
            self.statistics.partitions.sorted { $0.key < $1.key }.compactMap { partition, progress in
                guard let high = progress.highWatermark else { return nil }
                return .init([("partition", String(partition))], Double(max(0, high - ((progress.lastOffset ?? -1) + 1))))
            }
        }
        registry.collect(
            "chatledger_ingest_records_lost_total",
            help: "Offsets the broker no longer had when ingest asked for them (gap records in the log), per partition.",
            kind: .counter
        ) {
            // Every assigned partition has a sample, 0 until it loses records.
            let statistics = self.statistics
            var lost = statistics.counters.lostRecords
            for partition in statistics.partitions.keys where lost[partition] == nil { lost[partition] = 0 }
            return lost.sorted { $0.key < $1.key }.map { .init([("partition", String($0.key))], Double($0.value)) }
        }
        registry.collect("chatledger_erasures_total", help: "ledger.erased events applied (chatledger erase).", kind: .counter) {
            [.init(Double(self.statistics.counters.erasures))]
        }
        registry.collect(
            "chatledger_redacted_records_total", help: "Log records erasures redacted (values replaced by markers that keep digests).",
            kind: .counter
        ) {
            [.init(Double(self.statistics.counters.redactedRecords))]
        }
        registry.collect(
            "chatledger_unredactable_records_total",
            help: "Records erasures named in version 1/2 segments, which cannot be redacted (retention removes them).", kind: .counter
        ) {
            [.init(Double(self.statistics.counters.unredactableRecords))]
        }
        registry.collect("chatledger_retention_removed_segments_total", help: "Log segments retention removed.", kind: .counter) {
            [.init(Double(self.statistics.counters.retentionRemovedSegments))]
        }
        registry.collect("chatledger_retention_removed_bytes_total", help: "Bytes of log files retention removed.", kind: .counter) {
            [.init(Double(self.statistics.counters.retentionRemovedBytes))]
        }
        registry.collect(
            "chatledger_log_retained_from_offset", help: "The first offset a partition's log holds after retention (its base), per partition.",
            kind: .gauge
        ) {
            self.statistics.counters.retainedFrom.sorted { $0.key < $1.key }.map { .init([("partition", String($0.key))], Double($0.value)) }
        }
        registry.collect(
            "chatledger_partitions_dropped_total",
            help: "Partition logs dropped because another instance owns the partition and has caught up (cluster mode).", kind: .counter
        ) {
            [.init(Double(self.statistics.counters.droppedPartitions))]
        }
        registry.collect("chatledger_ingest_caught_up", help: "1 when every assigned partition has reached its high watermark.", kind: .gauge) {
            [.init(self.isCaughtUp ? 1 : 0)]
        }
    }
}
