import ChatProjection
import EventLog
import Foundation
import Ingest
import LedgerSupport
import QueryWorker

/// The HTTP options `run`, `serve` and `ingest` share, and starting the query worker
/// from them.
enum QueryWorkerOptions {
    /// Limits and timeouts of the HTTP server; defaults are `HTTPServer.Configuration`'s.
    static let limits: [CommandSpec.Option] = {
        let defaults = HTTPServer.Configuration()
        return [
            CommandSpec.Option("http-threads", "N", "HTTP event loops, each on its own thread with its share of the connections.", default: String(defaultLoops)),
            CommandSpec.Option("max-connections", "N", "At this many open connections a new one replaces the one idle longest; with all busy it gets 503.", default: String(defaults.maxConnections)),
            CommandSpec.Option("header-timeout-ms", "MS", "A request head must arrive within this (else 408).", default: String(defaults.headerTimeoutMilliseconds)),
            CommandSpec.Option("idle-timeout-ms", "MS", "Idle keep-alive connections close after this.", default: String(defaults.idleTimeoutMilliseconds)),
            CommandSpec.Option("max-request-line-bytes", "N", "Longer request lines get 414.", default: String(defaults.limits.requestLineBytes)),
            CommandSpec.Option("max-header-bytes", "N", "Larger header sections get 431.", default: String(defaults.limits.headerBytes)),
            CommandSpec.Option("max-headers", "N", "More header fields get 431.", default: String(defaults.limits.headerCount)),
        ]
    }()

    /// `--http-threads` by default: one loop per core.
    static var defaultLoops: Int { max(1, min(HTTPServer.maxLoops, ProcessInfo.processInfo.activeProcessorCount)) }

    /// The server configuration from `--http ADDR` (default: the `http` option's) and the limits.
    static func configuration(_ arguments: ParsedArguments) throws -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        let text = arguments.value(.http)
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw arguments.usageError("--http takes HOST:PORT, e.g. 127.0.0.1:8080") }
        configuration.host = String(parts[0])
        configuration.port = port
        let big = 1...(1 << 30)
        if let value = try arguments.integer("http-threads", in: 1...HTTPServer.maxLoops) { configuration.loops = value }
        if let value = try arguments.integer("max-connections", in: 1...1_000_000) { configuration.maxConnections = value }
        if let value = try arguments.integer("header-timeout-ms", in: big) { configuration.headerTimeoutMilliseconds = value }
        if let value = try arguments.integer("idle-timeout-ms", in: big) { configuration.idleTimeoutMilliseconds = value }
        if let value = try arguments.integer("max-request-line-bytes", in: 64...big.upperBound) { configuration.limits.requestLineBytes = value }
        if let value = try arguments.integer("max-header-bytes", in: 256...big.upperBound) { configuration.limits.headerBytes = value }
        if let value = try arguments.integer("max-headers", in: 1...100_000) { configuration.limits.headerCount = value }
        return configuration
    }

    /// Starts the HTTP server for `api`; the server and its URL (the caller prints it).
    static func start(_ api: QueryAPI, _ configuration: HTTPServer.Configuration) throws -> (server: HTTPServer, url: String) {
        let server = api.server(configuration: configuration)
        let port = try server.start()
        return (server, "http://\(configuration.host):\(port)")
    }

    /// The metrics of a process: the projection's, the log's and its gaps', and ingest's when it runs here.
    static func metrics(store: ProjectionStore, log: EventLog, gaps: GapRegister, ingest: IngestService? = nil) -> MetricsRegistry {
        let metrics = MetricsRegistry()
        if let ingest {
            ingest.registerMetrics(in: metrics)
        } else {
            // `serve`: the records lost, from the gap records its log holds (ingest counts its own).
            metrics.collect(
                "chatledger_ingest_records_lost_total",
                help: "Offsets the broker no longer had when ingest asked for them (gap records in the log), per partition.", kind: .counter
            ) {
                var lost: [Int32: Int64] = [:]
                for partition in store.appliedOffsets.keys { lost[partition] = 0 }
                for gap in gaps.gaps { lost[gap.partition, default: 0] += gap.lostRecords }
                return lost.sorted { $0.key < $1.key }.map { .init([("partition", String($0.key))], Double($0.value)) }
            }
        }
        store.registerMetrics(in: metrics)
        log.registerMetrics(in: metrics)
        gaps.registerMetrics(in: metrics)
        return metrics
    }
}
