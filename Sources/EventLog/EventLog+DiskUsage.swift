#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

extension EventLog {
    /// Bytes the log's files take, per topic partition (segment and index files, as `stat`
    /// reports them).
    package func bytesOnDisk() -> [(topic: String, partition: Int32, bytes: Int64)] {
        guard let partitions = try? partitions() else { return [] }
        return partitions.map { ($0.topic, $0.partition, bytesOnDisk(topic: $0.topic, partition: $0.partition)) }
    }

    /// Bytes one partition's files take (0 if it has none).
    package func bytesOnDisk(topic: String, partition: Int32) -> Int64 {
        let directory = directory(topic: topic, partition: partition)
        var total: Int64 = 0
        for name in (try? LogFile.list(directory)) ?? [] {
            var info = stat()
            if stat(directory + "/" + name, &info) == 0 { total += Int64(info.st_size) }
        }
        return total
    }

    /// Registers `chatledger_log_bytes` (read from the files when scraped).
    package func registerMetrics(in registry: MetricsRegistry) {
        registry.collect("chatledger_log_bytes", help: "Bytes of event log files on disk, per partition.", kind: .gauge) {
            bytesOnDisk().map { .init([("topic", $0.topic), ("partition", String($0.partition))], Double($0.bytes)) }
        }
    }
}
