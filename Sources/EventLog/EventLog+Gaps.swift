extension EventLog {
    /// Every gap record of `topic`'s partitions, in partition and offset order.
    ///
    /// Cheap whatever the log's size: a gap record is always the first record of a
    /// version 2 segment, so only segment headers are read, plus the first record of the
    /// few segments that start with a gap. A segment whose gap record cannot be read is
    /// left out (`LogVerifier` reports it).
    /// - Throws: `EventLogError` when a directory cannot be listed or a file read.
    package func gaps(topic: String) throws(EventLogError) -> [LogGap] {
        var found: [LogGap] = []
        for (logTopic, partition) in try partitions() where logTopic == topic {
            let directory = directory(topic: topic, partition: partition)
            for base in try PartitionWriter.segmentBases(in: directory) {
                let path = directory + "/" + LogFormat.segmentFileName(baseOffset: base)
                guard case .scanner(var scanner) = try SegmentScanner.open(path, bufferSize: 4096),
                    LogFormat.startsWithGap(scanner.header.version),
                    case .record(let record, _) = try scanner.next(), record.offset == base, record.partition == partition,
                    let gap = LogGap(record)
                else { continue }
                found.append(gap)
            }
        }
        return found
    }
}
