#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import ChatEvents
import ChatProjection
import KafkaClient
import LedgerSupport
import QueryWorker

/// `chatledger adapt`: a bridge's own Kafka records → canonical events on the canonical
/// topic (README, "Real bridges: the adapter stage"), in front of ingest, until SIGINT/SIGTERM.
enum AdaptCommand: Command {
    static let spec = CommandSpec(
        name: "adapt",
        synopsis: "adapt --format FORMAT --brokers B --source-topics REGEX [--topic T] [--group G] [--dead-letter-topic T] [--kafka-config K=V,...] [--kafka-config-file FILE] [--http ADDR]",
        summary: "Normalize a bridge's Kafka records (formats: \(BridgeFormats.names.joined(separator: ", "))) into canonical events on the canonical topic.",
        options: [
            CommandSpec.Option("format", "FORMAT", "The bridge's format: \(BridgeFormats.names.joined(separator: ", ")).", required: true),
            CommandSpec.Option("brokers", "B", "Kafka bootstrap servers, host:port[,host:port].", required: true),
            AdaptOptions.sourceTopics,
            CommandSpec.Option("topic", "T", "The canonical topic the events go to.", default: DeviceEventsTopic.defaultName),
            CommandSpec.Option("group", "G", "Kafka consumer group of the stage (its committed offsets are its progress).", default: AdapterStage.Configuration.defaultGroup),
            AdaptOptions.deadLetterTopic, AdaptOptions.adaptThreads,
            IngestOptions.kafkaConfig, IngestOptions.kafkaConfigFile,
            CommandSpec.Option("http", "ADDR", "Serve /healthz, /readyz (caught up with the source topics) and /metrics here."),
        ] + QueryWorkerOptions.limits)

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let adapter = try AdaptOptions.adapter(arguments.string("format") ?? "", arguments)
        let pattern = try AdaptOptions.pattern(arguments.string("source-topics") ?? "", arguments)
        try AdaptOptions.checkOwnTopics(
            pattern, canonical: arguments.value(.topic), deadLetter: arguments.string("dead-letter-topic") ?? AdaptOptions.defaultDeadLetterTopic,
            arguments)
        let configuration = AdapterStage.Configuration(
            brokers: arguments.string("brokers") ?? "", group: arguments.string("group") ?? AdapterStage.Configuration.defaultGroup, sourceTopics: [pattern],
            topic: arguments.value(.topic),
            deadLetterTopic: arguments.string("dead-letter-topic") ?? AdaptOptions.defaultDeadLetterTopic,
            kafka: try IngestOptions.kafkaConfiguration(arguments), adaptThreads: try AdaptOptions.threads(arguments))
        let signals = TerminationSignal.install()
        let stage = AdapterStage()
        signals.onSignal { _ in stage.stop() }
        var server: HTTPServer?
        if arguments.string("http") != nil {
            let metrics = MetricsRegistry()
            stage.registerMetrics(in: metrics, format: adapter.format)
            let api = QueryAPI(
                store: ProjectionStore(), keys: KeyRing(APIKeys.none), metrics: metrics, isReady: { stage.isCaughtUp })
            let started = try QueryWorkerOptions.start(api, try QueryWorkerOptions.configuration(arguments))
            server = started.server
            print("url=\(started.url)")
            flushStandardOutput()
        }
        defer { server?.stop() }
        Logger(label: "adapt").info(
            "adapting", ["format": adapter.format, "source_topics": pattern, "topic": configuration.topic, "group": configuration.group,
                         "dead_letter_topic": configuration.deadLetterTopic])
        try stage.run(adapter: adapter, configuration: configuration)
        return 0
    }
}

/// What `adapt`, `run --adapt` and `produce --format` share.
enum AdaptOptions {
    static let defaultDeadLetterTopic = AdapterStage.Configuration.defaultDeadLetterTopic

    static let sourceTopics = CommandSpec.Option(
        "source-topics", "REGEX", "Consume every topic whose name matches REGEX (POSIX extended, from the name's start), e.g. '^evolution\\..*'.",
        required: true)
    static let deadLetterTopic = CommandSpec.Option(
        "dead-letter-topic", "T", "Where records the stage cannot use go (secrets removed, with coordinates and reason).",
        default: defaultDeadLetterTopic)
    static let adaptThreads = CommandSpec.Option(
        "adapt-threads", "N", "Threads that parse, map and encode bridge records (the stage's own included).",
        default: String(AdapterStage.Configuration.defaultAdaptThreads))

    /// `--adapt-threads`, or the default (the cores, at most 4).
    static func threads(_ arguments: ParsedArguments) throws -> Int {
        try arguments.integer("adapt-threads", in: 1...64) ?? AdapterStage.Configuration.defaultAdaptThreads
    }

    static func adapter(_ name: String, _ arguments: ParsedArguments) throws -> any BridgeAdapter {
        guard let adapter = BridgeFormats.adapter(named: name) else {
            throw arguments.usageError("unknown format '\(name)' (known: \(BridgeFormats.names.joined(separator: ", ")))")
        }
        return adapter
    }

    /// The subscription librdkafka takes for REGEX: a pattern starting with `^`, checked here.
    static func pattern(_ regex: String, _ arguments: ParsedArguments) throws -> String {
        guard !regex.isEmpty else { throw arguments.usageError("--source-topics needs a regular expression") }
        let anchored = regex.hasPrefix("^") ? regex : "^" + regex
        var compiled = regex_t()
        let status = regcomp(&compiled, anchored, REG_EXTENDED | REG_NOSUB)
        guard status == 0 else { throw arguments.usageError("--source-topics: '\(regex)' is not a regular expression") }
        regfree(&compiled)
        return anchored
    }

    /// Refuses a pattern that also matches a topic ChatLedger itself writes (the canonical
    /// topic, its dead letters, the cluster's membership): the stage would consume what it
    /// or ingest produced, and a dead letter about a dead letter makes another, without end.
    static func checkOwnTopics(_ pattern: String, canonical: String, deadLetter: String, _ arguments: ParsedArguments) throws {
        var compiled = regex_t()
        guard regcomp(&compiled, pattern, REG_EXTENDED | REG_NOSUB) == 0 else { return }  // `pattern` checked it
        defer { regfree(&compiled) }
        for own in [canonical, deadLetter, canonical + ".members"] where regexec(&compiled, own, 0, nil, 0) == 0 {
            throw arguments.usageError(
                "the source pattern \(pattern) also matches \(own), a topic ChatLedger writes: the stage would read its own output; "
                    + "narrow the pattern (e.g. ^wa\\.baileys$)")
        }
    }

    /// `FORMAT:REGEX` of `run --adapt`.
    static func formatAndPattern(_ value: String, _ arguments: ParsedArguments) throws -> (adapter: any BridgeAdapter, pattern: String) {
        guard let colon = value.firstIndex(of: ":") else {
            throw arguments.usageError("--adapt takes FORMAT:REGEX, e.g. evolution:^evolution\\..*")
        }
        return (try adapter(String(value[..<colon]), arguments), try pattern(String(value[value.index(after: colon)...]), arguments))
    }
}
