#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import KafkaClient
import LedgerSupport
import Synchronization

/// The adapter stage (README, "Real bridges: the adapter stage"): consumes every bridge topic matching a pattern, turns each
/// record into canonical events with a `BridgeAdapter`, and produces them to the canonical
/// topic keyed by `deviceId`, in front of ingest. One dedicated thread runs it until `stop()`.
///
/// **Exactly-once effect across crashes.** Event ids are derived from the source record
/// (`EventIdentity`), offsets are committed only after the producer has delivered
/// everything made from the records before them, so a crash at any moment makes the stage
/// read some records again and produce the same events with the same ids, which the
/// projection ignores. No Kafka transactions are needed, and the log keeps the repeats as
/// the audit trail of what happened.
///
/// **Order across topics.** Records are handed to the producer in the order of the
/// bridge's clock across all partitions (`RecordMerger`), and an event acting on a message
/// (a receipt, a delete, an edit) waits until the stage has produced that message's
/// `message.created` (`MessageDirectory`), which also gives it the message's chat when its
/// record named the chat by a LID or by the account's own id. Without it, the event goes on
/// its own after `holdMilliseconds`, once no record that could hold the message is still to
/// come (`expireHolds`). A held record keeps its partition's committed offset behind it, so
/// a crash loses nothing.
///
/// **Threads.** Parsing, mapping and encoding a poll's records is spread over
/// `adaptThreads` threads (`AdaptWorkers`; pure per record, so the events are the same),
/// while the stage's thread hands on the poll before; the records' bytes are copied out of
/// librdkafka's buffers by the thread that adapts them. Merging, holding and committing
/// stay on the stage's one thread; a producer thread (`StageProducer`) sends what it hands
/// over, in that order.
///
/// **Bad input.** A record the adapter cannot use goes to the dead-letter topic (scrubbed
/// of secrets, with coordinates and reason) and is counted; unknown and ignored events are
/// counted; nothing in a record stops the stage. What does stop it (exit 1, for a
/// supervisor to restart): a fatal Kafka error, or deliveries that failed for good.
package final class AdapterStage: Sendable {
    package struct Configuration: Sendable {
        package var brokers: String
        package var group: String
        /// Topic names or patterns starting with `^`.
        package var sourceTopics: [String]
        /// The canonical topic.
        package var topic: String
        package var deadLetterTopic: String
        /// librdkafka properties for the consumer and the producer.
        package var kafka: KafkaConfiguration
        /// Records taken per poll.
        package var batchSize: Int
        /// How long an event waits for the message it acts on once the stage has read every
        /// source partition to its end (while it catches up, it waits until it has, up to
        /// `maxHoldMilliseconds`).
        package var holdMilliseconds: Int
        package var maxHoldMilliseconds: Int
        /// How long the merger waits for a partition that has unfetched records.
        package var maxIdleMilliseconds: Int
        /// How often delivered progress is committed.
        package var commitEveryMilliseconds: Int
        package var progressEverySeconds: Double
        /// Records queued for ordering at most; beyond, the oldest go regardless.
        package var maxQueuedRecords: Int
        /// Messages whose chat the stage remembers.
        package var directoryCapacity: Int
        /// Threads that parse, map and encode a poll's records (`AdaptWorkers`), the
        /// stage's own included (it takes what the others have not started when it needs
        /// the entries); 1: the stage's thread alone, without overlap.
        package var adaptThreads: Int

        /// The consumer group whose committed offsets are the stage's progress.
        package static let defaultGroup = "chatledger-adapt"
        /// Where records the stage cannot use go.
        package static let defaultDeadLetterTopic = "wa.adapt.dead-letters"
        /// The machine's cores, at most 4.
        package static var defaultAdaptThreads: Int { min(4, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) }

        package init(
            brokers: String, group: String = Self.defaultGroup, sourceTopics: [String], topic: String = DeviceEventsTopic.defaultName,
            deadLetterTopic: String = Self.defaultDeadLetterTopic, kafka: KafkaConfiguration = KafkaConfiguration(), batchSize: Int = 10_000,
            holdMilliseconds: Int = 2_000, maxHoldMilliseconds: Int = 60_000, maxIdleMilliseconds: Int = 500, commitEveryMilliseconds: Int = 1_000,
            progressEverySeconds: Double = 5, maxQueuedRecords: Int = 200_000, directoryCapacity: Int = 500_000,
            adaptThreads: Int = Self.defaultAdaptThreads
        ) {
            self.brokers = brokers
            self.group = group
            self.sourceTopics = sourceTopics
            self.topic = topic
            self.deadLetterTopic = deadLetterTopic
            self.kafka = kafka
            self.batchSize = batchSize
            self.holdMilliseconds = holdMilliseconds
            self.maxHoldMilliseconds = maxHoldMilliseconds
            self.maxIdleMilliseconds = maxIdleMilliseconds
            self.commitEveryMilliseconds = commitEveryMilliseconds
            self.progressEverySeconds = progressEverySeconds
            self.maxQueuedRecords = maxQueuedRecords
            self.directoryCapacity = directoryCapacity
            self.adaptThreads = adaptThreads
        }
    }

    /// What the stage has done, published after every poll (for `/metrics` and tests).
    package struct Statistics: Sendable {
        /// Source records consumed.
        package var records = 0
        /// Canonical events produced, by type.
        package var eventsByType: [String: Int] { eventCounts.byKey }
        var eventCounts = Tally()
        package var deadLettersByReason: [String: Int] = [:]
        /// Parts of records that made no event, by reason (`unknown_event`, `ignored_event`, ...).
        package var skippedByReason: [String: Int] { skipCounts.byKey }
        var skipCounts = Tally()
        /// Source records the broker no longer had when the stage came to them (see `queue`).
        package var sourceRecordsLost = 0
        /// Events waiting for the message they act on.
        package var held = 0
        /// Per assigned source partition: records on the broker not yet adapted.
        package var lag: [TopicPartition: Int64] = [:]
        package var recordsPerSecond = 0.0
        /// Deliveries acknowledged by the broker (events and dead letters).
        package var delivered = 0
        /// Whether every assigned partition has been read to its high watermark.
        package var caughtUp = false
        /// The most adapted records that waited at once in the merger for older records of
        /// other partitions (a backlog fetched one partition's run after another's).
        package var mergerPeak = 0

        package var events: Int { eventsByType.values.reduce(0, +) }
        package var deadLetters: Int { deadLettersByReason.values.reduce(0, +) }
    }

    private let stopping = Atomic<Bool>(false)
    private let published = Mutex(Statistics())

    package init() {}

    /// Asks the stage to hand out what it holds in order, commit and leave the group.
    package func stop() { stopping.store(true, ordering: .releasing) }

    package var statistics: Statistics { published.withLock { $0 } }

    /// Ready (`/readyz`) once partitions are assigned and each has been read to its high watermark.
    package var isCaughtUp: Bool { statistics.caughtUp }

    /// Runs until `stop()`.
    /// - Throws: what stops the stage for good (a fatal Kafka error, failed deliveries).
    package func run(adapter: any BridgeAdapter, configuration: Configuration) throws {
        let loop = try StageLoop(adapter: adapter, configuration: configuration)
        try loop.run(until: { self.stopping.load(ordering: .acquiring) }, publish: { statistics in
            self.published.withLock { $0 = statistics }
        })
    }

    /// Registers the stage's metrics (see `registerMetrics(_:in:)`).
    package func registerMetrics(in registry: MetricsRegistry, format: String) {
        Self.registerMetrics([(format, self)], in: registry)
    }

    /// Registers the metrics of `stages`, each sample labelled with its stage's format
    /// (stages of one format summed): records, events by type, dead letters and skips by
    /// reason, held events, lag per source partition, rate, readiness.
    package static func registerMetrics(_ stages: [(format: String, stage: AdapterStage)], in registry: MetricsRegistry) {
        let formats = Array(Set(stages.map(\.format))).sorted()
        func perFormat(_ value: @escaping @Sendable (Statistics) -> Double) -> @Sendable () -> [MetricsRegistry.Sample] {
            {
                formats.map { format in
                    .init([("format", format)], stages.filter { $0.format == format }.map { value($0.stage.statistics) }.reduce(0, +))
                }
            }
        }
        func byLabel(_ label: String, _ values: @escaping @Sendable (Statistics) -> [String: Int]) -> @Sendable () -> [MetricsRegistry.Sample] {
            {
                formats.flatMap { format -> [MetricsRegistry.Sample] in
                    var sums: [String: Int] = [:]
                    for stage in stages where stage.format == format {
                        for (key, value) in values(stage.stage.statistics) { sums[key, default: 0] += value }
                    }
                    return sums.sorted { $0.key < $1.key }.map { .init([("format", format), (label, $0.key)], Double($0.value)) }
                }
            }
        }
        registry.collect(
            "chatledger_adapt_records_total", help: "Bridge records consumed by the adapter stage.", kind: .counter,
            perFormat { Double($0.records) })
        registry.collect(
            "chatledger_adapt_events_total", help: "Canonical events produced, by type.", kind: .counter, byLabel("type") { $0.eventsByType })
        registry.collect(
            "chatledger_adapt_dead_letters_total", help: "Bridge records sent to the dead-letter topic, by reason.", kind: .counter,
            byLabel("reason") { $0.deadLettersByReason })
        registry.collect(
            "chatledger_adapt_skipped_total", help: "Parts of bridge records that made no event, by reason (unknown_event, ignored_event, ...).",
            kind: .counter, byLabel("reason") { $0.skippedByReason })
        registry.collect(
            "chatledger_adapt_source_records_lost_total",
            help: "Source records gone from the broker before the stage read them (each range also a dead letter, reason source_records_lost).",
            kind: .counter, perFormat { Double($0.sourceRecordsLost) })
        registry.collect(
            "chatledger_adapt_held_events", help: "Events waiting for the message they act on.", kind: .gauge, perFormat { Double($0.held) })
        registry.collect(
            "chatledger_adapt_records_per_second", help: "Bridge records adapted per second, over the last second.", kind: .gauge,
            perFormat { $0.recordsPerSecond })
        registry.collect("chatledger_adapt_lag_records", help: "Records on the broker not yet adapted, per source partition.", kind: .gauge) {
            stages.flatMap { format, stage in
                stage.statistics.lag.sorted { $0.key < $1.key }.map {
                    MetricsRegistry.Sample([("format", format), ("topic", $0.key.topic), ("partition", String($0.key.partition))], Double($0.value))
                }
            }
        }
        registry.collect(
            "chatledger_adapt_caught_up", help: "1 when every assigned source partition is read to its high watermark.", kind: .gauge,
            perFormat { $0.caughtUp ? 1 : 0 })
    }
}

