import CRdKafka
import Foundation
import Synchronization

/// librdkafka properties (see librdkafka's CONFIGURATION.md), applied in order.
package struct KafkaConfiguration: Sendable {
    /// The properties in the order they were set.
    package private(set) var properties: [(key: String, value: String)] = []

    /// Creates a configuration from properties.
    package init(_ properties: KeyValuePairs<String, String> = [:]) {
        for (key, value) in properties { self[key] = value }
    }

    /// A property's value; setting replaces an earlier value for the same key.
    package subscript(key: String) -> String? {
        get { properties.last { $0.key == key }?.value }
        set {
            properties.removeAll { $0.key == key }
            if let newValue { properties.append((key, newValue)) }
        }
    }

    /// Whether `key` configures consumer-group membership (`group.*`,
    /// `partition.assignment.strategy`, `session.*`, `heartbeat.*`): settings that belong to
    /// ingest's group member and are left out of the group-less readers beside it.
    package static func isGroupSetting(_ key: String) -> Bool {
        key.hasPrefix("group.") || key == "partition.assignment.strategy" || key.hasPrefix("session.") || key.hasPrefix("heartbeat.")
    }

    /// A client's settings: `bootstrap.servers` and the client's `defaults`, then the
    /// caller's `overrides` in order, less the keys `excluded` says the client keeps for itself.
    static func client(
        bootstrapServers: String, defaults: KeyValuePairs<String, String>, overrides: KafkaConfiguration,
        excluding excluded: (String) -> Bool = { _ in false }
    ) -> KafkaConfiguration {
        var settings = KafkaConfiguration(["bootstrap.servers": bootstrapServers])
        for (key, value) in defaults { settings[key] = value }
        for (key, value) in overrides.properties where !excluded(key) { settings[key] = value }
        return settings
    }

    /// Builds a native `rd_kafka_conf_t` holding the properties (`KafkaClientHandle` adds the callbacks).
    /// - Throws: `KafkaError` naming the property librdkafka refused.
    func makeNative() throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw .configuration("rd_kafka_conf_new failed") }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                let reason = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                // Never the value: it may be a password. librdkafka quotes it in some
                // reasons ("Invalid value "…" for …"), so it is cut out of those too.
                throw .configuration("property \(key): \(Self.redacting(value, in: reason))")
            }
        }
        return conf
    }
}

extension KafkaConfiguration {
    /// `text` with every occurrence of `secret` replaced (for messages that quote a value).
    static func redacting(_ secret: String, in text: String) -> String {
        guard !secret.isEmpty else { return text }
        return text.replacingOccurrences(of: secret, with: "<redacted>")
    }

    /// Values the operator configured (`--kafka-config-file`, `--kafka-config`), which no
    /// message librdkafka writes may show: librdkafka quotes some of them in its errors
    /// ("Unsupported SASL mechanism: …") and log lines. Process-wide, because settings are
    /// copied into several clients' configurations.
    private static let unprintable = Mutex<[String]>([])

    /// Notes `value` as one never to print (values under 3 bytes are not: cutting them out
    /// of every message would garble it, and they are no secret worth the name).
    package static func neverPrint(_ value: String) {
        guard value.utf8.count >= 3 else { return }
        unprintable.withLock { values in
            guard !values.contains(value) else { return }
            values.append(value)
            // Longest first, so a value inside another cannot leave a piece of it behind.
            values.sort { $0.utf8.count > $1.utf8.count }
        }
    }

    /// Whether `key` is a property whose value is (part of) a credential: SASL and TLS key
    /// settings, passwords, secrets, tokens.
    package static func holdsCredentials(_ key: String) -> Bool {
        key.hasPrefix("sasl.") || key.hasPrefix("ssl.key") || key.hasPrefix("ssl_key") || key.hasPrefix("ssl.keystore")
            || ["password", "secret", "token", "credential"].contains { key.contains($0) }
    }

    /// `text` without any value noted by `neverPrint`.
    static func withoutUnprintableValues(_ text: String) -> String {
        unprintable.withLock { values in values.reduce(text) { redacting($1, in: $0) } }
    }

    /// Properties from a librdkafka properties file, as `kcat -F` reads it: one
    /// `key=value` per line (the value is everything after the first `=`, kept as is but
    /// for trailing whitespace), blank lines and lines starting with `#` ignored.
    /// - Throws: `KafkaError` naming the file and line (never a line's content, which may
    ///   hold a secret) for a line without `=`, or the file when it cannot be read.
    package static func properties(fromFile path: String) throws(KafkaError) -> [(key: String, value: String)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration("cannot read the Kafka properties file \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .configuration("the Kafka properties file \(path) is not UTF-8")
        }
        var properties: [(key: String, value: String)] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            while let last = line.last, last.isWhitespace { line.removeLast() }
            while let first = line.first, first.isWhitespace { line.removeFirst() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw .configuration("\(path) line \(index + 1): not key=value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw .configuration("\(path) line \(index + 1): no key before =") }
            properties.append((key, String(line[line.index(after: equals)...])))
        }
        return properties
    }
}
