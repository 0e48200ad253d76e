#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import ChatEvents
import Foundation
import KafkaClient
import LedgerSupport

/// `chatledger produce`: publishes events like an upstream bridge, keyed by `deviceId`.
/// From an NDJSON file or from the traffic model (`--simulate`); with `--format` a bridge
/// format's own records on that format's topics (for `adapt`). A file's lines are checked
/// first: an invalid one is reported with its line number and reason, counted, and sent as
/// it is (keyed by its `deviceId` when it names one, else without a key), as a bridge would
/// send it, so ingest dead-letters it; `--strict` sends none of them and exits 1.
enum ProduceCommand: Command {
    static let spec = CommandSpec(
        name: "produce",
        synopsis: "produce --brokers B [--topic T] [--kafka-config K=V,...] [--kafka-config-file FILE] (--file F.ndjson | --simulate [--format FORMAT] [--devices N] [--chats M] [--rate R] [--count C] [--seed S])",
        summary: "Publish events like an upstream bridge: from an NDJSON file or simulated traffic. Prints a JSON summary.",
        options: [
            CommandSpec.Option("brokers", "B", "Kafka bootstrap servers, host:port[,host:port].", required: true),
            .topic,
            CommandSpec.Option("file", "F", "NDJSON file of events, one per line ('-' for stdin); invalid lines are reported and sent as they are (ingest dead-letters them)."),
            .flag("strict", "With --file: send nothing of a line that is not a valid event (exit 1 if there was one)."),
            .flag("simulate", "Generate realistic traffic with the built-in model."),
            CommandSpec.Option(
                "format", "FORMAT",
                "What --simulate publishes: chatledger (canonical events on --topic) or a bridge's own records on its topics (\(BridgeFormats.names.joined(separator: ", ")); devices are the bridge's instances).",
                default: "chatledger"),
            CommandSpec.Option("devices", "N", "Simulated devices.", default: "10"),
            CommandSpec.Option("chats", "M", "Chats per simulated device.", default: "50"),
            CommandSpec.Option("rate", "R", "Events per second; 0 = as fast as possible.", default: "0"),
            CommandSpec.Option("count", "C", "Events to simulate.", default: "1000"),
            CommandSpec.Option("seed", "S", "Seed of the simulation; equal seeds give equal traffic.", default: "1"),
            IngestOptions.kafkaConfig, IngestOptions.kafkaConfigFile,
        ])

    /// Under `--kafka-config-file` and `--kafka-config`, for canonical events and bridge records alike.
    static let producerDefaults = KafkaConfiguration(["message.timeout.ms": "30000"])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let logger = Logger(label: "produce")
        let simulate = arguments.flag("simulate")
        let file = arguments.string("file")
        guard simulate != (file != nil) else {
            throw arguments.usageError("give exactly one of --file or --simulate")
        }
        let topic = arguments.value(.topic)
        let brokers = arguments.string("brokers") ?? ""
        let format = arguments.string("format") ?? "chatledger"
        if format != "chatledger" {
            guard simulate else { throw arguments.usageError("--format goes with --simulate") }
            return try produceBridgeTraffic(format: format, arguments, logger: logger)
        }

        // Read (and check) everything before connecting.
        var events: [(key: [UInt8], value: [UInt8])] = []
        var invalidLines = 0
        var duplicates = 0
        var rate = 0
        let strict = arguments.flag("strict")
        if let file {
            guard file == "-" || FileManager.default.isReadableFile(atPath: file) else {
                writeStandardError("chatledger produce: cannot read \(file): " + (FileManager.default.fileExists(atPath: file) ? "permission denied" : "no such file") + "\n")
                return 1
            }
            (events, invalidLines) = try readFile(file, strict: strict, logger: logger)
        } else {
            guard !strict else { throw arguments.usageError("--strict goes with --file") }
            let configuration = TrafficModel.Configuration(
                devices: try arguments.integer("devices", in: 1...1_000_000) ?? 10,
                chatsPerDevice: try arguments.integer("chats", in: 1...1_000_000) ?? 50,
                seed: UInt64(try arguments.integer("seed", in: 0...Int.max) ?? 1))
            let count = try arguments.integer("count", in: 0...1_000_000_000) ?? 1000
            rate = try arguments.integer("rate", in: 0...10_000_000) ?? 0
            var model = TrafficModel(configuration)
            events.reserveCapacity(count)
            for _ in 0..<count {
                let generated = model.next()
                if generated.isDuplicate { duplicates += 1 }
                events.append((Array(generated.event.deviceId.utf8), EventEncoder.encode(generated.event)))
            }
        }

