#if canImport(Glibc)
import Glibc
#endif
import LedgerSupport

/// `chatledger bench NAME [--json]`: measured figures, as a table or one JSON object.
/// Speed is reported against a baseline measured in the same run wherever one exists.
enum BenchCommand: Command {
    static let spec = CommandSpec(
        name: "bench", synopsis: "bench NAME [--json] [--events N] [--format FORMAT] [--devices N[,N…] --chats M --rate R --seconds S]",
        summary: "Run a benchmark (codec, log, projection, ingest, adapt, http, verify, freshness, cluster) and print its figures.",
        options: [
            .flag("json", "Print one JSON object instead of a table."),
            .flag("cpu-only", "adapt: only the per-record work (parse, map, encode) on one thread, without Kafka."),
            CommandSpec.Option("events", "N", "Events to generate (default depends on the benchmark)."),
            CommandSpec.Option("dir", "DIR", "Scratch directory on the disk to measure (log, ingest, verify, freshness).", default: "./data/bench"),
            CommandSpec.Option("batch", "N", "Records per batch (log).", default: "100"),
            CommandSpec.Option("seconds", "S", "Seconds per measurement (log: per append mode, http: per route, default 2; freshness: 100)."),
            CommandSpec.Option("fsync", "POLICY", "The log's fsync policy (ingest).", default: "batch"),
            CommandSpec.Option("load", "N", "Background events/s during the freshness probes (http).", default: "20000"),
            CommandSpec.Option("probes", "N", "Freshness probes (http).", default: "300"),
            CommandSpec.Option("devices", "N[,N…]", "Devices preloaded, one run per size (freshness).", default: "1000,20000"),
            CommandSpec.Option("chats", "M", "Chats per device preloaded (freshness).", default: "50"),
            CommandSpec.Option("rate", "R", "Background events/s while markers are measured (freshness).", default: "3000"),
            CommandSpec.Option("format", "FORMAT", "The bridge format (adapt).", default: "evolution"),
            AdaptOptions.adaptThreads,
            CommandSpec.Option("server", "PATH", "The chatledger binary to run as the measured child, e.g. an older build (freshness; default: this one)."),
            CommandSpec.Option("standby", "N[,N…]", "Standby replicas, one takeover run per count (cluster).", default: "0,1"),
        ],
        positionals: ["NAME"])

    /// `--standby N[,N…]` of `bench cluster`.
    static func standbyCounts(_ arguments: ParsedArguments) throws -> [Int] {
        var counts: [Int] = []
        for text in (arguments.string("standby") ?? "0,1").split(separator: ",") {
            guard let count = Int(text), (0...1).contains(count) else { throw arguments.usageError("--standby takes 0 or 1 (two instances), comma-separated, got '\(text)'") }
            counts.append(count)
        }
        guard !counts.isEmpty else { throw arguments.usageError("--standby takes at least one count") }
        return counts
    }

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let name = arguments.positionals[0]
        let report: BenchReport
        switch name {
        case "codec":
            report = CodecBenchmark.run(events: try arguments.integer("events", in: 100...10_000_000) ?? 200_000)
        case "projection":
            report = try ProjectionBenchmark.run(events: try arguments.integer("events", in: 100...10_000_000) ?? 500_000)
        case "ingest":
            report = try IngestBenchmark.run(
                events: try arguments.integer("events", in: 100...10_000_000) ?? 200_000,
                directory: (arguments.string("dir") ?? "./data/bench") + "/ingest-\(getpid())", fsync: try IngestOptions.fsyncPolicy(arguments))
        case "adapt" where arguments.flag("cpu-only"):
            report = try AdaptBenchmark.runCPUOnly(
                records: try arguments.integer("events", in: 100...10_000_000) ?? 200_000, format: arguments.string("format") ?? "evolution")
        case "adapt":
            report = try AdaptBenchmark.run(
                records: try arguments.integer("events", in: 100...10_000_000) ?? 200_000, format: arguments.string("format") ?? "evolution",
                directory: (arguments.string("dir") ?? "./data/bench") + "/adapt-\(getpid())", adaptThreads: try AdaptOptions.threads(arguments))
        case "verify":
            report = try VerifyBenchmark.run(
                events: try arguments.integer("events", in: 100...100_000_000) ?? 5_000_000,
                directory: (arguments.string("dir") ?? "./data/bench") + "/verify-\(getpid())")
        case "http":
            report = try HTTPBenchmark.run(
                seconds: Double(try arguments.integer("seconds", in: 1...600) ?? 2), load: try arguments.integer("load", in: 0...1_000_000) ?? 20_000,
                probes: try arguments.integer("probes", in: 10...100_000) ?? 300)
        case "freshness":
            var sizes: [Int] = []
            for text in (arguments.string("devices") ?? "1000,20000").split(separator: ",") {
                guard let devices = Int(text), (1...1_000_000).contains(devices) else {
                    throw arguments.usageError("--devices takes device counts in 1...1000000, comma-separated, got '\(text)'")
                }
                sizes.append(devices)
            }
            guard !sizes.isEmpty else { throw arguments.usageError("--devices takes at least one device count") }
            report = try FreshnessBenchmark.run(
                devices: sizes, chats: try arguments.integer("chats", in: 1...10_000) ?? 50,
                rate: try arguments.integer("rate", in: 0...1_000_000) ?? 3_000,
                seconds: Double(try arguments.integer("seconds", in: 1...3_600) ?? 100), directory: arguments.string("dir") ?? "./data/bench",
                server: arguments.string("server"))
        case "cluster":
            report = try ClusterBenchmark.run(
                seconds: Double(try arguments.integer("seconds", in: 1...600) ?? 2),
                events: try arguments.integer("events", in: 100...10_000_000) ?? 50_000, standbys: try standbyCounts(arguments))
        case "log":
            report = try LogBenchmark.run(
                directory: (arguments.string("dir") ?? "./data/bench") + "/log-\(getpid())",
                batchSize: try arguments.integer("batch", in: 1...100_000) ?? 100,
                seconds: Double(try arguments.integer("seconds", in: 1...600) ?? 2))
        default:
            throw arguments.usageError("unknown benchmark '\(name)' (known: codec, log, projection, ingest, adapt, http, verify, freshness, cluster)")
        }
        print(report.render(json: arguments.flag("json")), terminator: "")
        return 0
    }
}