/// Why the stage stopped.
package struct AdapterStageError: Error, CustomStringConvertible {
    package var description: String
}

/// The stage's state, touched only by the thread running it.
private final class StageLoop {
    let adapter: any BridgeAdapter
    let configuration: AdapterStage.Configuration
    let consumer: KafkaGroupConsumer
    let producer: StageProducer
    let workers: AdaptWorkers
    /// Records polled and not yet adapted (`flushPending`), still in librdkafka's buffers.
    var pending: [AdaptWorkers.Input] = []
    let parser = EventParser()
    let logger = Logger(label: "adapt")

    var merger: RecordMerger
    var directory: MessageDirectory
    /// Events waiting for their message, by directory key; their ids in deadline order.
    var held: [Int: Held] = [:]
    var heldByKey: [UInt64: [Int]] = [:]
    var expiry: [Int] = []
    var expiryHead = 0
    var nextHeldId = 0
    /// Offsets of records with held events, per partition, ascending.
    var heldOffsets: [TopicPartition: [Int64]] = [:]
    var committedThrough: [TopicPartition: Int64] = [:]
    /// The newest bridge time of a record handed on: records are handed on in time order,
    /// so a message older than this has been handed on already, unless it was late. Reset
    /// when partitions are revoked: what was not committed is read again, older than it.
    var frontier: Int64 = .min
    var aliasesSeen = Set<UInt64>()
    /// Secrets seen in records (at most `maxKnownSecrets`), scrubbed from every dead letter.
    var knownSecrets = Set<SecretBytes>()
    /// The secret inserted into `knownSecrets` last.
    var lastSecret: [UInt8]?
    static let maxKnownSecrets = 1_000
    var statistics = AdapterStage.Statistics()

