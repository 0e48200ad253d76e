#if canImport(Glibc)
import Glibc
#endif
import EventLog
import Foundation
import KafkaTestSupport
import Testing

/// A real writer process (`LogCrashWriter`) is SIGKILLed at random moments; after each
/// kill the log must hold every acknowledged record byte for byte, show no partial
/// record, verify, and accept appends again.
@Suite("Crash safety under SIGKILL")
struct CrashTests {
    static let configurations: [(policy: String, batchSize: Int)] = [
        ("batch", 1), ("batch", 10), ("batch", 100), ("always", 5), ("every:2", 20), ("never", 50),
    ]

    @Test("60 SIGKILLs across batch sizes and fsync policies: no acknowledged record lost, none partial, the chain verifies, appends continue")
    func sigkillAtRandomMoments() throws {
        let data = TemporaryDirectory("crash")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let partitionDirectory = log.directory(topic: "crash", partition: 0)
        var acknowledged: Int64 = -1
        var random = SystemRandomNumberGenerator()

        for kill in 0..<60 {
            let configuration = Self.configurations[kill % Self.configurations.count]
            let process = Process()
            process.executableURL = ChatLedgerProcess.builtProduct("LogCrashWriter")
            process.arguments = [partitionDirectory, configuration.policy, String(configuration.batchSize), "65536"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            var lines = ChildLineReader(descriptor: output.fileHandleForReading.fileDescriptor)

            // The child recovers on open: what it reports must already include every acknowledged record.
            let firstLine = lines.nextLine()
            let opened = try #require(firstLine, "the writer did not start")
            let openedAt = Int64(opened.dropFirst("open ".count)) ?? -2
            #expect(openedAt >= acknowledged, "kill \(kill): reopened at \(openedAt), below acknowledged \(acknowledged)")

            // Let it acknowledge a random number of syncs, then kill it at a random moment after.
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                guard let line = lines.nextLine(), line.hasPrefix("synced ") else { break }
                acknowledged = max(acknowledged, Int64(line.dropFirst("synced ".count)) ?? acknowledged)
            }
            usleep(UInt32.random(in: 0...3_000, using: &random))  // picks the kill moment; not a synchronisation
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)

            // Before recovery: a reader sees only whole records, contiguous from 0.
            let seen = try PartitionReader(directory: partitionDirectory, topic: "crash", partition: 0).records()
            #expect(seen.map(\.offset) == Array(0..<Int64(seen.count)), "kill \(kill): records are contiguous")
            #expect(Int64(seen.count) - 1 >= acknowledged, "kill \(kill): acknowledged \(acknowledged), readable \(seen.count)")

            // Recovery keeps every acknowledged record byte for byte.
            let writer = try PartitionWriter(directory: partitionDirectory, topic: "crash", partition: 0)
            let last = writer.lastOffset ?? -1
            #expect(last >= acknowledged)
            let records = try PartitionReader(directory: partitionDirectory, topic: "crash", partition: 0).records()
            #expect(records.count == Int(last + 1))
            for record in records where record.value != expectedValue(offset: record.offset) {
                Issue.record("kill \(kill): record \(record.offset) is not byte-identical")
                break
            }
            if kill % 10 == 9 {
                let verification = try LogVerifier.verify(log)
                #expect(verification.isClean, "kill \(kill): \(verification.problems)")
            }
        }
        // Appending continues after the last crash.
        let writer = try PartitionWriter(directory: partitionDirectory, topic: "crash", partition: 0)
        let next = (writer.lastOffset ?? -1) + 1
        try writer.append([LogRecord(offset: next, key: nil, value: expectedValue(offset: next))])
        #expect(try LogVerifier.verify(log).isClean)
        #expect(acknowledged > 100, "the writers made progress")
    }
}
