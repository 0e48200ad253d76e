#if canImport(Glibc)
import Glibc
#endif
import BridgeAdapters
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

enum AdaptTesting {
    static let canonicalTopic = "wa.device-events"
    static let deadLetterTopic = "wa.adapt.dead-letters"

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// A mock cluster with the canonical topic, the dead-letter topic and `topics` (one partition each).
    static func cluster(canonicalPartitions: Int = 4, topics: [String]) throws -> MockCluster {
        let cluster = try MockCluster(topics: [(canonicalTopic, canonicalPartitions), (deadLetterTopic, 1)])
        for topic in topics { try cluster.createTopic(topic, partitions: 1) }
        return cluster
    }

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

    /// Folds events in order (ids made unique) into a projection state: the reference.
    static func fold(_ events: [Event]) -> ProjectionState {
        var state = ProjectionState()
        for (index, var event) in events.enumerated() {
            event.eventId = "m-\(index)"
            state.apply(event, at: LogPosition(partition: 0, offset: Int64(index)))
        }
        return state
    }

    /// Every device's chat list as the API renders it, at a fixed clock; without the
    /// device's `version` (how many events it applied) if asked.
    static func rendered(_ state: ProjectionState, devices: [String], withVersion: Bool = true) throws -> [String: String] {
        var views: [String: String] = [:]
        for device in devices {
            // The chat list and the archived chats (the list leaves them out).
            var text = ""
            for filter in [ChatListFilter.all, .archived] {
                let view = try ChatListRenderer.chatList(state.devices[device], deviceId: device, query: ChatListQuery(filter: filter, limit: 500), now: 1_900_000_000_000)
                text += String(decoding: view.bytes, as: UTF8.self) + "\n"
            }
            while !withVersion, let range = text.range(of: #""version":[0-9]+,"#, options: .regularExpression) { text.removeSubrange(range) }
            views[device] = text
        }
        return views
    }

    static func difference(_ expected: [String: String], _ actual: [String: String]) -> String? {
        for device in expected.keys.sorted() where expected[device] != actual[device] {
            let left = expected[device] ?? "", right = actual[device] ?? ""
            let common = zip(left, right).prefix { $0 == $1 }.count
            return "\(device) differs at character \(common):\n expected …\(left.dropFirst(max(0, common - 150)).prefix(400))\n actual   …\(right.dropFirst(max(0, common - 150)).prefix(400))"
        }
        return nil
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