    struct Held {
        var adapted: AdaptedEvent
        var bytes: [UInt8]?
        var key: UInt64
        var partition: TopicPartition
        var offset: Int64
        /// The bridge time of its record.
        var time: Int64
        var deadline: ContinuousClock.Instant
        /// When it goes regardless of the stage catching up.
        var lastChance: ContinuousClock.Instant
        var secret: [UInt8]?
    }

    deinit {
        // Records polled and never handed on (the stage stopped in between) go back to
        // librdkafka before the consumer is destroyed, which waits for every one of them.
        workers.finish { _ in }
        for input in pending { input.discard() }
    }

    init(adapter: any BridgeAdapter, configuration: AdapterStage.Configuration) throws {
        self.adapter = adapter
        self.configuration = configuration
        merger = RecordMerger(maxIdle: .milliseconds(configuration.maxIdleMilliseconds))
        workers = AdaptWorkers(adapter: adapter, threads: configuration.adaptThreads)
        directory = MessageDirectory(capacity: configuration.directoryCapacity)
        var producerSettings = KafkaConfiguration(["linger.ms": "5", "message.timeout.ms": "120000"])
        for (key, value) in configuration.kafka.properties where !Self.consumerOnly(key) { producerSettings[key] = value }
        producer = StageProducer(
            try KafkaProducer(bootstrapServers: configuration.brokers, configuration: producerSettings), topic: configuration.topic,
            deadLetterTopic: configuration.deadLetterTopic)
        let box = LoopBox()
        // A committed offset the broker no longer has resumes at the oldest record it keeps,
        // so the records in between are seen missing and reported (`queue`); `latest` would
        // skip records the broker still has, unseen.
        var consumerSettings = configuration.kafka
        if let asked = consumerSettings["auto.offset.reset"], !["earliest", "smallest", "beginning"].contains(asked) {
            Logger(label: "adapt").warning("ignoring auto.offset.reset=\(asked): the stage reads on from the oldest record the broker keeps")
        }
        consumerSettings["auto.offset.reset"] = "earliest"
        consumer = try KafkaGroupConsumer(
            bootstrapServers: configuration.brokers, groupId: configuration.group, subscription: configuration.sourceTopics,
            configuration: consumerSettings,
            onAssigned: { partitions in box.loop?.assigned(partitions) },
            onRevoked: { partitions in box.loop?.revoked(partitions) })
        box.loop = self
    }

