#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport
import QueryWorker
import Synchronization

/// Reloads the keys file into a `KeyRing` on SIGHUP and whenever the file changes, so a
/// leaked key is revoked without a restart. A file that does not load (unreadable,
/// invalid JSON, a bad entry) leaves the keys in force and logs why; keys are never
/// logged.
///
/// Changes are found by `stat` every 250 ms (device, inode, size, modification and change
/// time of the path, following symlinks) rather than inotify: Kubernetes updates a mounted Secret
/// by swapping a `..data` symlink, which an inotify watch on the file never sees, and
/// editors replace files by rename. A check costs one system call.
///
/// It runs as a `ThreadService` ("keys", thread `chatledger-keys`; `service(...)`), so it
/// starts, stops and joins with the other services of `run` and `serve`.
final class KeyFileReloader: Sendable {
    private let path: String
    private let ring: KeyRing
    private let logger = Logger(label: "keys")
    private let hangup = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let failures = Atomic<Int>(0)
    static let checkInterval: Duration = .milliseconds(250)

    /// The file as it was before the keys in force were read from it: a change after that
    /// (while the server starts, or before the thread first looks) is still a change.
    private let fingerprintAtLoad: [Int]?

    private init(path: String, ring: KeyRing, fingerprintAtLoad: [Int]?) {
        self.path = path
        self.ring = ring
        self.fingerprintAtLoad = fingerprintAtLoad
    }

    /// The keys file's keys, and the file's fingerprint taken just before reading it, for
    /// `service(path:ring:fingerprintAtLoad:signals:metrics:)`.
    /// - Throws: what `APIKeys.load` throws.
    static func load(path: String) throws -> (keys: APIKeys, fingerprint: [Int]?) {
        let fingerprint = Self.fingerprint(path)
        return (try APIKeys.load(path: path), fingerprint)
    }

    /// A service reloading `path` into `ring` on its own thread: on each SIGHUP `signals`
    /// delivers and whenever the file changes; its counters go to `metrics`. It never fails
    /// once started (a bad file keeps the keys in force); `stop` joins its thread.
    /// - Parameter fingerprintAtLoad: from `load(path:)`, which read the keys `ring` holds.
    static func service(path: String, ring: KeyRing, fingerprintAtLoad: [Int]?, signals: TerminationSignal, metrics: MetricsRegistry?) -> ThreadService {
        let reloader = KeyFileReloader(path: path, ring: ring, fingerprintAtLoad: fingerprintAtLoad)
        signals.onHangup { reloader.hangup.store(true, ordering: .releasing) }
        metrics?.collect("chatledger_keys_file_generation", help: "Key sets in force since start: 1, plus one per reload of the keys file.", kind: .gauge) {
            [ring] in [.init(Double(ring.generation))]
        }
        metrics?.collect("chatledger_keys_file_reload_failures_total", help: "Reloads of the keys file refused (the previous keys stayed).", kind: .counter) {
            [reloader] in [.init(Double(reloader.failures.load(ordering: .relaxed)))]
        }
        return ThreadService(name: "keys", threadName: "chatledger-keys", halt: { reloader.stopping.store(true, ordering: .releasing) }) {
            reloader.watch()
        }
    }

    private func watch() {
        var seen = fingerprintAtLoad
        while !stopping.load(ordering: .acquiring) {
            let (seconds, attoseconds) = Self.checkInterval.components
            usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
            let now = Self.fingerprint(path)
            let signalled = hangup.exchange(false, ordering: .acquiringAndReleasing)
            guard signalled || now != seen else { continue }
            seen = now
            reload(reason: signalled ? "SIGHUP" : "file changed")
        }
    }

    private func reload(reason: String) {
        do {
            let keys = try APIKeys.load(path: path)
            let generation = ring.replace(with: keys)
            logger.info("keys file reloaded", ["path": path, "trigger": reason, "generation": generation])
        } catch {
            failures.add(1, ordering: .relaxed)
            logger.warning("keys file not reloaded; the previous keys stay in force", ["path": path, "trigger": reason, "error": "\(error)"])
        }
    }

    /// What identifies the file's current content cheaply; nil while it cannot be read.
    private static func fingerprint(_ path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        // The change time too: an edit that keeps the size and puts the modification time
        // back (`touch -d`, some sync tools) still moves it.
        return [
            Int(info.st_dev), Int(info.st_ino), Int(info.st_size), info.st_mtim.tv_sec, info.st_mtim.tv_nsec, info.st_ctim.tv_sec,
            info.st_ctim.tv_nsec,
        ]
    }
}
