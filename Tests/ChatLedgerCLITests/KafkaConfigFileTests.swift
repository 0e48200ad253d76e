import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// `--kafka-config-file` (and `CHATLEDGER_KAFKA_CONFIG_FILE`): librdkafka properties from a
/// file, under `--kafka-config`; its values never reach an output. librdkafka's mock
/// cluster speaks no SASL ("SASL Handshake not supported by broker"), which stands in for a
/// cluster refusing the login here.
@Suite("Kafka properties from a file, secrets kept out of every output")
struct KafkaConfigFileTests {
    static let secret = "s3cr3t-Pa55word-7Q"

    static func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-kafka-\(UUID().uuidString).properties").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let saslFile = """
        # a managed cluster's settings, as kcat -F reads them
        security.protocol=SASL_PLAINTEXT
        sasl.mechanisms=PLAIN

        sasl.username=chatledger
        sasl.password=\(secret)
        """

    @Test("the file's SASL settings reach librdkafka: a refused login ends ingest with a clear error naming authentication, exit 1, in bounded time, and the password appears nowhere", arguments: ["flag", "environment"])
    func refusedLoginEndsIngest(how: String) throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 1)])
        let properties = try Self.file(Self.saslFile)
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-sasl-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: properties)
            try? FileManager.default.removeItem(atPath: data)
        }
        var arguments = ["ingest", "--brokers", cluster.bootstrapServers, "--data", data]
        var environment: [String: String] = [:]
        if how == "flag" { arguments += ["--kafka-config-file", properties] } else { environment["CHATLEDGER_KAFKA_CONFIG_FILE"] = properties }
        let run = try ChatLedgerProcess.run(arguments, environment: environment, killAfterSeconds: 120)
        #expect(run.status == 1, "ingest fails (9 would be the watchdog): \(run.standardError.suffix(400))")
        #expect(run.standardError.contains("cannot authenticate with the Kafka cluster"))
        #expect(!run.standardError.contains(Self.secret) && !run.standardOutput.contains(Self.secret))
    }

    @Test("a property librdkafka does not know, or a bad value, is a clear error naming the property and never its value")
    func unknownPropertyNamesTheKeyOnly() throws {
        for (text, key) in [("no.such.property=\(Self.secret)", "no.such.property"), ("security.protocol=\(Self.secret)", "security.protocol")] {
            let properties = try Self.file(text)
            defer { try? FileManager.default.removeItem(atPath: properties) }
            let run = try ChatLedgerProcess.run(
                ["produce", "--brokers", "127.0.0.1:1", "--kafka-config-file", properties, "--simulate", "--count", "1"], killAfterSeconds: 60)
            #expect(run.status != 0)
            #expect(run.standardError.contains(key), "\(run.standardError)")
            #expect(!run.standardError.contains(Self.secret))
        }
    }

    @Test("an unreadable file or a line without = is a clear error naming the file and line, not the line's content")
    func badFiles() throws {
        let missing = try ChatLedgerProcess.run(
            ["produce", "--brokers", "127.0.0.1:1", "--kafka-config-file", "/nonexistent/kafka.properties", "--simulate", "--count", "1"],
            killAfterSeconds: 60)
        #expect(missing.status != 0)
        #expect(missing.standardError.contains("cannot read the Kafka properties file /nonexistent/kafka.properties"))
        let broken = try Self.file("security.protocol=SASL_SSL\nsasl.password \(Self.secret)\n")
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let run = try ChatLedgerProcess.run(["produce", "--brokers", "127.0.0.1:1", "--kafka-config-file", broken, "--simulate", "--count", "1"], killAfterSeconds: 60)
        #expect(run.status != 0)
        #expect(run.standardError.contains("line 2: not key=value"))
        #expect(!run.standardError.contains(Self.secret))
    }

    @Test("the file sits under --kafka-config: a property given in both takes the flag's value")
    func flagOverridesFile() throws {
        let properties = try Self.file("client.id=from-file\nlinger.ms=7\n")
        defer { try? FileManager.default.removeItem(atPath: properties) }
        let parsed = try KafkaConfiguration.properties(fromFile: properties)
        #expect(parsed.map(\.key) == ["client.id", "linger.ms"])
        #expect(parsed.map(\.value) == ["from-file", "7"])
        var configuration = KafkaConfiguration()
        for (key, value) in parsed { configuration[key] = value }
        configuration["client.id"] = "from-flag"
        #expect(configuration["client.id"] == "from-flag")
        #expect(configuration["linger.ms"] == "7")
    }
}