    /// librdkafka properties a producer ignores with a warning.
    static func consumerOnly(_ key: String) -> Bool {
        key.hasPrefix("fetch.") || key.hasPrefix("queued.") || key.hasPrefix("group.") || key.hasPrefix("auto.")
            || key.hasPrefix("enable.auto.") || key.hasPrefix("enable.partition.eof")
            || ["session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "partition.assignment.strategy",
                "isolation.level", "max.partition.fetch.bytes", "check.crcs", "coordinator.query.interval.ms"].contains(key)
    }

    /// A secret's bytes, hashed in one pass (an array of bytes hashes byte by byte, and every
    /// mapped record carries its secret through this set).
    struct SecretBytes: Hashable {
        var bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    /// A way back from the consumer's callbacks (which the consumer keeps) without a cycle.
    final class LoopBox {
        weak var loop: StageLoop?
    }

    // MARK: - Loop

    func run(until stopping: () -> Bool, publish: (AdapterStage.Statistics) -> Void) throws {
        var lastCommit = ContinuousClock.now
        var lastProgress = ContinuousClock.now
        var recordsAtProgress = 0
        var rateWindow = (start: ContinuousClock.now, records: 0, perSecond: 0.0)
        var lastPublish = ContinuousClock.now - .seconds(1)
        while !stopping() {
            // Queued or held records, or deliveries to count: the loop comes back soon.
            let waiting = !merger.isEmpty || !held.isEmpty || producer.awaitsDeliveries
            var batched = 0
            var received = 0
            repeat {
                // With a batch being adapted, the loop comes back for it at once.
                let timeout: Int32 = batched > 0 || workers.isBusy ? 0 : (waiting ? 10 : 100)
                received = try consumer.poll(
                    maxMessages: configuration.batchSize - batched, timeoutMilliseconds: timeout,
                    retaining: {
                        pending.append(.message($0))
                        statistics.records += 1
                    })
                batched += received
            } while received > 0 && batched < configuration.batchSize
            // This poll's records are adapted on the helper threads while the last poll's
            // are handed on (the merger waits for a partition whose records are still being
            // adapted, as for one still on the broker).
            workers.start(pending, finishing: { queue($0) })
            pending.removeAll(keepingCapacity: true)
            let now = ContinuousClock.now
            try drain(now: now, force: false)
            // What is left waits for older records of other partitions.
            statistics.mergerPeak = max(statistics.mergerPeak, merger.count)
            try expireHolds(now: now)
            producer.handOver()
            if now - lastCommit >= .milliseconds(configuration.commitEveryMilliseconds) {
                try commit(synchronously: false)
                lastCommit = .now
            }
            let windowSeconds = (now - rateWindow.start) / .seconds(1)
            if windowSeconds >= 1 {
                rateWindow = (now, statistics.records, Double(statistics.records - rateWindow.records) / windowSeconds)
            }
            statistics.recordsPerSecond = rateWindow.perSecond
            // A snapshot reads every assigned partition's watermarks: a few times a second
            // is enough for metrics and readiness, and when the stage has nothing to do.
            if batched == 0 || now - lastPublish >= Self.publishEvery {
                publish(snapshot())
                lastPublish = now
            }
            let elapsed = (now - lastProgress) / .seconds(1)
            if elapsed >= configuration.progressEverySeconds {
                let current = snapshot()
                logger.info(
                    "progress",
                    ["records": current.records, "events": current.events, "dead_letters": current.deadLetters,
                     "skipped": current.skippedByReason.values.reduce(0, +), "held": current.held,
                     "records_per_s": Int(Double(current.records - recordsAtProgress) / elapsed),
                     "lag": current.lag.sorted { $0.key < $1.key }.filter { $0.value > 0 }.map { "\($0.key):\($0.value)" }.joined(separator: ",")])
                lastProgress = now
                recordsAtProgress = current.records
            }
        }
        // Stopping: what is queued goes out in order; held events stay uncommitted (read
        // again at the next start), then everything delivered is committed.
        flushPending()
        try drain(now: .now, force: true)
        try commit(synchronously: true)
        consumer.close()
        producer.close()
        publish(snapshot())
        logger.info("stopped", ["records": statistics.records, "events": statistics.events, "dead_letters": statistics.deadLetters])
    }