        let producer = try KafkaProducer(
            bootstrapServers: brokers,
            configuration: try IngestOptions.kafkaConfiguration(arguments, defaults: Self.producerDefaults))
        let started = ContinuousClock.now
        for (index, event) in events.enumerated() {
            if rate > 0 { pace(index: index, rate: rate, since: started) }
            try producer.send(topic: topic, key: event.key, value: event.value)
        }
        try producer.flush(timeoutMilliseconds: 60_000)
        let seconds = max(1e-9, (ContinuousClock.now - started) / .seconds(1))
        let report = producer.report
        if let failure = report.firstFailure {
            logger.error("deliveries failed", ["failed": report.failed, "first": failure])
        }
        logger.info(
            "produced", ["topic": topic, "delivered": report.delivered, "failed": report.failed,
                         "events_per_s": Int(Double(report.delivered) / seconds)])
        print(summary(topic: topic, sent: events.count, duplicates: duplicates, invalidLines: invalidLines, report: report))
        return report.failed == 0 && !(strict && invalidLines > 0) ? 0 : 1
    }

    /// `--simulate --format FORMAT`: a bridge's own records on its own topics, as it
    /// publishes them (Evolution: one topic per instance and event, keyed by the instance).
    static func produceBridgeTraffic(format: String, _ arguments: ParsedArguments, logger: Logger) throws -> Int32 {
        guard var traffic = BridgeFormats.simulation(
            named: format, devices: try arguments.integer("devices", in: 1...100_000) ?? 10,
            chats: try arguments.integer("chats", in: 2...1_000_000) ?? 50, seed: UInt64(try arguments.integer("seed", in: 0...Int.max) ?? 1))
        else {
            throw arguments.usageError("--format takes chatledger or \(BridgeFormats.names.joined(separator: ", "))")
        }
        let count = try arguments.integer("count", in: 0...1_000_000_000) ?? 1000
        let rate = try arguments.integer("rate", in: 0...10_000_000) ?? 0
        let producer = try KafkaProducer(
            bootstrapServers: arguments.string("brokers") ?? "",
            configuration: try IngestOptions.kafkaConfiguration(arguments, defaults: Self.producerDefaults))
        let started = ContinuousClock.now
        var topics = Set<String>()
        for index in 0..<count {
            if rate > 0 { pace(index: index, rate: rate, since: started) }
            let record = traffic.next()
            topics.insert(record.topic)
            try producer.send(topic: record.topic, key: record.key, value: record.value)
        }
        try producer.flush(timeoutMilliseconds: 60_000)
        let report = producer.report
        if let failure = report.firstFailure {
            logger.error("deliveries failed", ["failed": report.failed, "first": failure])
        }
        logger.info("produced", ["format": format, "topics": topics.count, "delivered": report.delivered, "failed": report.failed])
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("format", format)
        writer.field("topics", Int64(topics.count))
        writer.field("sent", Int64(count))
        writer.field("delivered", Int64(report.delivered))
        writer.field("failed", Int64(report.failed))
        writer.key("devices")
        writer.stringArray(traffic.deviceIds)
        writer.endObject()
        print(String(decoding: writer.bytes, as: UTF8.self))
        return report.failed == 0 ? 0 : 1
    }

    /// Reads NDJSON: each non-blank line is checked; an invalid one is reported (line number
    /// and reason) and kept as it is, keyed by its `deviceId` if it names one (left out when
    /// `strict`).
    static func readFile(_ path: String, strict: Bool, logger: Logger) throws -> (events: [(key: [UInt8], value: [UInt8])], invalid: Int) {
        let data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: path))
        let parser = EventParser()
        var events: [(key: [UInt8], value: [UInt8])] = []
        var invalid = 0
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var bytes = Array(line)
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            do {
                let event = try parser.parse(bytes)
                events.append((Array(event.deviceId.utf8), bytes))
            } catch {
                invalid += 1
                logger.error(
                    strict ? "invalid line, not sent" : "invalid line, sent as it is (a dead letter for ingest)",
                    ["line": lineNumber, "reason": error.code, "field": error.path, "error": error.message])
                if !strict { events.append((statedDeviceId(bytes), bytes)) }
            }
        }
        return (events, invalid)
    }

    /// The `deviceId` string an invalid line states at its top level, as a Kafka key; empty
    /// (no key) when it states none.
    static func statedDeviceId(_ bytes: [UInt8]) -> [UInt8] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? [String: Any],
            let deviceId = object["deviceId"] as? String
        else { return [] }
        return Array(deviceId.utf8)
    }

    /// Sleeps until event `index` is due at `rate` events per second.
    static func pace(index: Int, rate: Int, since start: ContinuousClock.Instant) {
        let due = start + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate))
        let now = ContinuousClock.now
        if due > now {
            let wait = due - now
            let (seconds, attoseconds) = wait.components
            var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        }
    }

    static func summary(topic: String, sent: Int, duplicates: Int, invalidLines: Int, report: DeliveryReport) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("topic", topic)
        writer.field("sent", Int64(sent))
        writer.field("duplicates", Int64(duplicates))
        writer.field("invalidLines", Int64(invalidLines))
        writer.field("delivered", Int64(report.delivered))
        writer.field("failed", Int64(report.failed))
        writer.key("lastOffsets")
        writer.beginObject()
        for (partition, offset) in report.lastOffsets.sorted(by: { $0.key < $1.key }) {
            writer.field(String(partition), offset)
        }
        writer.endObject()
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}
