import CRdKafka

/// Reads and writes a consumer group's committed offsets without joining the group.
///
/// For the adapter's crash test: librdkafka 2.0.2's mock keeps a SIGKILLed member in its
/// group and, at each election, marks every member active, so a killed member can keep
/// a group rebalancing for a long time. The test therefore gives each restarted stage a
/// fresh group holding exactly the offsets the killed one had committed: the stage resumes
/// from committed offsets as it would after a restart in the same group.
public enum GroupOffsets {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private static func client(_ brokers: String, group: String) throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in [("bootstrap.servers", brokers), ("group.id", group), ("enable.auto.commit", "false"), ("log_level", "3")] {
            guard rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
                throw Failure(description: "config \(key)")
            }
        }
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errorText, errorText.count) else {
            throw Failure(description: "rd_kafka_new")
        }
        return handle
    }

    /// The group's committed offsets of those of `partitions` (topic, partition) it has one for.
    public static func committed(brokers: String, group: String, partitions: [(String, Int32)]) throws -> [(topic: String, partition: Int32, offset: Int64)] {
        let consumer = try client(brokers, group: group)
        defer { rd_kafka_destroy(consumer) }
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (topic, partition) in partitions { rd_kafka_topic_partition_list_add(list, topic, partition) }
        let read = rd_kafka_committed(consumer, list, 10_000)
        guard read == RD_KAFKA_RESP_ERR_NO_ERROR else { throw Failure(description: "committed: \(String(cString: rd_kafka_err2str(read)))") }
        return UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)).filter { $0.offset >= 0 }.map {
            (String(cString: $0.topic), $0.partition, $0.offset)
        }
    }

    /// How many of `partitions` (topic, partition) the group has committed an offset for.
    public static func committedCount(brokers: String, group: String, partitions: [(String, Int32)]) throws -> Int {
        try committed(brokers: brokers, group: group, partitions: partitions).count
    }

    /// Copies `from`'s committed offsets of `partitions` (topic, partition) to the group `to`.
    /// - Returns: how many partitions had a committed offset.
    @discardableResult
    public static func copy(brokers: String, from: String, to: String, partitions: [(String, Int32)]) throws -> Int {
        let offsets = try committed(brokers: brokers, group: from, partitions: partitions)
        guard !offsets.isEmpty else { return 0 }
        let committed = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        defer { rd_kafka_topic_partition_list_destroy(committed) }
        for (topic, partition, offset) in offsets {
            rd_kafka_topic_partition_list_add(committed, topic, partition).pointee.offset = offset
        }
        let target = try client(brokers, group: to)
        defer { rd_kafka_destroy(target) }
        let written = rd_kafka_commit(target, committed, 0)
        guard written == RD_KAFKA_RESP_ERR_NO_ERROR else { throw Failure(description: "commit: \(String(cString: rd_kafka_err2str(written)))") }
        return Int(committed.pointee.cnt)
    }
}