    static let publishEvery = Duration.milliseconds(100)

    func snapshot() -> AdapterStage.Statistics {
        var current = statistics
        current.held = held.count
        current.delivered = producer.delivered
        var caughtUp = true
        for partition in consumer.assignment {
            guard let high = consumer.highWatermark(partition) else {
                caughtUp = false
                continue
            }
            let next = merger.firstQueuedOffset(partition) ?? ((merger.lastHandedOut(partition) ?? committedThrough[partition].map { $0 - 1 } ?? -1) + 1)
            let lag = max(0, high - next)
            current.lag[partition] = lag
            if lag > 0 { caughtUp = false }
        }
        // Like ingest: not ready before partitions are assigned.
        current.caughtUp = caughtUp && merger.isEmpty && !workers.isBusy && !consumer.assignment.isEmpty
        return current
    }

    // MARK: - Records in

    /// Adapts every record polled (the batch in flight included) and queues them for
    /// ordering. Called before a rebalance changes the partitions, and when stopping.
    func flushPending() {
        workers.prepare(pending) { queue($0) }
        pending.removeAll(keepingCapacity: true)
    }

    /// Queues an adapted record for ordering. Records its partition skipped before it that
    /// the broker no longer has (its log now starts after them: retention passed while the
    /// stage lagged or was down, records deleted, a size limit) are never silent: counted
    /// (`chatledger_adapt_source_records_lost_total`), logged as an error and written to the
    /// dead-letter topic with their range (reason `source_records_lost`). Offsets skipped
    /// inside the broker's log are no records (transaction markers, compaction) and pass.
    func queue(_ entry: consuming RecordMerger.Entry) {
        let topic = entry.record.topic
        let partition = entry.record.partition
        guard let skipped = merger.append(entry) else { return }
        // Asked of the broker (a rare event): where its log starts says what the gap is.
        let logStart = consumer.logStart(TopicPartition(topic, partition), timeoutMilliseconds: 5_000)
        let lastLost = min(skipped.upperBound, (logStart ?? skipped.upperBound + 1) - 1)
        guard lastLost >= skipped.lowerBound else {
            logger.debug("offsets skipped inside the broker's log (no records there)", ["topic": topic, "partition": partition, "range": "\(skipped)"])
            return
        }
        let lost = Int(lastLost - skipped.lowerBound + 1)
        statistics.sourceRecordsLost += lost
        let known = logStart.map { "the broker's log now starts at \($0)" } ?? "the broker did not say where its log starts"
        let detail = "offsets \(skipped.lowerBound)...\(lastLost) of \(topic)/\(partition) are gone from the broker (\(lost) records; \(known)): "
            + "the stage never read them"
        statistics.deadLettersByReason[Self.sourceRecordsLost, default: 0] += 1
        let letter = DeadLetter(
            format: adapter.format, record: BridgeRecord(topic: topic, partition: partition, offset: skipped.lowerBound, timestamp: -1, value: nil),
            reason: Self.sourceRecordsLost, detail: detail, secret: nil)
        producer.send(.init(destination: .deadLetter(key: letter.key), value: letter.encoded()))
        logger.error(
            "source records lost at the broker", ["topic": topic, "partition": partition, "first_lost_offset": skipped.lowerBound,
                                                  "last_lost_offset": lastLost, "lost_records": lost])
    }

