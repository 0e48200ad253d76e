import CRdKafka

/// librdkafka's in-process mock cluster: a real Kafka-protocol broker on loopback, with
/// fault injection. Any Kafka client (kcat, another process) can reach it at
/// `bootstrapServers` while this object lives.
///
/// Its limits matter: it keeps at most 5 MiB or 100,000 message sets per partition and
/// silently drops older ones, and it answers an empty fetch only after the consumer's
/// `fetch.wait.max.ms`. Nothing is kept on disk.
package final class MockCluster: @unchecked Sendable {
    // SAFETY: librdkafka's mock cluster runs on its own thread and its API is safe to
    // call from any thread; the host client and the cluster are immutable and freed only
    // with this object (the cluster first).
    private let host: KafkaClientHandle
    private let cluster: OpaquePointer

    /// The brokers' addresses, `127.0.0.1:PORT[,…]`.
    package let bootstrapServers: String
    /// The name librdkafka gives the mock cluster's thread (what `top -H` shows), for
    /// benchmarks that leave the broker's own work out of a client's CPU time.
    package static let threadName = "rdk:mock"

    /// Starts a cluster of `brokerCount` brokers (ids 1...brokerCount) and creates
    /// `topics` on it, each partition replicated on every broker.
    /// - Throws: `KafkaError` if librdkafka cannot start it or create a topic.
    package init(brokerCount: Int = 1, topics: [(name: String, partitions: Int)] = []) throws(KafkaError) {
        // The cluster needs a client instance to live in; this one never connects anywhere.
        host = try KafkaClientHandle(.producer, KafkaConfiguration(["log_level": "3"]))
        guard let cluster = rd_kafka_mock_cluster_new(host.client, Int32(brokerCount)) else {
            throw .mockCluster("rd_kafka_mock_cluster_new failed")
        }
        self.cluster = cluster
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        self.brokerCount = brokerCount
        for topic in topics {
            try createTopic(topic.name, partitions: topic.partitions)
        }
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)  // before its host, which is destroyed with the cluster
    }

    /// Brokers in the cluster.
    package let brokerCount: Int

    /// Creates a topic with `partitions` partitions, replicated on every broker.
    package func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        let result = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(brokerCount))
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .mockCluster(result, "creating topic \(name)") }
    }

    // MARK: - Fault injection

    /// Kafka protocol request types faults can be injected into.
    package enum Request: Int16, Sendable {
        case produce = 0
        case fetch = 1
        case offsetCommit = 8
        case offsetFetch = 9
        case heartbeat = 12
    }

    /// Makes the next `errors.count` requests of a kind fail, each with the next error
    /// code (librdkafka's `rd_kafka_resp_err_t` values, e.g. 6 NOT_LEADER_FOR_PARTITION,
    /// 7 REQUEST_TIMED_OUT, 16 NOT_COORDINATOR).
    package func failNextRequests(_ request: Request, errors: [Int32]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
        codes.withUnsafeBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, request.rawValue, buffer.count, buffer.baseAddress)
        }
    }

    /// Takes a broker down (its connections close, it accepts none) or brings it back.
    package func setBroker(_ broker: Int32, up: Bool) throws(KafkaError) {
        let result = up ? rd_kafka_mock_broker_set_up(cluster, broker) : rd_kafka_mock_broker_set_down(cluster, broker)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .mockCluster(result, "broker \(broker) \(up ? "up" : "down")") }
    }

    /// Moves a partition's leadership to `broker`.
    package func setLeader(topic: String, partition: Int32, broker: Int32) throws(KafkaError) {
        let result = rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .mockCluster(result, "leader of \(topic)/\(partition)") }
    }
}
