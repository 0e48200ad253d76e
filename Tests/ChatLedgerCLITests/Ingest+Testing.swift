#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import Dispatch
import EventLog
import Foundation
import KafkaTestSupport
import Testing

/// A `chatledger ingest` child process; its stderr goes to `DATA.stderr`.
final class IngestProcess {
    let process = Process()
    /// The port of `--http 127.0.0.1:0` (with `http: true`), else 0.
    private(set) var port: UInt16 = 0
    private let exited = DispatchSemaphore(value: 0)
    let standardErrorPath: String

    init(brokers: String, data: String, group: String, extra: [String] = [], http: Bool = false) throws {
        process.executableURL = ChatLedgerProcess.executable
        process.arguments = ["ingest", "--brokers", brokers, "--data", data, "--group", group] + extra + (http ? ["--http", "127.0.0.1:0"] : [])
        let output = Pipe()
        process.standardOutput = http ? output : FileHandle.nullDevice
        standardErrorPath = data + ".stderr"
        _ = FileManager.default.createFile(atPath: standardErrorPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: standardErrorPath))
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        if http {
            // Its first line is `url=http://127.0.0.1:PORT` (or it ended before serving).
            var line = Data()
            while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line.append(byte) }
            port = UInt16(String(decoding: line, as: UTF8.self).split(separator: ":").last ?? "") ?? 0
        }
    }

    /// A test that ends early (a failed `#require`, a thrown error) must not leave it running.
    deinit {
        if process.isRunning { kill() }
    }

    /// What it wrote to stderr so far.
    var standardError: String { (try? String(contentsOfFile: standardErrorPath, encoding: .utf8)) ?? "" }

    /// Waits for it to end on its own; its exit status, or nil (and SIGKILLed) if it is
    /// still running after `seconds`, so a hang fails the test instead of the whole run.
    func waitForExit(seconds: Int) -> Int32? {
        if exited.wait(timeout: .now() + .seconds(seconds)) == .timedOut {
            kill()
            return nil
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGTERM and wait: the clean shutdown path.
    func terminate() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

enum IngestTesting {
    static func temporaryData(_ label: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-\(label)-\(UUID().uuidString)").path
    }

    /// Blocks until every partition's log reaches the given last offset (woken by
    /// inotify), or fails when no progress was made for `quietSeconds`.
    static func waitForLog(data: String, topic: String = "wa.device-events", lastOffsets: [Int32: Int64], quietSeconds: Double = 90) throws {
        for (partition, last) in lastOffsets {
            let follower = LogFollower(directory: EventLog(dataDirectory: data).directory(topic: topic, partition: partition), topic: topic, partition: partition)
            var lastProgress = ContinuousClock.now
            while follower.nextOffset <= last {
                if try follower.poll({ _ in }) == 0 {
                    guard (ContinuousClock.now - lastProgress) / .seconds(1) < quietSeconds else {
                        throw Failure("partition \(partition) stuck at \(follower.nextOffset), want \(last)")
                    }
                    follower.waitForChanges(timeoutMilliseconds: 1_000)
                } else {
                    lastProgress = .now
                }
            }
        }
    }

    /// Runs `chatledger produce --simulate` (30 devices, 20 chats each) and returns its summary.
    static func produce(_ brokers: String, count: Int, seed: Int) throws -> IngestCommandTests.Summary {
        let run = try ChatLedgerProcess.run(
            ["produce", "--brokers", brokers, "--simulate", "--count", String(count), "--devices", "30", "--chats", "20",
             "--seed", String(seed)])
        #expect(run.status == 0, "\(run.standardError)")
        return try JSONDecoder().decode(IngestCommandTests.Summary.self, from: Data(run.standardOutput.utf8))
    }

    /// The newest checkpoint's state digest (hex), nil without one.
    static func newestCheckpointDigest(data: String) throws -> String? {
        let store = CheckpointStore(dataDirectory: data)
        guard let newest = store.sequences().last else { return nil }
        return try store.read(newest).1.stateDigest.hex
    }

    /// Reads the whole topic with a plain consumer and checks that the log holds exactly
    /// it (each offset once, byte for byte) and that the newest checkpoint holds the state
    /// a reference fold of it gives. Returns the messages.
    @discardableResult
    static func expectLogAndCheckpointMatchTopic(
        data: String, brokers: String, partitions: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> [PlainConsumer.Message] {
        let messages = try PlainConsumer(bootstrapServers: brokers).readAll(topic: "wa.device-events", partitions: partitions)
        let reference = try checkLogAgainstTopic(data: data, messages: messages)
        #expect(try newestCheckpointDigest(data: data) == reference, "the newest checkpoint holds the reference state", sourceLocation: sourceLocation)
        return messages
    }

    /// Starts a fresh `ingest` (a new group), lets it drain the topic to `lastOffsets`,
    /// stops it with SIGTERM, and checks the log and newest checkpoint against the topic
    /// and that the log verifies. Returns how many messages the topic holds.
    static func drainAndCheck(
        brokers: String, data: String, group: String, lastOffsets: [Int32: Int64], partitions: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Int {
        let ingest = try IngestProcess(brokers: brokers, data: data, group: group)
        try waitForLog(data: data, lastOffsets: lastOffsets)
        #expect(ingest.terminate() == 0, "SIGTERM: a clean exit", sourceLocation: sourceLocation)
        let messages = try expectLogAndCheckpointMatchTopic(data: data, brokers: brokers, partitions: partitions, sourceLocation: sourceLocation)
        #expect(try LogVerifier.verify(EventLog(dataDirectory: data)).isClean, sourceLocation: sourceLocation)
        return messages.count
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Every partition of the log holds exactly the topic's messages: each offset once, in
    /// order, byte for byte. Returns the digest of a reference fold of those messages.
    static func checkLogAgainstTopic(data: String, messages: [PlainConsumer.Message], topic: String = "wa.device-events") throws -> SHA256DigestText {
        let log = EventLog(dataDirectory: data)
        var reference = ProjectionState()
        let parser = EventParser()
        for partition in Set(messages.map(\.partition)).sorted() {
            let expected = messages.filter { $0.partition == partition }.sorted { $0.offset < $1.offset }
            let records = try log.reader(topic: topic, partition: partition).records()
            #expect(records.map(\.offset) == expected.map(\.offset), "partition \(partition): each offset exactly once, in order")
            for (record, message) in zip(records, expected)
            where record.value != message.value || record.key != message.key || record.timestamp != message.timestamp {
                Issue.record("partition \(partition) offset \(record.offset) differs from the topic")
                break
            }
            for message in expected {
                let position = LogPosition(partition: partition, offset: message.offset)
                if let event = try? parser.parse(message.value, kafkaKey: message.key) {
                    reference.apply(event, at: position)
                } else {
                    reference.skip(at: position)
                }
            }
        }
        return SHA256DigestText(reference.digest.hex)
    }
}

typealias SHA256DigestText = String