    static let sourceRecordsLost = "source_records_lost"

    func drain(now: ContinuousClock.Instant, force: Bool) throws {
        merger.beginDrain(now: now, highWatermark: { self.consumer.highWatermark($0) })
        while let entry = merger.next(
            now: now, highWatermark: { self.consumer.highWatermark($0) }, force: force || merger.count > configuration.maxQueuedRecords)
        {
            try process(entry, now: now)
        }
    }

    func process(_ entry: RecordMerger.Entry, now: ContinuousClock.Instant) throws {
        let record = entry.record
        frontier = max(frontier, entry.time)
        for reason in entry.skipReasons { statistics.skipCounts.add(reason) }
        switch entry.outcome {
        case .deadLetter(let code, let detail):
            statistics.deadLettersByReason[code, default: 0] += 1
            var secrets = Set(knownSecrets.map(\.bytes))
            if let secret = entry.secret { secrets.insert(secret) }
            let letter = DeadLetter(format: adapter.format, record: record, reason: code, detail: detail, secret: entry.secret)
            var value = letter.encoded()
            var scrubbedDetail = SecretScrubber.scrub(detail, secret: entry.secret)
            // Longest first, so a secret inside another cannot leave a piece of it behind.
            for secret in secrets.sorted(by: { $0.count != $1.count ? $0.count > $1.count : $0.lexicographicallyPrecedes($1) }) {
                value = SecretScrubber.scrub(value, secret: secret)
                scrubbedDetail = SecretScrubber.scrub(scrubbedDetail, secret: secret)
            }
            producer.send(.init(destination: .deadLetter(key: letter.key), value: value))
            logger.warning(
                "dead letter", ["topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": code, "detail": scrubbedDetail])
        case .mapped:
            // Most records repeat the secret of the one before (one instance's token).
            if let secret = entry.secret, secret != lastSecret, knownSecrets.count < Self.maxKnownSecrets {
                knownSecrets.insert(SecretBytes(bytes: secret))
                lastSecret = secret
            }
            for event in entry.events {
                try route(event, record: record, time: entry.time, secret: entry.secret, now: now)
            }
        }
    }

    // MARK: - Events out

    func route(_ prepared: RecordMerger.PreparedEvent, record: BridgeRecord, time: Int64, secret: [UInt8]?, now: ContinuousClock.Instant) throws {
        let key = prepared.directoryKey
        switch prepared.role {
        case .creates(let chatId):
            directory.record(key, chatId: chatId)
            try emit(prepared.deviceId, prepared.type, bytes: prepared.bytes)
            try release(key)
        case .aliases:
            if firstTimeAlias(key) { try emit(prepared.deviceId, prepared.type, bytes: prepared.bytes) }
        case .plain:
            try emit(prepared.deviceId, prepared.type, bytes: prepared.bytes)
        case .actsOn(let adapted):
            if let chat = directory.chat(key) {
                try emitResolved(adapted, bytes: prepared.bytes, chat: chat, secret: secret)
            } else {
                let id = nextHeldId
                nextHeldId += 1
                let partition = TopicPartition(record.topic, record.partition)
                held[id] = Held(
                    adapted: adapted, bytes: prepared.bytes, key: key, partition: partition, offset: record.offset, time: time,
                    deadline: now + .milliseconds(configuration.holdMilliseconds),
                    lastChance: now + .milliseconds(configuration.maxHoldMilliseconds), secret: secret)
                heldByKey[key, default: []].append(id)
                expiry.append(id)
                heldOffsets[partition, default: []].append(record.offset)  // records arrive in offset order per partition
            }
        }
    }

