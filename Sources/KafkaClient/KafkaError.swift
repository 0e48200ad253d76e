import CRdKafka

/// Anything that went wrong talking to librdkafka, with its cause.
package struct KafkaError: Error, Sendable, CustomStringConvertible {
    private enum Kind: String, Sendable {
        case configuration = "invalid configuration"
        case clientCreation = "cannot create the Kafka client"
        case produce = "cannot enqueue a message"
        case flush = "messages still undelivered"
        case mockCluster = "mock cluster failure"
        case fatal = "fatal consumer error"
        case query = "broker request failed"
        case assignment = "partition assignment refused"
        case authentication = "cannot authenticate with the Kafka cluster"
        case commit = "offset commit failed"
    }

    private let kind: Kind
    /// librdkafka's error code (`rd_kafka_resp_err_t`), 0 when it gave none.
    package let code: Int32
    /// librdkafka's own words, plus context such as the property or topic.
    package let detail: String

    private init(_ kind: Kind, code: Int32 = 0, detail: String) {
        self.kind = kind
        self.code = code
        self.detail = detail
    }

    static func configuration(_ detail: String) -> KafkaError { KafkaError(.configuration, detail: detail) }
    static func authentication(_ code: Int32, _ detail: String) -> KafkaError { KafkaError(.authentication, code: code, detail: detail) }
    static func clientCreation(_ detail: String) -> KafkaError { KafkaError(.clientCreation, detail: detail) }
    static func flush(_ detail: String) -> KafkaError { KafkaError(.flush, detail: detail) }

    static func produce(_ error: rd_kafka_resp_err_t, topic: String) -> KafkaError {
        KafkaError(.produce, code: error.rawValue, detail: "topic \(topic): " + describe(error))
    }

    static func mockCluster(_ error: rd_kafka_resp_err_t, _ context: String) -> KafkaError {
        KafkaError(.mockCluster, code: error.rawValue, detail: context + ": " + describe(error))
    }

    static func mockCluster(_ context: String) -> KafkaError { KafkaError(.mockCluster, detail: context) }

    static func fatal(_ error: rd_kafka_resp_err_t, _ detail: String) -> KafkaError {
        KafkaError(.fatal, code: error.rawValue, detail: describe(error) + ": " + detail)
    }

    static func query(_ error: rd_kafka_resp_err_t, _ context: String) -> KafkaError {
        KafkaError(.query, code: error.rawValue, detail: context + ": " + describe(error))
    }

    /// Takes ownership of a librdkafka error object (and destroys it).
    static func assignment(_ error: OpaquePointer, _ context: String) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        return KafkaError(.assignment, code: rd_kafka_error_code(error).rawValue, detail: context + ": " + String(cString: rd_kafka_error_string(error)))
    }

    static func commit(_ error: rd_kafka_resp_err_t) -> KafkaError {
        KafkaError(.commit, code: error.rawValue, detail: describe(error))
    }

    /// librdkafka's text for an error code.
    static func describe(_ error: rd_kafka_resp_err_t) -> String {
        String(cString: rd_kafka_err2str(error))
    }

    package var description: String { "\(kind.rawValue): \(detail)" }
}
