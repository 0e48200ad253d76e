import CRdKafka
import LedgerSupport

/// A consumer of chosen partitions of one topic, without a group (cluster mode's standby
/// replicas): the caller says which partitions to read and from where, and may change that
/// at any time. Nothing is committed. Used from one thread at a time (`assign` and `poll`
/// may alternate between threads under the caller's lock).
package final class KafkaAssignedConsumer {
    package let topic: String
    /// The partitions assigned, each with the offset it was assigned at.
    package private(set) var assignment: [Int32: Int64] = [:]
    private let handle: KafkaClientHandle
    private var batch = ConsumerBatch()
    private var failure: KafkaError?
    private let logger = Logger(label: "standby-consumer")

    /// Connects a group-less consumer of `topic` that reads nothing until `assign`.
    ///
    /// Of `configuration`, the group's settings (`KafkaConfiguration.isGroupSetting`) and
    /// `auto.offset.reset` are left out: an offset the broker no longer has is reported
    /// (`poll`'s `outOfRange`), never skipped.
    /// - Throws: `KafkaError` if librdkafka refuses the configuration.
    package init(bootstrapServers: String, topic: String, configuration: KafkaConfiguration = KafkaConfiguration()) throws(KafkaError) {
        self.topic = topic
        let settings = KafkaConfiguration.client(
            bootstrapServers: bootstrapServers,
            defaults: [
                "group.id": "chatledger-standby-reader", "enable.auto.commit": "false", "enable.auto.offset.store": "false",
                "enable.partition.eof": "false", "auto.offset.reset": "error",
            ],
            overrides: configuration, excluding: { KafkaConfiguration.isGroupSetting($0) || $0 == "auto.offset.reset" })
        handle = try KafkaClientHandle(.consumer, settings)
    }

    deinit {
        rd_kafka_assign(handle.client, nil)
    }

    /// Reads exactly `partitions` from here on: those not assigned yet from their offset,
    /// those already assigned on from where they are (their offset here is not applied);
    /// what is fetched but not yet polled for a partition dropped is discarded.
    ///
    /// Changes are incremental (`rd_kafka_incremental_unassign`, then `_assign`), never a
    /// whole new assignment: `rd_kafka_assign` stops every partition and starts them again,
    /// and librdkafka 2.0.2 aborts the process when assignments follow one another before
    /// the previous stops are done (`rd_kafka_assignment_partition_stopped: Assertion
    /// rktp->rktp_started`, librdkafka issue #5573), which a standby following a cluster
    /// that is forming did, one partition at a time.
    /// - Throws: `KafkaError` if librdkafka refuses the change.
    package func assign(_ partitions: [Int32: Int64]) throws(KafkaError) {
        let removed = assignment.keys.filter { partitions[$0] == nil }.sorted()
        let added = partitions.filter { assignment[$0.key] == nil }.sorted { $0.key < $1.key }
        if !removed.isEmpty {
            try change(removed.map { ($0, nil) }, rd_kafka_incremental_unassign, "unassign")
            for partition in removed { assignment[partition] = nil }
        }
        if !added.isEmpty {
            try change(added.map { ($0.key, $0.value) }, rd_kafka_incremental_assign, "assign")
            for (partition, offset) in added { assignment[partition] = offset }
        }
    }

    /// One incremental change of the assignment: `partitions` (with their offsets when assigned).
    private func change(
        _ partitions: [(partition: Int32, offset: Int64?)],
        _ apply: (OpaquePointer?, UnsafePointer<rd_kafka_topic_partition_list_t>?) -> OpaquePointer?, _ what: String
    ) throws(KafkaError) {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in partitions {
            let entry = rd_kafka_topic_partition_list_add(list, topic, partition)
            if let offset { entry?.pointee.offset = offset }
        }
        if let error = apply(handle.client, list) { throw .assignment(error, "\(what) \(topic)") }
    }

    /// Waits up to `timeoutMilliseconds` for messages and hands up to `maxMessages` to
    /// `body`, in order per partition. Errors librdkafka retries (an offset out of range, a
    /// broker going away) are returned or logged, not thrown: the caller decides what they
    /// mean.
    /// - Returns: the messages handed over, and the partitions reported out of range.
    /// - Throws: `KafkaError` when the cluster refused the login or the TLS handshake, or
    ///   librdkafka reported a fatal error (then at every later poll too); what `body` throws.
    package func poll(
        maxMessages: Int, timeoutMilliseconds: Int32, _ body: (KafkaConsumer.Message) throws -> Void
    ) throws -> (delivered: Int, outOfRange: [Int32]) {
        if let failure { throw failure }
        var delivered = 0
        var outOfRange: [Int32] = []
        let count = batch.fill(handle, maxMessages: maxMessages, timeoutMilliseconds: timeoutMilliseconds)
        guard count > 0 else {
            failure = handle.failure
            if let failure { throw failure }
            return (0, [])
        }
        try batch.drain { pointer in
            let message = pointer.pointee
            guard message.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if message.err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE || message.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
                    outOfRange.append(message.partition)
                } else if message.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    logger.debug("standby read", ["error": KafkaError.describe(message.err)])
                }
                return
            }
            try body(KafkaConsumer.Message(pointer))
            delivered += 1
        }
        return (delivered, outOfRange)
    }
}