    /// Whether the alias pair filed under `key` has not been sent in this run (counted if it
    /// has). The same pair is taught by many records: once per run is enough (its id is the
    /// pair's, so a repeat would change nothing downstream anyway).
    func firstTimeAlias(_ key: UInt64) -> Bool {
        if aliasesSeen.count > 1_000_000 { aliasesSeen.removeAll() }
        if aliasesSeen.insert(key).inserted { return true }
        statistics.skipCounts.add("alias_already_sent")
        return false
    }

    /// Emits an event whose message is known, in that message's chat when its own was a guess.
    func emitResolved(_ adapted: AdaptedEvent, bytes: [UInt8]?, chat: String, secret: [UInt8]?) throws {
        var event = adapted.event
        guard adapted.chatIsGuess, let guess = event.chatId, guess != chat, !chat.isEmpty else {
            try emit(event.deviceId, event.type, bytes: bytes)
            return
        }
        if !adapted.guessMayBeOwn, WhatsAppID.domain(of: guess) == .lid, WhatsAppID.domain(of: chat) == .phone,
            firstTimeAlias(MessageDirectory.aliasKey(deviceId: event.deviceId, chatId: chat, alias: guess))
        {
            // The record named the chat by the contact's LID: that is a fact worth keeping.
            let alias = Event(
                eventId: EventIdentity.aliasEventId(deviceId: event.deviceId, chatId: chat, alias: guess), deviceId: event.deviceId,
                occurredAt: event.occurredAt, chatId: chat, payload: .contactAliased(ContactAliased(alias: guess)), source: event.source)
            try emit(alias.deviceId, alias.type, bytes: prepared(alias, secret: secret))
        }
        event.chatId = chat
        try emit(event.deviceId, event.type, bytes: prepared(event, secret: secret))
    }

    /// An event made on this thread, encoded as the adapter threads encode theirs.
    func prepared(_ event: Event, secret: [UInt8]?) -> [UInt8]? {
        AdaptWorkers.Preparer.withoutSecret(EventEncoder.encode(event), secret: secret, parser: parser)
    }

    /// Produces `bytes`, the event's canonical form; nil: the record's secret could not be
    /// scrubbed out of it without breaking it (`AdaptWorkers.Preparer.withoutSecret`), so it is skipped.
    func emit(_ deviceId: String, _ type: String, bytes: [UInt8]?) throws {
        guard let value = bytes else {
            statistics.skipCounts.add("secret_in_content")
            return
        }
        producer.send(.init(destination: .event(deviceId: deviceId), value: value))
        statistics.eventCounts.add(type)
    }

    // MARK: - Held events

    func release(_ key: UInt64) throws {
        guard !heldByKey.isEmpty, let ids = heldByKey.removeValue(forKey: key), let chat = directory.chat(key) else { return }
        for id in ids {
            guard let item = held.removeValue(forKey: id) else { continue }
            forgetHeldOffset(item)
            try emitResolved(item.adapted, bytes: item.bytes, chat: chat, secret: item.secret)
        }
    }

