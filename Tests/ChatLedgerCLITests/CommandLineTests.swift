import Foundation
import KafkaTestSupport
import Testing

@Suite("chatledger command line")
struct CommandLineTests {
    static let commands = ["run", "ingest", "serve", "produce", "broker", "verify", "acknowledge-loss", "replay", "export", "bench"]

    @Test("every command has --help, exits 0 and lists its options", arguments: commands)
    func helpForEveryCommand(command: String) throws {
        let run = try ChatLedgerProcess.run([command, "--help"])
        #expect(run.status == 0)
        #expect(run.standardOutput.hasPrefix("Usage: chatledger \(command)"))
        #expect(run.standardOutput.contains("--help"))
    }

    @Test("an unknown option is a usage error: exit 64 and one line on stderr", arguments: commands)
    func unknownOption(command: String) throws {
        let run = try ChatLedgerProcess.run([command, "--no-such-option"])
        #expect(run.status == 64)
        #expect(run.standardError.contains("unknown option '--no-such-option'"))
        #expect(run.standardError.split(separator: "\n").count == 1)
        #expect(run.standardOutput.isEmpty)
    }

    @Test("usage errors across options exit 64 with the reason", arguments: [
        (["produce", "--brokers", "x"], "exactly one of --file or --simulate"),
        (["produce", "--simulate"], "missing required option '--brokers'"),
        (["produce", "--brokers", "x", "--simulate", "--count", "many"], "needs an integer"),
        (["produce", "--brokers"], "needs a value"),
        (["replay", "--device", "d", "--at-offset", "0:1", "--as-of", "1"], "either --at-offset or --as-of"),
        (["bench"], "missing argument NAME"),
        (["bench", "nonsense"], "unknown benchmark"),
        (["bench", "freshness", "--devices", "10,0"], "--devices takes device counts"),
        (["ingest", "--brokers", "127.0.0.1:1", "--on-broker-loss", "skip"], "--on-broker-loss takes record or stop"),
        (["run", "--on-broker-loss", ""], "--on-broker-loss takes record or stop"),
        (["ingest", "--brokers", "127.0.0.1:1", "--retain-bytes", "100000", "--archive-command", " "], "--archive-command needs a command"),
        (["produce", "--brokers", "a", "--brokers", "b"], "given twice"),
        (["export", "--from", "2000", "--to", "1000"], "--from is after --to"),
        (["run", "--advertise", "http://user:secret@10.0.0.7:8080"], "--advertise takes http://HOST:PORT"),
        (["adapt", "--format", "baileys", "--brokers", "127.0.0.1:1", "--source-topics", "^wa\\..*"], "also matches wa.device-events, a topic ChatLedger writes"),
        (["run", "--adapt", "baileys:^wa\\.(baileys|adapt).*"], "also matches wa.adapt.dead-letters"),
        (["erase", "--brokers", "127.0.0.1:1", "--device", "d", "--chat", "491700000001@s.whatsapp.net", "--reason", "r"],
         "erase --chat 491700000001@c.us, or add --id-as-given"),
        (["erase", "--brokers", "127.0.0.1:1", "--device", "d", "--contact", "491700000001:12@s.whatsapp.net", "--reason", "r"],
         "is a bridge's form of 491700000001@c.us"),
        (["erase", "--brokers", "127.0.0.1:1", "--device", "d", "--reason", String(repeating: "r", count: 70_000)], "ingest would not take this erasure"),
        (["erase", "--brokers", "127.0.0.1:1", "--device", String(repeating: "d", count: 200), "--reason", "r"], "the device id is longer than any event's"),
        (["frobnicate"], "unknown command"),
        ([], "Usage: chatledger COMMAND"),
    ])
    func usageErrors(arguments: [String], reason: String) throws {
        let run = try ChatLedgerProcess.run(arguments)
        #expect(run.status == 64)
        #expect(run.standardError.contains(reason), "\(run.standardError)")
    }

    @Test("produce --file of a file that is not there exits 1 naming it (not a Foundation error code)")
    func produceMissingFile() throws {
        let run = try ChatLedgerProcess.run(["produce", "--brokers", "127.0.0.1:1", "--file", "/nonexistent/events.ndjson"])
        #expect(run.status == 1)
        #expect(run.standardError.contains("cannot read /nonexistent/events.ndjson: no such file"), "\(run.standardError)")
        #expect(!run.standardError.contains("NSCocoaErrorDomain"))
    }

