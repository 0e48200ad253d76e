// swift-tools-version:6.0
import PackageDescription

// ChatLedger has no package dependencies: Foundation, Glibc, Dispatch, Synchronization,
// the toolchain's test libraries, and librdkafka through the `CRdKafka` system library.
// Data flows one way (Kafka → log → projection → query); each target imports only the
// targets below it.
let package = Package(
    name: "ChatLedger",
    products: [
        .executable(name: "chatledger", targets: ["chatledger"])
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // Our own CRC32C (SSE4.2 or table) and SHA-256 (SHA extensions or portable), in C.
        .target(name: "CLedgerChecksums"),
        // Logging, argument parsing, signals, checksums, system calls, threads and the service
        // lifecycle (Service/: ordered start, reverse-order stop): what every layer shares.
        .target(name: "LedgerSupport", dependencies: ["CLedgerChecksums"]),
        // Event schema v1: typed events, the byte-level parser, the canonical encoder,
        // and the traffic model that `produce --simulate` publishes.
        .target(name: "ChatEvents"),
        // The event log: segmented, checksummed, hash-chained, crash-safe, per Kafka partition.
        .target(name: "EventLog", dependencies: ["LedgerSupport"]),
        // The prefetch intrinsic the projection's hash tables use, in C (Swift cannot spell it).
        .target(name: "CLedgerIntrinsics"),
        // Chat-list projections: the one fold of a log record into state (Fold/: replay,
        // recovery, the follower `serve` runs, checkpoint verification), versions, digests,
        // checkpoints, the snapshot cache, the audit views.
        .target(name: "ChatProjection", dependencies: ["ChatEvents", "EventLog", "LedgerSupport", "CLedgerIntrinsics"]),
        // Thin, safe wrappers over librdkafka: producer and the embedded mock cluster.
        .target(name: "KafkaClient", dependencies: ["CRdKafka", "LedgerSupport"]),
        // Kafka ingest: consumer → log → projection, exactly once per offset.
        .target(name: "Ingest", dependencies: ["KafkaClient", "EventLog", "ChatProjection", "ChatEvents", "LedgerSupport"]),
        // epoll, accept4 and pipe2 for the HTTP server, in C (epoll's event struct is packed).
        .target(name: "CLedgerSystem"),
        // The HTTP query worker: a strict HTTP/1.1 parser and an epoll server (HTTP/), the
        // read, audit and write API (API/), and the console, whose page, script and styles
        // are compiled into the binary (served at `/`).
        .target(
            name: "QueryWorker", dependencies: ["ChatProjection", "ChatEvents", "EventLog", "LedgerSupport", "CLedgerSystem"],
            resources: [.embedInCode("Console/console.html"), .embedInCode("Console/console.js"), .embedInCode("Console/console.css")]
        ),
        // The adapter stage: real bridges' Kafka records (Evolution API, ...) → canonical events
        // on the canonical topic, in front of ingest; and each format's traffic simulator.
        .target(name: "BridgeAdapters", dependencies: ["ChatEvents", "KafkaClient", "LedgerSupport"]),
        // The commands of `chatledger` (flags → configuration → services) and the benchmarks,
        // importable by tests.
        .target(
            name: "ChatLedgerCLI",
            dependencies: [
                "LedgerSupport", "ChatEvents", "EventLog", "ChatProjection", "KafkaClient", "Ingest", "QueryWorker", "BridgeAdapters",
            ]
        ),
        .executableTarget(name: "chatledger", dependencies: ["ChatLedgerCLI"]),

        // Test helpers shared by test targets: a plain librdkafka consumer, the built binary.
        .target(name: "KafkaTestSupport", dependencies: ["CRdKafka"], path: "Tests/KafkaTestSupport"),
        // What the adapter-stage tests of BridgeAdaptersTests and ChatLedgerCLITests share:
        // the stage's topics on a mock cluster and the chat-list reference.
        .target(name: "BridgeTestSupport", dependencies: ["ChatEvents", "ChatProjection", "EventLog", "KafkaClient"], path: "Tests/BridgeTestSupport"),
        // A log writer for the crash tests to SIGKILL at random moments.
        .executableTarget(name: "LogCrashWriter", dependencies: ["EventLog", "KafkaTestSupport"], path: "Tests/LogCrashWriter"),
        // An ingest pipeline for the crash tests to SIGKILL while a checkpoint is written in the background.
        .executableTarget(
            name: "CheckpointCrashWriter", dependencies: ["Ingest", "ChatProjection", "ChatEvents", "EventLog", "LedgerSupport"],
            path: "Tests/CheckpointCrashWriter"
        ),
        .testTarget(name: "LedgerSupportTests", dependencies: ["LedgerSupport"]),
        .testTarget(name: "ChatEventsTests", dependencies: ["ChatEvents"]),
        .testTarget(
            name: "IngestTests", dependencies: ["Ingest", "ChatProjection", "ChatEvents", "EventLog", "KafkaClient", "KafkaTestSupport"]
        ),
        .testTarget(name: "ChatProjectionTests", dependencies: ["ChatProjection", "ChatEvents", "EventLog", "LedgerSupport", "KafkaTestSupport"]),
        .testTarget(
            name: "QueryWorkerTests",
            dependencies: ["QueryWorker", "LedgerSupport", "ChatProjection", "ChatEvents", "EventLog", "KafkaTestSupport"]
        ),
        .testTarget(name: "EventLogTests", dependencies: ["EventLog", "LedgerSupport", "KafkaTestSupport"]),
        .testTarget(
            name: "KafkaClientTests",
            dependencies: ["KafkaClient", "ChatEvents", "KafkaTestSupport"]
        ),
        .testTarget(
            name: "ChatLedgerCLITests",
            dependencies: [
                "ChatLedgerCLI", "ChatEvents", "ChatProjection", "EventLog", "KafkaClient", "KafkaTestSupport", "BridgeAdapters", "QueryWorker",
                "BridgeTestSupport",
            ]
        ),
        .testTarget(
            name: "BridgeAdaptersTests",
            dependencies: ["BridgeAdapters", "ChatEvents", "ChatProjection", "EventLog", "KafkaClient", "KafkaTestSupport", "BridgeTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
