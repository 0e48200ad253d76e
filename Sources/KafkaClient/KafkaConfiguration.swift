import CRdKafka
import LedgerSupport

/// librdkafka properties (see librdkafka's CONFIGURATION.md), applied in order.
public struct KafkaConfiguration: Sendable {
    /// The properties in the order they were set.
    public private(set) var properties: [(key: String, value: String)] = []

    /// Creates a configuration from properties.
    public init(_ properties: KeyValuePairs<String, String> = [:]) {
        for (key, value) in properties { self[key] = value }
    }

    /// A property's value; setting replaces an earlier value for the same key.
    public subscript(key: String) -> String? {
        get { properties.last { $0.key == key }?.value }
        set {
            properties.removeAll { $0.key == key }
            if let newValue { properties.append((key, newValue)) }
        }
    }

    /// Builds a native `rd_kafka_conf_t` with our log callback installed.
    /// - Throws: `KafkaError` naming the property librdkafka refused.
    func makeNative() throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw .configuration("rd_kafka_conf_new failed") }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                let reason = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw .configuration("\(key)=\(value): \(reason)")
            }
        }
        rd_kafka_conf_set_log_cb(conf) { _, level, facility, message in
            let text = message.map { String(cString: $0) } ?? ""
            let facilityText = facility.map { String(cString: $0) } ?? ""
            librdkafkaLogger.log(logLevel(syslog: level), text, ["facility": facilityText])
        }
        return conf
    }
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

/// Creates a client from a native configuration (which it consumes, as librdkafka does).
func makeClient(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
    var errorText = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
        rd_kafka_conf_destroy(conf)
        throw .clientCreation(String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return handle
}
