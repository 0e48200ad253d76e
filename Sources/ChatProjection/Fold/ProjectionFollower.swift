#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import EventLog
import LedgerSupport
import Synchronization

/// Follows every partition log of a topic while another process appends to it (`serve`
/// following what `ingest` writes), on one named thread, and folds each new record into
/// the store; new partitions are picked up as they appear. Sleeps on inotify between
/// rounds. Caught up once a round finds nothing new.
package final class ProjectionFollower: Service {
    package let serviceName = "follower"
    private let log: EventLog
    private let topic: String
    private let store: ProjectionStore
    /// Gap records met while following are added here (for `/readyz`).
    private let gaps: GapRegister
    private let onApplied = Mutex<@Sendable () -> Void>({})
    private let lifecycle = Mutex<(state: ServiceLifecycle, thread: LedgerThread?)>((.idle, nil))
    private let stopping = Atomic<Bool>(false)
    private let caughtUp = Atomic<Bool>(false)
    private let readThrough = Mutex<[Int32: Int64]>([:])

    /// A follower of `log`'s partitions of `topic` into `store`, from where the store has
    /// applied each partition.
    package init(log: EventLog, topic: String, store: ProjectionStore, gaps: GapRegister) {
        self.log = log
        self.topic = topic
        self.store = store
        self.gaps = gaps
    }

    /// Runs `action` after each round that folded something (the HTTP server's wake, so
    /// parked queries look again). Set it before `start`.
    package func onApplied(_ action: @escaping @Sendable () -> Void) {
        onApplied.withLock { $0 = action }
    }

    /// Whether a round has found nothing new since the follower started.
    package var isCaughtUp: Bool { caughtUp.load(ordering: .acquiring) }
    /// Per partition, the end of the log as last read (the next offset it will hold).
    package var endOffsets: [Int32: Int64] { readThrough.withLock { $0 } }

    /// Starts the following thread; a damaged log ends it and is reported to `onFailure`.
    /// - Throws: `ServiceLifecycle.IllegalTransition` if it was started before.
    package func start(onFailure: @escaping @Sendable (any Error) -> Void) throws {
        let thread = LedgerThread(name: "chatledger-follow") { [self] in
            do {
                try follow()
            } catch {
                onFailure(error)
            }
        }
        try lifecycle.withLock { lifecycle throws(ServiceLifecycle.IllegalTransition) in
            try lifecycle.state.start()
            lifecycle.thread = thread
        }
        thread.start()
    }

    /// Ends the following thread after its current round and joins it.
    package func stop() {
        let running = lifecycle.withLock { lifecycle in
            lifecycle.state.stop() ? lifecycle.thread : nil
        }
        guard let running else { return }
        stopping.store(true, ordering: .releasing)
        running.join()
    }

    private func follow() throws {
        let parser = EventParser()
        let onApplied = self.onApplied.withLock { $0 }
        let watcher = LogWatcher()
        var followers: [Int32: (follower: LogFollower, directory: DirectoryIdentity)] = [:]
        var lookForPartitions = true
        while !stopping.load(ordering: .acquiring) {
            // New partitions appear rarely: the directory is listed only after an idle round
            // (the topic directory is watched, so a new partition ends the wait).
            if lookForPartitions {
                watcher.watch(log.logDirectory + "/" + topic)
                for (logTopic, partition) in try log.partitions() where logTopic == topic && followers[partition] == nil {
                    let next = (store.appliedOffset(partition: partition) ?? -1) + 1
                    let directory = log.directory(topic: topic, partition: partition)
                    guard let identity = DirectoryIdentity(directory) else { continue }  // dropped meanwhile: below
                    watcher.watch(directory)  // before its first poll, so no append is missed
                    followers[partition] = (LogFollower(directory: directory, topic: topic, partition: partition, from: next), identity)
                }
                // What the loaded checkpoint holds of a partition whose log is gone (ingest
                // dropped it before this process followed it) goes too.
                for partition in store.appliedOffsets.keys where followers[partition] == nil {
                    guard DirectoryIdentity(log.directory(topic: topic, partition: partition)) == nil else { continue }
                    drop(partition)
                }
            }
            var applied = 0
            var dropped = false
            for (partition, (follower, identity)) in followers {
                do {
                    applied += try follower.poll { record in
                        if record.kind == .gap, let gap = LogGap(record) { gaps.add(gap) }
                        let stored = StoredRecord(record, parser: parser)
                        store.fold(stored, at: LogPosition(partition: partition, offset: record.offset), chainHash: record.chainHash)
                        if case .event(let event) = stored, case .ledgerErased(let erasure) = event.payload, erasure.scope != .device {
                            try refold(deviceNamed: event.deviceId, partition: partition, through: record.offset)
                        }
                    }
                } catch where DirectoryIdentity(follower.directory) != identity {
                    // Dropped under the read (below); what failed was reading a log being deleted.
                }
                // Ingest dropped the partition (another instance owns it, `IngestPipeline.drop`),
                // perhaps making a new log of it since: what it folded here goes too.
                if DirectoryIdentity(follower.directory) != identity {
                    watcher.forget(follower.directory)
                    followers[partition] = nil
                    drop(partition)
                    dropped = true
                }
            }
            lookForPartitions = applied == 0 || dropped
            readThrough.withLock { $0 = followers.mapValues(\.follower.nextOffset) }
            if applied > 0 {
                onApplied()
                continue
            }
            caughtUp.store(true, ordering: .releasing)
            // Nothing new: sleep until any partition (or the topic directory) changes.
            watcher.waitForChanges(timeoutMilliseconds: 500)
        }
    }

    /// Takes a partition whose log ingest dropped (another instance owns it) out of the store.
    private func drop(_ partition: Int32) {
        let devices = store.dropPartition(partition)
        gaps.remove(partition: partition)
        Logger(label: "follower").notice("partition log dropped by ingest: its devices removed", ["partition": partition, "devices": devices])
    }

    /// After a chat or contact erasure folded at `offset`: its device folded again from the
    /// log as ingest does (`IngestPipeline`'s refold), so this process answers what ingest
    /// holds, version included; the version moving tells caches and `changes` streams.
    /// Ingest may not have redacted the log yet: `ErasureRefold` leaves out what the
    /// erasure names either way. Not possible once retention removed the log's start,
    /// where ingest keeps the fold's drop too.
    private func refold(deviceNamed digestName: String, partition: Int32, through offset: Int64) throws {
        guard let deviceId = store.deviceId(named: digestName), try log.retentionBase(topic: topic, partition: partition) == nil else { return }
        let device = try ErasureRefold.device(deviceId, log: log, topic: topic, partition: partition, through: offset)
        store.replaceDevice(deviceId, with: device)
    }
}

/// Which directory a path names (device and inode), nil if there is none: a partition's
/// log deleted and made again is another directory.
struct DirectoryIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    init?(_ path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}
