/// The event log of a data directory: one log per Kafka topic-partition under
/// `DATA/log/<topic>/<partition>/` (format in `schemas/event-log.md`).
package struct EventLog: Sendable {
    /// The data directory (`--data`).
    package let dataDirectory: String

    package init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// Where the partition logs live.
    package var logDirectory: String { dataDirectory + "/log" }

    /// The directory of one partition's log.
    package func directory(topic: String, partition: Int32) -> String {
        logDirectory + "/" + topic + "/" + String(partition)
    }

    /// Every topic-partition that has a log, sorted.
    package func partitions() throws(EventLogError) -> [(topic: String, partition: Int32)] {
        var found: [(topic: String, partition: Int32)] = []
        for topic in try LogFile.list(logDirectory).sorted() {
            for name in try LogFile.list(logDirectory + "/" + topic) {
                if let partition = Int32(name), partition >= 0 { found.append((topic, partition)) }
            }
        }
        return found.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    /// Opens one partition's log for appending, recovering it first.
    package func openWriter(topic: String, partition: Int32, options: PartitionWriter.Options = .init()) throws(EventLogError) -> PartitionWriter {
        try PartitionWriter(directory: directory(topic: topic, partition: partition), topic: topic, partition: partition, options: options)
    }

    /// A reader of one partition's log.
    package func reader(topic: String, partition: Int32) -> PartitionReader {
        PartitionReader(directory: directory(topic: topic, partition: partition), topic: topic, partition: partition)
    }
}
