import CRdKafka
import LedgerSupport
import Synchronization

/// One librdkafka client (`rd_kafka_t`), built in the one place every client of this module
/// is built: producers and consumers, with a group or without, and the mock cluster's host.
///
/// Building it applies the settings (`KafkaConfiguration.makeNative`, which names a refused
/// property and never its value) and installs the callbacks every client has: librdkafka's
/// log lines into our log, and its errors, where a refused login (SASL) or TLS handshake is
/// kept (`refusal`) so the owner can fail with it instead of letting librdkafka retry
/// forever. A consumer's messages arrive on one queue (`consumerQueue`); a producer may have
/// its delivery reports handed to `onDelivery`; a group consumer its rebalances to a
/// `KafkaRebalanceHandler`. The handle is destroyed with its owner (after the owner's own
/// `deinit` has destroyed its topic handles, as librdkafka requires).
final class KafkaClientHandle {
    /// What a client does.
    enum Role {
        case producer
        /// A consumer: its messages, rebalances and errors are served through `consumerQueue`.
        case consumer
    }

    /// Called with each delivery report, on the thread serving the producer's `rd_kafka_poll`.
    typealias DeliveryHandler = @Sendable (UnsafePointer<rd_kafka_message_t>) -> Void

    /// The client.
    let client: OpaquePointer
    /// A consumer's queue (messages, rebalances, errors); nil for a producer.
    let consumerQueue: OpaquePointer?
    private let role: Role
    /// What the C callbacks reach through the client's opaque pointer; lives as long as the client.
    private let callbacks: KafkaClientCallbacks

