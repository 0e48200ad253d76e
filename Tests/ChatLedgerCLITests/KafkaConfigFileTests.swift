import ChatLedgerCLI
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

    @Test("the adapter stage's group consumer fails on a refused login too: adapt ends with the same clear error, exit 1, in bounded time, and the password appears nowhere")
    func refusedLoginEndsAdapt() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 1), ("evolution.a.messages.upsert", 1)])
        let properties = try Self.file(Self.saslFile)
        defer { try? FileManager.default.removeItem(atPath: properties) }
        let run = try ChatLedgerProcess.run(
            ["adapt", "--format", "evolution", "--brokers", cluster.bootstrapServers, "--source-topics", "^evolution\\..*",
             "--kafka-config-file", properties],
            killAfterSeconds: 120)
        #expect(run.status == 1, "adapt fails (9 would be the watchdog): \(run.standardError.suffix(400))")
        #expect(run.standardError.contains("cannot authenticate with the Kafka cluster"), "\(run.standardError.suffix(400))")
        #expect(!run.standardError.contains(Self.secret) && !run.standardOutput.contains(Self.secret))
    }

    @Test("a live run given the file: its secret value appears in no answer (/metrics, /api/v1/status, /readyz), no log line, no --help, and not in the process's arguments (ps)")
    func secretAppearsNowhereInALiveRun() throws {
        // sasl.password is accepted by librdkafka whatever the protocol; with PLAINTEXT it is never sent.
        let properties = try Self.file("security.protocol=PLAINTEXT\nsasl.username=chatledger\nsasl.password=\(Self.secret)\n")
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-secret-\(UUID().uuidString)").path
        let log = data + ".stderr"
        defer { for path in [properties, data, log] { try? FileManager.default.removeItem(atPath: path) } }
        let run = try ServerProcess(
            executable: ChatLedgerProcess.executable,
            arguments: ["run", "--http", "127.0.0.1:0", "--data", data, "--partitions", "1", "--kafka-config-file", properties],
            standardError: log)
        var outputs: [String: String] = [:]
        for target in ["/metrics", "/api/v1/status", "/readyz", "/healthz"] {
            outputs[target] = try HTTPAnswer.get(run.port, target, key: "demo-key").description
        }
        let arguments = try String(decoding: Data(contentsOf: URL(fileURLWithPath: "/proc/\(run.processIdentifier)/cmdline")), as: UTF8.self)
        outputs["ps arguments"] = arguments.replacingOccurrences(of: "\0", with: " ")
        #expect(run.terminate() == 0)
        outputs["log"] = try String(contentsOfFile: log, encoding: .utf8)
        for command in ["run", "ingest", "serve", "produce", "adapt"] {
            outputs["\(command) --help"] = try ChatLedgerProcess.run([command, "--help"]).standardOutput
        }
        #expect(outputs["/metrics"]?.contains("chatledger_") == true, "the answers were read: \(outputs["/metrics"]?.prefix(200) ?? "")")
        #expect(outputs["ps arguments"]?.contains(properties) == true)
        for (output, text) in outputs.sorted(by: { $0.key < $1.key }) {
            #expect(!text.contains(Self.secret), "the secret appears in \(output)")
        }
    }

    @Test("a property librdkafka does not know, or a bad value, is a clear error naming the property (or librdkafka's reason) and never its value")
    func unknownPropertyNamesTheKeyOnly() throws {
        // The third is accepted per property and refused when the client is made, in a
        // reason that quotes it ("Unsupported SASL mechanism: …").
        for (text, key) in [
            ("no.such.property=\(Self.secret)", "no.such.property"), ("security.protocol=\(Self.secret)", "security.protocol"),
            ("security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=\(Self.secret)\nsasl.password=p", "SASL mechanism"),
        ] {
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

    @Test("a file that is not UTF-8, or a line with nothing before =, is a clear error naming the file and never a value")
    func unreadableContent() throws {
        var bytes = Array("sasl.password=\(Self.secret)\n".utf8)
        bytes.insert(0xFF, at: 3)
        let binary = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-kafka-\(UUID().uuidString).properties").path
        _ = FileManager.default.createFile(atPath: binary, contents: Data(bytes))
        let emptyKey = try Self.file("security.protocol=PLAINTEXT\n=\(Self.secret)\n")
        defer { for path in [binary, emptyKey] { try? FileManager.default.removeItem(atPath: path) } }
        for (path, reason) in [(binary, "is not UTF-8"), (emptyKey, "line 2: no key before =")] {
            let run = try ChatLedgerProcess.run(["produce", "--brokers", "127.0.0.1:1", "--kafka-config-file", path, "--simulate", "--count", "1"], killAfterSeconds: 60)
            #expect(run.status != 0)
            #expect(run.standardError.contains(path) && run.standardError.contains(reason), "\(run.standardError)")
            #expect(!run.standardError.contains(Self.secret))
        }
    }

    @Test("the file sits under --kafka-config: the command applies the flag's value over the file's, whichever of the two is bad")
    func flagOverridesFile() throws {
        let cluster = try MockCluster(topics: [("wa.device-events", 1)])
        func produce(file: String, flag: String) throws -> ChatLedgerProcess.Result {
            let properties = try Self.file(file)
            defer { try? FileManager.default.removeItem(atPath: properties) }
            return try ChatLedgerProcess.run(
                ["produce", "--brokers", cluster.bootstrapServers, "--kafka-config-file", properties, "--kafka-config", flag,
                 "--simulate", "--count", "1"], killAfterSeconds: 60)
        }
        // A bad value in the file, a good one on the flag: the flag wins, the command succeeds.
        let overridden = try produce(file: "security.protocol=no-such-protocol\n", flag: "security.protocol=plaintext")
        #expect(overridden.status == 0, "\(overridden.standardError.suffix(400))")
        // A good value in the file, a bad one on the flag: the flag still wins, and fails.
        let flagged = try produce(file: "security.protocol=plaintext\n", flag: "security.protocol=no-such-protocol")
        #expect(flagged.status != 0)
        #expect(flagged.standardError.contains("security.protocol"), "\(flagged.standardError.suffix(400))")
    }
}