    func expireHolds(now: ContinuousClock.Instant) throws {
        // A held event goes out without its message only once no record that could hold
        // the message is still to come: records newer than it have been handed on (they go
        // in time order), or every partition is read to its end. Going out before its
        // message, it would be lost on the projection (a backlog, a restart). Only
        // `maxHoldMilliseconds` bounds the wait.
        var catchingUp: Bool?
        while expiryHead < expiry.count {
            let id = expiry[expiryHead]
            guard let item = held[id] else {
                expiryHead += 1
                continue
            }
            guard item.deadline <= now else { break }
            if item.lastChance > now, frontier <= item.time {
                if catchingUp == nil { catchingUp = merger.isCatchingUp(highWatermark: { consumer.highWatermark($0) }) }
                if catchingUp == true { break }
            }
            expiryHead += 1
            held[id] = nil
            heldByKey[item.key]?.removeAll { $0 == id }
            if heldByKey[item.key]?.isEmpty == true { heldByKey[item.key] = nil }
            forgetHeldOffset(item)
            if item.adapted.dropIfUnresolved {
                statistics.skipCounts.add("chat_unknown")
            } else {
                // The message was created before this run (or never reached the bridge's
                // topics): the record's own chat id it is.
                try emit(item.adapted.event.deviceId, item.adapted.event.type, bytes: item.bytes)
            }
        }
        if expiryHead > 4096, expiryHead * 2 > expiry.count {
            expiry.removeFirst(expiryHead)
            expiryHead = 0
        }
    }

    func forgetHeldOffset(_ item: Held) {
        guard var offsets = heldOffsets[item.partition], let index = offsets.firstIndex(of: item.offset) else { return }
        offsets.remove(at: index)
        heldOffsets[item.partition] = offsets.isEmpty ? nil : offsets
    }

    // MARK: - Progress

    /// Waits for every delivery, then commits per partition the first offset not fully
    /// done: the oldest record with a held event, else the one after the last handed on.
    func commit(synchronously: Bool, only partitions: Set<TopicPartition>? = nil) throws {
        var next: [TopicPartition: Int64] = [:]
        for (partition, last) in merger.handedOut where partitions?.contains(partition) ?? true {
            let offset = min(heldOffsets[partition]?.first ?? Int64.max, last + 1)
            if committedThrough[partition] != offset { next[partition] = offset }
        }
        guard !next.isEmpty else { return }
        // A failed delivery fails this and every later flush (`StageProducer`): nothing is
        // committed after it, even when a rebalance's commit (which only logs) saw it first.
        try producer.flush()
        do {
            try consumer.commit(next, synchronously: synchronously)
            for (partition, offset) in next { committedThrough[partition] = offset }
        } catch {
            logger.warning("offset commit failed (the records will be read again)", ["error": error])
        }
    }

    // MARK: - Rebalances

    func assigned(_ partitions: [TopicPartition]) {
        flushPending()
        let committed = (try? consumer.committed(partitions)) ?? [:]
        for partition in partitions {
            // Read on from the group's committed offset: a first record beyond it may mean
            // the broker no longer has the ones before (`queue`). Without a committed offset
            // (a new group: it starts where the topic's retained records start) or without
            // an answer about it, there is nothing to check against.
            merger.assign(partition, nextOffset: committed[partition], expectedOffset: committed[partition])
            committedThrough[partition] = committed[partition]
        }
    }

    func revoked(_ partitions: [TopicPartition]) {
        flushPending()
        // What was handed on is committed before the partitions go; what was not (queued,
        // held) is read again by their next owner.
        do {
            try commit(synchronously: true, only: Set(partitions))
        } catch {
            logger.error("committing revoked partitions", ["error": error])
        }
        let gone = Set(partitions)
        merger.revoke(partitions)
        // Their records after the committed offsets come again, older than the frontier: an
        // event held for a message among them must wait for it as on the first read, not go
        // out because newer records were handed on before (it would precede its message).
        frontier = .min
        for (id, item) in held where gone.contains(item.partition) {
            held[id] = nil
            heldByKey[item.key]?.removeAll { $0 == id }
        }
        for partition in partitions {
            heldOffsets[partition] = nil
            committedThrough[partition] = nil
        }
    }
}

/// Counts by a key from a small set (event types), in the order first seen: each count
/// finds its key by comparing, not hashing (the stage counts every event it produces, and a
/// type's name is the same string each time, so most comparisons are one identity check).
struct Tally: Sendable {
    private var keys: [String] = []
    private var counts: [Int] = []

    mutating func add(_ key: String) {
        if let index = keys.firstIndex(of: key) {
            counts[index] += 1
        } else {
            keys.append(key)
            counts.append(1)
        }
    }

    var byKey: [String: Int] { Dictionary(uniqueKeysWithValues: zip(keys, counts)) }
}
