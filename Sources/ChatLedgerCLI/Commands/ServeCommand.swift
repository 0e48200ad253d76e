#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import EventLog
import LedgerSupport
import QueryWorker
import Synchronization

/// `chatledger serve`: the query worker as its own process. It loads the newest
/// checkpoint `ingest` wrote, then follows the event log `ingest` appends to (woken by
/// inotify), folds it into its own projection and serves the API. Ready once it has read
/// everything the log holds. With `--brokers` it also serves the write API, producing to
/// the topic ingest consumes (without, the write routes answer 501).
enum ServeCommand: Command {
    static let spec = CommandSpec(
        name: "serve", synopsis: "serve [--data DIR] [--http ADDR] --keys FILE [--topic T] [--brokers B]",
        summary: "The query worker: follow the log that ingest writes and serve chat lists over HTTP.",
        options: [
            .data, .http, .topic,
            CommandSpec.Option("keys", "FILE", "API keys file (JSON, see README).", required: true),
            CommandSpec.Option("brokers", "B", "Kafka bootstrap servers for the write API (its routes answer 501 without)."),
            CommandSpec.Option("kafka-config", "K=V,...", "Extra librdkafka properties for the write API's producer."),
            IngestOptions.kafkaConfigFile,
            WriteOptions.timeout,
        ] + QueryWorkerOptions.limits)

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let signals = TerminationSignal.install()
        let topic = arguments.string("topic") ?? "wa.device-events"
        let data = arguments.string("data") ?? "./data"
        let configuration = try QueryWorkerOptions.configuration(arguments)
        let keysPath = arguments.string("keys") ?? ""
        let keys = KeyRing(try APIKeys.load(path: keysPath))
        let log = EventLog(dataDirectory: data)
        let loaded = try ProjectionRecovery.load(log: log, topic: topic, checkpoints: CheckpointStore(dataDirectory: data))
        let store = ProjectionStore(loaded.state)
        let gaps = try GapRegister(log: log, topic: topic)
        let follower = LogTail(log: log, topic: topic, store: store, gaps: gaps)
        let metrics = QueryWorkerOptions.metrics(store: store, log: log, gaps: gaps)
        let publisher = try arguments.string("brokers").map { brokers in
            try WriteOptions.publisher(arguments, brokers: brokers, topic: topic, kafka: try IngestOptions.kafkaConfiguration(arguments))
        }
        let api = QueryAPI(
            store: store, keys: keys, metrics: metrics, audit: AuditLog(dataDirectory: data, topic: topic), publisher: publisher,
            isReady: { follower.isCaughtUp },
            source: { SourceStatus(kind: .log, endOffsets: follower.endOffsets) }, gaps: gaps)
        let keyReloader = KeyFileReloader(path: keysPath, ring: keys)
        keyReloader.start(signals: signals, metrics: metrics)
        defer { keyReloader.stop() }
        let (server, url) = try QueryWorkerOptions.start(api, configuration)
        follower.start(onApplied: { server.wake() })
        print("url=\(url)")
        flushStandardOutput()
        Logger(label: "serve").info("serving", ["url": url, "devices": loaded.state.devices.count])
        _ = signals.wait()
        follower.stop()
        server.stop()
        publisher?.close()
        return follower.failed ? 1 : 0
    }
}

/// Follows every partition log of a topic on a dedicated thread and folds new records
/// into the store; new partitions are picked up as they appear.
private final class LogTail: Sendable {
    private let log: EventLog
    private let topic: String
    private let store: ProjectionStore
    /// Gap records met while following are added here (for `/readyz`).
    private let gaps: GapRegister
    private let stopping = Atomic<Bool>(false)
    private let caughtUp = Atomic<Bool>(false)
    private let failure = Atomic<Bool>(false)
    private let readThrough = Mutex<[Int32: Int64]>([:])
    private let done = Semaphore()

    init(log: EventLog, topic: String, store: ProjectionStore, gaps: GapRegister) {
        self.log = log
        self.topic = topic
        self.store = store
        self.gaps = gaps
    }

    var isCaughtUp: Bool { caughtUp.load(ordering: .acquiring) }
    var failed: Bool { failure.load(ordering: .acquiring) }
    /// Per partition, the end of the log as last read (the next offset it will hold).
    var endOffsets: [Int32: Int64] { readThrough.withLock { $0 } }

    func start(onApplied: @escaping @Sendable () -> Void) {
        Thread { [self] in
            defer { done.signal() }
            do {
                try follow(onApplied: onApplied)
            } catch {
                Logger(label: "serve").error("following the log stopped", ["error": error])
                failure.store(true, ordering: .releasing)
            }
        }.start()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        done.wait()
    }

    private func follow(onApplied: @Sendable () -> Void) throws {
        let parser = EventParser()
        let watcher = LogWatcher()
        var followers: [Int32: LogFollower] = [:]
        var lookForPartitions = true
        while !stopping.load(ordering: .acquiring) {
            // New partitions appear rarely: the directory is listed only after an idle round
            // (the topic directory is watched, so a new partition ends the wait).
            if lookForPartitions {
                watcher.watch(log.logDirectory + "/" + topic)
                for (logTopic, partition) in try log.partitions() where logTopic == topic && followers[partition] == nil {
                    let next = (store.appliedOffset(partition: partition) ?? -1) + 1
                    let directory = log.directory(topic: topic, partition: partition)
                    watcher.watch(directory)  // before its first poll, so no append is missed
                    followers[partition] = LogFollower(directory: directory, topic: topic, partition: partition, from: next)
                }
            }
            var applied = 0
            for (partition, follower) in followers {
                applied += try follower.poll { record in
                    let position = LogPosition(partition: partition, offset: record.offset)
                    if record.kind == .event, let value = record.value, let event = try? parser.parse(value) {
                        store.apply(event, at: position, chainHash: record.chainHash)
                    } else if record.kind == .gap {
                        if let gap = LogGap(record) { gaps.add(gap) }
                        store.pass(at: position, chainHash: record.chainHash)
                    } else {
                        store.skip(at: position, chainHash: record.chainHash)
                    }
                }
            }
            lookForPartitions = applied == 0
            readThrough.withLock { $0 = followers.mapValues(\.nextOffset) }
            if applied > 0 {
                onApplied()
                continue
            }
            caughtUp.store(true, ordering: .releasing)
            // Nothing new: sleep until any partition (or the topic directory) changes.
            watcher.waitForChanges(timeoutMilliseconds: 500)
        }
    }
}
