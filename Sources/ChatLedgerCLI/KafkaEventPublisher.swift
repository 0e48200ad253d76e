import EventLog
import KafkaClient
import LedgerSupport
import QueryWorker

/// The write API's publisher in `run` and `serve`: a `KafkaRecordProducer` on the
/// canonical topic (the one ingest consumes), so a written event comes back through the log.
final class KafkaEventPublisher: EventPublisher {
    private let producer: KafkaRecordProducer

    /// The most a POST waits for Kafka's acknowledgement by default, in ms (`--write-timeout-ms`).
    static let defaultTimeoutMilliseconds = 5_000

    init(brokers: String, topic: String, timeoutMilliseconds: Int, kafka: KafkaConfiguration) throws {
        producer = try KafkaRecordProducer(
            bootstrapServers: brokers, topic: topic, deliveryTimeoutMilliseconds: timeoutMilliseconds, configuration: kafka)
    }

    var deliveryTimeout: Duration { .milliseconds(producer.deliveryTimeoutMilliseconds) }

    func publish(key: [UInt8], value: [UInt8], completion: @escaping @Sendable (PublishOutcome) -> Void) {
        producer.send(key: key, value: value) { result in
            switch result {
            case .success(let delivery):
                completion(.written(LogPosition(partition: delivery.partition, offset: delivery.offset)))
            case .failure(let failure):
                completion(.failed(reason: failure.reason, possiblyWritten: failure.possiblyWritten))
            }
        }
    }

    /// Waits up to `timeoutMilliseconds` for events in flight, then stops the producer.
    func close(timeoutMilliseconds: Int32 = 5_000) { producer.close(timeoutMilliseconds: timeoutMilliseconds) }
}

/// The write API's options on `run` and `serve`.
enum WriteOptions {
    static let timeout = CommandSpec.Option(
        "write-timeout-ms", "MS", "How long a write-API POST waits for Kafka to acknowledge its event before answering 503.",
        default: String(KafkaEventPublisher.defaultTimeoutMilliseconds))

    /// `--write-timeout-ms`.
    static func timeoutMilliseconds(_ arguments: ParsedArguments) throws -> Int {
        try arguments.integer("write-timeout-ms", in: 100...300_000) ?? KafkaEventPublisher.defaultTimeoutMilliseconds
    }

    /// The write API's producer settings, read from the flags.
    struct Configuration {
        var brokers: String
        var topic: String
        var timeoutMilliseconds: Int
        /// The user's `--kafka-config` (security settings apply to the producer too).
        var kafka: KafkaConfiguration

        init(_ arguments: ParsedArguments, brokers: String, topic: String) throws {
            self.brokers = brokers
            self.topic = topic
            timeoutMilliseconds = try WriteOptions.timeoutMilliseconds(arguments)
            kafka = try IngestOptions.kafkaConfiguration(arguments)
        }

        /// The publisher for these settings.
        func publisher() throws -> KafkaEventPublisher {
            try KafkaEventPublisher(brokers: brokers, topic: topic, timeoutMilliseconds: timeoutMilliseconds, kafka: kafka)
        }
    }
}
