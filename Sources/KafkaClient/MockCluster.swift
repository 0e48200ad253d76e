import CRdKafka

/// librdkafka's in-process mock cluster: a real Kafka-protocol broker on loopback, with
/// fault injection. Any Kafka client (kcat, another process) can reach it at
/// `bootstrapServers` while this object lives.
///
/// Its limits matter: it keeps at most 5 MiB or 100,000 message sets per partition and
/// silently drops older ones, and it answers an empty fetch only after the consumer's
/// `fetch.wait.max.ms`. Nothing is kept on disk.
public final class MockCluster: @unchecked Sendable {
    // SAFETY: librdkafka's mock cluster runs on its own thread and its API is safe to
    // call from any thread; both pointers are immutable and freed only in deinit.
    private let host: OpaquePointer
    private let cluster: OpaquePointer

    /// The brokers' addresses, `127.0.0.1:PORT[,…]`.
    public let bootstrapServers: String

    /// Starts a cluster of `brokerCount` brokers and creates `topics` on it.
    /// - Throws: `KafkaError` if librdkafka cannot start it or create a topic.
    public init(brokerCount: Int = 1, topics: [(name: String, partitions: Int)] = []) throws(KafkaError) {
        // The cluster needs a client instance to live in; this one never connects anywhere.
        let conf = try KafkaConfiguration(["log_level": "3"]).makeNative()
        host = try makeClient(RD_KAFKA_PRODUCER, conf)
        guard let cluster = rd_kafka_mock_cluster_new(host, Int32(brokerCount)) else {
            rd_kafka_destroy(host)
            throw .mockCluster("rd_kafka_mock_cluster_new failed")
        }
        self.cluster = cluster
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        for topic in topics {
            try createTopic(topic.name, partitions: topic.partitions)
        }
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(host)
    }

    /// Creates a topic with `partitions` partitions (replication factor 1).
    public func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        let result = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), 1)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .mockCluster(result, "creating topic \(name)") }
    }
}
