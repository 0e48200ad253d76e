#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
import BridgeTestSupport
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// A `chatledger adapt --http 127.0.0.1:0` child process: its port, its stderr in a file.
final class AdaptProcess {
    let process = Process()
    let port: UInt16
    let standardErrorPath: String

    /// The format the stage reads (its metrics are labelled with it).
    let format: String

    init(brokers: String, format: String = "evolution", pattern: String = "^evolution\\..*", group: String = "adapt-test", extra: [String] = []) throws {
        self.format = format
        standardErrorPath = FileManager.default.temporaryDirectory.appendingPathComponent("adapt-\(UUID().uuidString).stderr").path
        _ = FileManager.default.createFile(atPath: standardErrorPath, contents: nil)
        process.executableURL = ChatLedgerProcess.executable
        process.arguments = ["adapt", "--format", format, "--brokers", brokers, "--source-topics", pattern, "--group", group,
                             "--http", "127.0.0.1:0"] + extra
        let output = Pipe()
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: standardErrorPath))
        if ProcessInfo.processInfo.environment["KEEP_ADAPT_LOGS"] != nil {
            process.environment = ProcessInfo.processInfo.environment.merging(["CHATLEDGER_LOG_LEVEL": "debug"]) { $1 }
        }
        try process.run()
        var port: UInt16 = 0
        var line = Data()
        while port == 0, let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty {
            guard byte == Data("\n".utf8) else {
                line.append(byte)
                continue
            }
            let text = String(decoding: line, as: UTF8.self)
            if text.hasPrefix("url=") { port = UInt16(text.split(separator: ":").last ?? "") ?? 0 }
            line = Data()
        }
        self.port = port
        guard port != 0 else { throw AdaptTesting.Failure("adapt ended before printing its URL") }
    }

    var standardError: String { (try? String(contentsOfFile: standardErrorPath, encoding: .utf8)) ?? "" }

    /// The value of a metric sample (`name` with its labels as printed), nil if absent.
    func metric(_ sample: String) throws -> Double? {
        MetricsText.value(try metrics(), sample)
    }

    func metrics() throws -> String {
        try HTTPAnswer.get(port, "/metrics").body
    }

    /// Waits until the stage has consumed `records` source records and has nothing
    /// waiting (caught up with every source partition, no held event).
    func waitUntilAdapted(_ records: Int, seconds: Double = 120) throws {
        try AdaptTesting.waitUntil("adapt has adapted \(records) records", seconds: seconds) {
            guard process.isRunning else { throw AdaptTesting.Failure("adapt exited:\n\(standardError.suffix(2000))") }
            return try metric(#"chatledger_adapt_records_total{format="\#(format)"}"#) ?? 0 >= Double(records)
                && metric(#"chatledger_adapt_caught_up{format="\#(format)"}"#) == 1
                && metric(#"chatledger_adapt_held_events{format="\#(format)"}"#) == 0
        }
    }

    /// Waits until the stage (already assigned) has read every source partition to its end
    /// and holds nothing back.
    func waitUntilCaughtUp(seconds: Double = 120) throws {
        try AdaptTesting.waitUntil("adapt has caught up", seconds: seconds) {
            guard process.isRunning else { throw AdaptTesting.Failure("adapt exited:\n\(standardError.suffix(2000))") }
            return try metric(#"chatledger_adapt_caught_up{format="\#(format)"}"#) == 1
                && metric(#"chatledger_adapt_held_events{format="\#(format)"}"#) == 0
        }
    }

    /// Waits until the stage has joined its group and been given partitions (its log says so).
    func waitUntilAssigned(seconds: Double = 60) throws {
        try AdaptTesting.waitUntil("adapt has partitions", seconds: seconds) {
            guard process.isRunning else { throw AdaptTesting.Failure("adapt exited:\n\(standardError.suffix(2000))") }
            return standardError.contains("partitions assigned")
        }
    }

    func terminate() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill() }
        if ProcessInfo.processInfo.environment["KEEP_ADAPT_LOGS"] == nil { try? FileManager.default.removeItem(atPath: standardErrorPath) }
    }
}

/// What the `adapt` process tests share (the topics, the cluster and the reference: `StageTestingSupport`).
enum AdaptTesting: StageTestingSupport {

    /// Polls `condition` (every 50 ms) until it holds, failing after `seconds`.
    static func waitUntil(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) throws {
        try Polling.waitUntil(what, seconds: seconds, every: .milliseconds(50), condition)
    }

    /// The last offset of each partition of the canonical topic (what ingest must reach).
    static func canonicalLastOffsets(_ brokers: String, partitions: Int) throws -> [Int32: Int64] {
        let messages = try PlainConsumer(bootstrapServers: brokers).readAll(topic: canonicalTopic, partitions: partitions)
        var last: [Int32: Int64] = [:]
        for message in messages { last[message.partition] = max(last[message.partition] ?? -1, message.offset) }
        return last
    }

    /// Folds the event log in `data` as a restart of ingest does (`ProjectionRecovery.replay`).
    static func foldLog(_ data: String) throws -> ProjectionState {
        var state = ProjectionState()
        try ProjectionRecovery.replay(into: &state, log: EventLog(dataDirectory: data), topic: canonicalTopic)
        return state
    }

    /// An Evolution record (Kafka value) for `instance` with `data`, carrying `apikey`.
    static func record(_ event: String, instance: String, data: String, apikey: String, timestamp: Int64) -> [UInt8] {
        Array(#"{"event":"\#(event)","instance":"\#(instance)","data":\#(data),"server_url":"http://evolution:8080","date_time":"2026-01-01T00:00:00.000Z","sender":"5511999990000@s.whatsapp.net","apikey":"\#(apikey)","timestamp":\#(timestamp)}"#.utf8)
    }

    /// A `messages.upsert` of a text message.
    static func upsert(instance: String, remoteJid: String, alt: String? = nil, id: String, fromMe: Bool, text: String, at seconds: Int64, apikey: String) -> [UInt8] {
        let altField = alt.map { #","remoteJidAlt":"\#($0)","addressingMode":"lid""# } ?? ""
        return record(
            "messages.upsert", instance: instance,
            data: #"{"key":{"remoteJid":"\#(remoteJid)"\#(altField),"fromMe":\#(fromMe),"id":"\#(id)"},"pushName":"Ana","status":"\#(fromMe ? "SERVER_ACK" : "DELIVERY_ACK")","message":{"conversation":"\#(text)"},"messageType":"conversation","messageTimestamp":\#(seconds),"instanceId":"i","source":"android"}"#,
            apikey: apikey, timestamp: seconds * 1000 + 1)
    }
}
