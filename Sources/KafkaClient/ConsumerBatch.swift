import CRdKafka

/// The batch both consumers take from librdkafka per poll, reused between polls.
///
/// `rd_kafka_consume_batch_queue` waits out its whole timeout unless it can fill the
/// array, so it is only asked for what is queued already (timeout 0); waiting is done for
/// one message, which returns as soon as anything arrives, and what came with it is taken
/// too. Used from the consumer's one thread.
struct ConsumerBatch {
    private var messages: [UnsafeMutablePointer<rd_kafka_message_t>?] = []
    private var count = 0

    /// Takes up to `maxMessages` (at least 1) messages; returns how many.
    mutating func fill(
        queue: OpaquePointer?, handle: OpaquePointer?, maxMessages: Int, timeoutMilliseconds: Int32
    ) -> Int {
        if messages.count < maxMessages { messages = .init(repeating: nil, count: maxMessages) }
        count = messages.withUnsafeMutableBufferPointer { buffer in
            max(0, rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress, maxMessages))  // -1: an error, none taken
        }
        if count == 0, timeoutMilliseconds > 0, let first = rd_kafka_consumer_poll(handle, timeoutMilliseconds) {
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
        let taken = count
        count = 0
        defer {
            for index in 0..<taken { rd_kafka_message_destroy(messages[index]) }
        }
        for index in 0..<taken {
            guard let pointer = messages[index] else { continue }
            try body(pointer)
        }
    }
}

/// Destroys a consumer's client and its queue: the one teardown both consumers share.
/// After a fatal error librdkafka 2.0's consumer never finishes leaving the group (a plain
/// destroy spins its main thread and never returns, found by `KafkaConsumerTests`), so the
/// group is then left to the session timeout instead.
func destroyConsumer(_ handle: OpaquePointer, queue: OpaquePointer?, afterFatalError: Bool) {
    rd_kafka_queue_destroy(queue)
    if afterFatalError {
        rd_kafka_destroy_flags(handle, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    } else {
        rd_kafka_destroy(handle)
    }
}

/// Logs an error librdkafka reports to a consumer. A refused login (SASL) or TLS handshake
/// never heals by retrying (librdkafka would reconnect forever), so it is returned: the
/// consumer keeps the first one and fails with it at its next poll.
func consumerError(_ error: Int32, _ reason: UnsafePointer<CChar>?) -> KafkaError? {
    let code = rd_kafka_resp_err_t(rawValue: error)
    let text = reason.map { String(cString: $0) } ?? ""
    librdkafkaLogger.warning("kafka error", ["error": KafkaError.describe(code), "reason": text])
    guard code == RD_KAFKA_RESP_ERR__AUTHENTICATION || code == RD_KAFKA_RESP_ERR__SSL else { return nil }
    return .authentication(error, KafkaError.describe(code) + ": " + text)
}
