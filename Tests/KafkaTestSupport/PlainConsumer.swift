import CRdKafka

/// A plain librdkafka consumer for tests: assigns every partition of a topic from the
/// beginning (no group rebalancing) and reads until each partition reports its end.
/// Deliberately independent of ChatLedger's own Kafka code, so it can check it.
public final class PlainConsumer {
    /// One consumed message.
    public struct Message: Sendable {
        public var partition: Int32
        public var offset: Int64
        public var key: [UInt8]
        public var value: [UInt8]
        /// Kafka's timestamp, ms.
        public var timestamp: Int64
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let handle: OpaquePointer

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Connects to `bootstrapServers`.
    public init(bootstrapServers: String) throws {
        let conf = rd_kafka_conf_new()
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in [
            ("bootstrap.servers", bootstrapServers), ("group.id", "plain-test-consumer"),
            ("enable.partition.eof", "true"), ("enable.auto.commit", "false"), ("fetch.wait.max.ms", "50"),
            ("log_level", "3"),
        ] {
            guard rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
                throw Failure(description: "config \(key): \(Self.text(errorText))")
            }
        }
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errorText, errorText.count) else {
            throw Failure(description: "rd_kafka_new: \(Self.text(errorText))")
        }
        self.handle = handle
    }

    deinit {
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }

    /// The broker's log start offset and high watermark of one partition, asked of the broker.
    public func watermarks(topic: String, partition: Int32) throws -> (low: Int64, high: Int64) {
        var low: Int64 = -1
        var high: Int64 = -1
        let result = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, 10_000)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw Failure(description: "watermarks of \(topic)/\(partition): \(String(cString: rd_kafka_err2str(result)))")
        }
        return (low, high)
    }

    /// Every message in `topic`'s `partitions` partitions, in offset order per partition.
    /// Ends when every partition has reported end-of-partition; fails after `maxPolls`
    /// empty polls (a stuck broker), never on a timer alone.
    public func readAll(topic: String, partitions: Int, maxEmptyPolls: Int = 600) throws -> [Message] {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in 0..<Int32(partitions) {
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
        }
        let assigned = rd_kafka_assign(handle, list)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw Failure(description: "assign: \(String(cString: rd_kafka_err2str(assigned)))")
        }
        var messages: [Message] = []
        var finished = Set<Int32>()
        var emptyPolls = 0
        while finished.count < partitions {
            guard let message = rd_kafka_consumer_poll(handle, 100) else {
                emptyPolls += 1
                guard emptyPolls < maxEmptyPolls else {
                    throw Failure(description: "no progress after \(emptyPolls) polls; finished \(finished.sorted())")
                }
                continue
            }
            defer { rd_kafka_message_destroy(message) }
            let current = message.pointee
            if current.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                finished.insert(current.partition)
                continue
            }
            guard current.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw Failure(description: "consume: \(String(cString: rd_kafka_err2str(current.err)))")
            }
            finished.remove(current.partition)
            let key = current.key.map { Array(UnsafeRawBufferPointer(start: $0, count: current.key_len)) } ?? []
            let value = current.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: current.len)) } ?? []
            let timestamp = rd_kafka_message_timestamp(message, nil)
            messages.append(Message(partition: current.partition, offset: current.offset, key: key, value: value, timestamp: timestamp))
        }
        return messages
    }
}