    @Test("bench http --json measures a real run: request rate, latency and freshness, as one JSON object")
    func benchHTTPJSON() throws {
        let run = try ChatLedgerProcess.run(["bench", "http", "--json", "--seconds", "1", "--probes", "10", "--load", "500"])
        #expect(run.status == 0, "\(run.standardError)")
        let object = try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any]
        let figures = try #require(object?["figures"] as? [String: Double])
        #expect((figures["chats_requests_per_s"] ?? 0) > 0)
        #expect((figures["healthz_requests_per_s"] ?? 0) > 0)
        #expect((figures["freshness_p99_ms"] ?? 0) > 0)
        #expect((figures["chats_response_bytes"] ?? 0) > 1_000, "a real 50-chat list, not an error body")
    }

    @Test("bench freshness --json preloads a projection through Kafka and measures markers under load, per size, with the checkpoints written meanwhile")
    func benchFreshnessJSON() throws {
        let run = try ChatLedgerProcess.run(
            ["bench", "freshness", "--json", "--devices", "20,40", "--chats", "5", "--rate", "300", "--seconds", "2",
             "--dir", NSTemporaryDirectory() + "chatledger-bench"])
        #expect(run.status == 0, "\(run.standardError)")
        let object = try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any]
        let figures = try #require(object?["figures"] as? [String: Double])
        for label in ["20x5", "40x5"] {
            #expect(figures["preload_chats_\(label)"] == Double(Int(label.prefix { $0 != "x" })! * 5))
            #expect((figures["markers_\(label)"] ?? 0) >= 1, "markers measured for 2 s (one every 20 ms at most)")
            #expect(figures["markers_not_visible_\(label)"] == 0)
            #expect((figures["freshness_p50_ms_\(label)"] ?? 0) > 0)
            #expect((figures["freshness_max_ms_\(label)"] ?? 0) >= (figures["freshness_p99_ms_\(label)"] ?? .infinity))
            #expect(figures["checkpoints_during_\(label)"] != nil && figures["markers_over_50ms_at_checkpoint_\(label)"] != nil)
            #expect((figures["disk_fdatasync_max_ms_\(label)"] ?? 0) > 0, "the disk was sampled")
            #expect((figures["background_events_per_s_\(label)"] ?? 0) > 100)
        }
    }

    @Test("bench codec --json prints one JSON object with figures and units")
    func benchCodecJSON() throws {
        let run = try ChatLedgerProcess.run(["bench", "codec", "--json", "--events", "300"])
        #expect(run.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        #expect(object["bench"] as? String == "codec")
        let figures = try #require(object["figures"] as? [String: Double])
        let units = try #require(object["units"] as? [String: String])
        #expect(Set(figures.keys) == Set(units.keys))
        #expect((figures["parser_events_per_s"] ?? 0) > 0)
        #expect((figures["parser_vs_jsondecoder"] ?? 0) > 0)
    }

    @Test("bench ingest --json drains one topic with ingest, a bare consumer and a parsing consumer, each rate next to its ratio")
    func benchIngestJSON() throws {
        let run = try ChatLedgerProcess.run(["bench", "ingest", "--json", "--events", "3000", "--dir", NSTemporaryDirectory() + "chatledger-bench"])
        #expect(run.status == 0, "\(run.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        let figures = try #require(object["figures"] as? [String: Double])
        for rate in ["ingest_events_per_s", "bare_consumer_events_per_s", "parsing_consumer_events_per_s"] {
            #expect((figures[rate] ?? 0) > 0, "\(rate)")
        }
        // Each ratio is ingest's rate over that consumer's (to JSON's printing precision).
        let ingest = figures["ingest_events_per_s"] ?? 0
        for (ratio, rate) in [("ingest_vs_parsing_consumer", "parsing_consumer_events_per_s"), ("ingest_vs_bare_consumer", "bare_consumer_events_per_s")] {
            let expected = ingest / (figures[rate] ?? 1)
            #expect(abs((figures[ratio] ?? 0) - expected) <= expected * 1e-9, "\(ratio)")
        }
    }

    @Test("bench verify --json builds a log, verifies it and replays it on one thread and in parallel to the same digest")
    func benchVerifyJSON() throws {
        // The bench itself fails (exit 1) when the parallel replay's digest or positions
        // differ from the one-thread replay's.
        let run = try ChatLedgerProcess.run(["bench", "verify", "--json", "--events", "20000", "--dir", NSTemporaryDirectory() + "chatledger-bench"])
        #expect(run.status == 0, "\(run.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        #expect(object["bench"] as? String == "verify")
        let figures = try #require(object["figures"] as? [String: Double])
        #expect(figures["events"] == 20_000)
        for rate in ["verify_events_per_s", "replay_from_zero_events_per_s", "replay_one_thread_events_per_s"] {
            #expect((figures[rate] ?? 0) > 0, "\(rate)")
        }
    }

    @Test("broker prints its bootstrap address first and stops cleanly on SIGTERM")
    func brokerStartsAndStops() throws {
        let process = Process()
        process.executableURL = ChatLedgerProcess.executable
        process.arguments = ["broker", "--partitions", "2"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Block on the first line: the broker writes it when it is ready.
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.hasPrefix("bootstrap=127.0.0.1:"))
        #expect(text.contains("partitions=2"))
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
