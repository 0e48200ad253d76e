import CRdKafka

/// The batch every consumer takes from librdkafka per poll, reused between polls.
///
/// `rd_kafka_consume_batch_queue` waits out its whole timeout unless it can fill the
/// array, so it is only asked for what is queued already (timeout 0); waiting is done for
/// one message, which returns as soon as anything arrives, and what came with it is taken
/// too. Used from the consumer's one thread.
struct ConsumerBatch {
    private var messages: [UnsafeMutablePointer<rd_kafka_message_t>?] = []
    private var count = 0

    /// Takes up to `maxMessages` (at least 1) messages; returns how many.
    mutating func fill(_ client: KafkaClientHandle, maxMessages: Int, timeoutMilliseconds: Int32) -> Int {
        let queue = client.consumerQueue
        if messages.count < maxMessages { messages = .init(repeating: nil, count: maxMessages) }
        count = messages.withUnsafeMutableBufferPointer { buffer in
            max(0, rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress, maxMessages))  // -1: an error, none taken
        }
        if count == 0, timeoutMilliseconds > 0, let first = rd_kafka_consumer_poll(client.client, timeoutMilliseconds) {
            messages[0] = first
            count = 1 + messages.withUnsafeMutableBufferPointer { buffer in
                max(0, rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress! + 1, maxMessages - 1))
            }
        }
        return count
    }

    /// Hands each message taken by `fill` to `body`, in order, and destroys every one of
    /// them afterwards (also when `body` throws).
    mutating func drain(_ body: (UnsafeMutablePointer<rd_kafka_message_t>) throws -> Void) rethrows {
        try drain(handingOver: { pointer in
            try body(pointer)
            return false
        })
    }

    /// `drain`, except that a message for which `body` returns true is handed over: the
    /// caller destroys it (`rd_kafka_message_destroy`, from any thread).
    mutating func drain(handingOver body: (UnsafeMutablePointer<rd_kafka_message_t>) throws -> Bool) rethrows {
        let taken = count
        count = 0
        defer {
            for index in 0..<taken {
                if let pointer = messages[index] { rd_kafka_message_destroy(pointer) }
                messages[index] = nil
            }
        }
        for index in 0..<taken {
            guard let pointer = messages[index] else { continue }
            if try body(pointer) { messages[index] = nil }
        }
    }
}

extension KafkaConsumer.Message {
    /// The message librdkafka handed over at `pointer` (valid while it is).
    init(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) {
        let message = pointer.pointee
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        // librdkafka finds the timestamp from the message's address (it lives in an
        // enclosing struct), so it must get the original pointer, never a copy.
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        self.init(
            partition: message.partition, offset: message.offset, timestamp: timestamp,
            key: message.key.map { UnsafeRawBufferPointer(start: $0, count: message.key_len) },
            value: message.payload.map { UnsafeRawBufferPointer(start: $0, count: message.len) })
    }
}
