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
        guard rename(directory, moved) == 0 else { throw .system(SystemError(call: "rename", errno: errno), path: directory) }
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
            if unlink(entry) != 0 {
                guard errno == EISDIR else { throw .system(SystemError(call: "unlink", errno: errno), path: entry) }
                try removeTree(entry)
            }
        }
        guard rmdir(path) == 0 || errno == ENOENT else { throw .system(SystemError(call: "rmdir", errno: errno), path: path) }
    }
}