    /// Builds a client from `settings`.
    /// - Parameters:
    ///   - onDelivery: a producer's delivery reports (`dr_msg_cb`); none when nil.
    ///   - rebalancing: a group consumer that serves its own rebalances (see `rebalanceHandler`).
    /// - Throws: `KafkaError` naming the property librdkafka refused, or why it could not create the client.
    init(_ role: Role, _ settings: KafkaConfiguration, onDelivery: DeliveryHandler? = nil, rebalancing: Bool = false) throws(KafkaError) {
        let conf = try settings.makeNative()
        let callbacks = KafkaClientCallbacks(onDelivery: onDelivery)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(callbacks).toOpaque())
        rd_kafka_conf_set_log_cb(conf) { _, level, facility, message in
            let text = KafkaConfiguration.withoutUnprintableValues(message.map { String(cString: $0) } ?? "")
            let facilityText = facility.map { String(cString: $0) } ?? ""
            librdkafkaLogger.log(logLevel(syslog: level), text, ["facility": facilityText])
        }
        rd_kafka_conf_set_error_cb(conf) { _, error, reason, opaque in
            guard let refused = clientError(error, reason), let opaque else { return }
            Unmanaged<KafkaClientCallbacks>.fromOpaque(opaque).takeUnretainedValue().refusal.withLock {
                if $0 == nil { $0 = refused }
            }
        }
        if onDelivery != nil {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let opaque else { return }
                Unmanaged<KafkaClientCallbacks>.fromOpaque(opaque).takeUnretainedValue().onDelivery?(message)
            }
        }
        if rebalancing {
            rd_kafka_conf_set_rebalance_cb(conf) { client, error, partitions, opaque in
                guard let client, let opaque, let partitions else { return }
                if let handler = Unmanaged<KafkaClientCallbacks>.fromOpaque(opaque).takeUnretainedValue().rebalanceHandler {
                    handler.rebalance(error, partitions)
                } else {
                    // The owner is being deinitialized (its weak reference is already nil)
                    // and its close is leaving the group: librdkafka waits until the
                    // partitions are given up, which the owner can no longer do. Without
                    // this, a close reached from deinit (after `ingest` failed) blocked forever.
                    KafkaClientHandle.giveUp(client, partitions)
                }
            }
        }
        var errorText = [CChar](repeating: 0, count: 512)
        guard let client = rd_kafka_new(role == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            let reason = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .clientCreation(KafkaConfiguration.withoutUnprintableValues(reason))
        }
        self.client = client
        self.role = role
        self.callbacks = callbacks
        if role == .consumer {
            rd_kafka_poll_set_consumer(client)
            consumerQueue = rd_kafka_queue_get_consumer(client)
        } else {
            consumerQueue = nil
        }
    }

    /// Destroys the client. After a fatal error librdkafka 2.0's consumer never finishes
    /// leaving the group (a plain destroy spins its main thread and never returns, found by
    /// `KafkaConsumerTests`), so the group is then left to the session timeout instead.
    deinit {
        if let consumerQueue { rd_kafka_queue_destroy(consumerQueue) }
        if role == .consumer, isFatal {
            rd_kafka_destroy_flags(client, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
        } else {
            rd_kafka_destroy(client)
        }
    }

    /// Where a group consumer's rebalances go (held weakly: while it is nil, partitions are
    /// given up without it). Set once the owner exists; rebalances are served only while
    /// it polls or closes.
    var rebalanceHandler: (any KafkaRebalanceHandler)? {
        get { callbacks.rebalanceHandler }
        set { callbacks.rebalanceHandler = newValue }
    }

    /// The first refused login or TLS handshake librdkafka reported, if any.
    var refusal: KafkaError? { callbacks.refusal.withLock { $0 } }

    /// Whether librdkafka reported a fatal error: the client is unusable from then on.
    var isFatal: Bool {
        var terminator: CChar = 0  // room for the reason's NUL only: the code is what is asked
        return rd_kafka_fatal_error(client, &terminator, 1) != RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// The fatal error librdkafka reported, if any.
    var fatalError: KafkaError? {
        var text = [CChar](repeating: 0, count: 512)
        let fatal = rd_kafka_fatal_error(client, &text, text.count)
        guard fatal != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return .fatal(fatal, String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// What ends a consumer for good: a fatal error, else a refused login or handshake.
    var failure: KafkaError? { fatalError ?? refusal }

    /// Where the broker's log of `topic`/`partition` starts and ends now, asked of the broker.
    /// - Throws: `KafkaError` when it does not answer within `timeoutMilliseconds`.
    func watermarks(topic: String, partition: Int32, timeoutMilliseconds: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = -1
        var high: Int64 = -1
        let result = rd_kafka_query_watermark_offsets(client, topic, partition, &low, &high, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw .query(result, "watermarks of \(topic)/\(partition)") }
        return (low, high)
    }

    /// Gives up `partitions` (or the whole assignment) without the owner.
    private static func giveUp(_ client: OpaquePointer, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        if String(cString: rd_kafka_rebalance_protocol(client)) == "COOPERATIVE" {
            if let error = rd_kafka_incremental_unassign(client, partitions) { rd_kafka_error_destroy(error) }
        } else {
            rd_kafka_assign(client, nil)
        }
    }
}

/// A group consumer that serves its own rebalances (called on the thread that polls or closes it).
protocol KafkaRebalanceHandler: AnyObject {
    /// Partitions assigned (`RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS`), revoked
    /// (`…__REVOKE_PARTITIONS`), or a failed rebalance; the handler assigns or unassigns.
    func rebalance(_ error: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>)
}

/// What a client's C callbacks hold on to (its opaque pointer).
private final class KafkaClientCallbacks {
    /// A refused login or TLS handshake, set from librdkafka's thread (see `clientError`).
    let refusal = Mutex<KafkaError?>(nil)
    let onDelivery: KafkaClientHandle.DeliveryHandler?
    /// Read and written only on the owner's polling thread (rebalances are served there).
    weak var rebalanceHandler: (any KafkaRebalanceHandler)?

    init(onDelivery: KafkaClientHandle.DeliveryHandler?) { self.onDelivery = onDelivery }
}

/// Logs an error librdkafka reports to a client. A refused login (SASL) or TLS handshake
/// never heals by retrying (librdkafka would reconnect forever), so it is returned: the
/// client keeps the first one and its owner fails with it.
private func clientError(_ error: Int32, _ reason: UnsafePointer<CChar>?) -> KafkaError? {
    let code = rd_kafka_resp_err_t(rawValue: error)
    let text = KafkaConfiguration.withoutUnprintableValues(reason.map { String(cString: $0) } ?? "")
    librdkafkaLogger.warning("kafka error", ["error": KafkaError.describe(code), "reason": text])
    guard code == RD_KAFKA_RESP_ERR__AUTHENTICATION || code == RD_KAFKA_RESP_ERR__SSL else { return nil }
    return .authentication(error, KafkaError.describe(code) + ": " + text)
}

/// librdkafka's own log lines, routed into our logfmt stream.
let librdkafkaLogger = Logger(label: "rdkafka")

private func logLevel(syslog level: Int32) -> Logger.Level {
    switch level {
    case ...3: return .error
    case 4: return .warning
    case 5: return .notice
    case 6: return .info
    default: return .debug
    }
}
