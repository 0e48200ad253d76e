import CRdKafka

/// A consumed message whose bytes stay in librdkafka's buffers until `release()`, so that
/// copying them can happen on another thread than the one polling
/// (`KafkaGroupConsumer.poll(maxMessages:timeoutMilliseconds:retaining:)`).
package struct RetainedMessage: @unchecked Sendable {
    // SAFETY: librdkafka lets any thread read a message it handed over and destroy it;
    // whoever holds a `RetainedMessage` is its one owner, releases it once, and touches
    // neither `key` nor `value` after that.
    package let topic: String
    package let partition: Int32
    package let offset: Int64
    /// Kafka's timestamp in ms, -1 when the message has none.
    package let timestamp: Int64
    private let pointer: UnsafeMutablePointer<rd_kafka_message_t>

    init(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) {
        let plain = KafkaConsumer.Message(pointer)
        self.pointer = pointer
        self.topic = topic
        partition = plain.partition
        offset = plain.offset
        timestamp = plain.timestamp
    }

    /// The key's bytes, valid until `release()`.
    package var key: UnsafeRawBufferPointer? {
        pointer.pointee.key.map { UnsafeRawBufferPointer(start: $0, count: pointer.pointee.key_len) }
    }

    /// The value's bytes (nil: a tombstone), valid until `release()`.
    package var value: UnsafeRawBufferPointer? {
        pointer.pointee.payload.map { UnsafeRawBufferPointer(start: $0, count: pointer.pointee.len) }
    }

    /// Gives the message back to librdkafka. Call exactly once.
    package func release() {
        rd_kafka_message_destroy(pointer)
    }
}
