#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

extension EventLog {
    /// The name prefix of a partition directory being removed (`removePartition`); never a
    /// partition number, so `partitions()` does not list it.
    static let droppedPrefix = ".dropped-"

    /// Removes one partition's log whole, writer closed. First the directory is renamed
    /// out of the topic's listing, and that rename made durable, so a crash leaves either
    /// the whole log or none of it; then its files are deleted. A crash in between leaves
    /// the renamed directory, which the next `removePartition` or `removeDroppedLeftovers`
    /// deletes.
    /// - Returns: the bytes removed (0 if the partition had no log).
    @discardableResult
    package func removePartition(topic: String, partition: Int32) throws(EventLogError) -> Int64 {
        let directory = directory(topic: topic, partition: partition)
        guard access(directory, F_OK) == 0 else { return 0 }
        let bytes = bytesOnDisk(topic: topic, partition: partition)
        let topicDirectory = logDirectory + "/" + topic
        let moved = topicDirectory + "/" + Self.droppedPrefix + String(partition) + "-" + String(getpid()) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        do {
            try SystemCall.run("rename") { rename(directory, moved) }
        } catch {
            throw .system(error, path: directory)
        }
        try LogFile.syncDirectory(topicDirectory)
        try removeDroppedLeftovers(topic: topic)
        return bytes
    }

    /// Deletes what an interrupted `removePartition` left of `topic`'s dropped partitions.
    package func removeDroppedLeftovers(topic: String) throws(EventLogError) {
        let topicDirectory = logDirectory + "/" + topic
        let leftovers = try LogFile.list(topicDirectory).filter { $0.hasPrefix(Self.droppedPrefix) }
        for name in leftovers { try Self.removeTree(topicDirectory + "/" + name) }
        if !leftovers.isEmpty { try LogFile.syncDirectory(topicDirectory) }
    }

    /// Deletes a directory and everything in it.
    private static func removeTree(_ path: String) throws(EventLogError) {
        for name in try LogFile.list(path) {
            let entry = path + "/" + name
            do {
                try SystemCall.run("unlink") { unlink(entry) }
            } catch where error.errno == EISDIR {
                try removeTree(entry)
            } catch {
                throw .system(error, path: entry)
            }
        }
        do {
            try SystemCall.run("rmdir") { rmdir(path) }
        } catch where error.errno == ENOENT {
            return
        } catch {
            throw .system(error, path: path)
        }
    }
}
