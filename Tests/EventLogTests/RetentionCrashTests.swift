#if canImport(Glibc)
import Glibc
#endif
import EventLog
import Foundation
import KafkaTestSupport
import Testing

/// A writer process applying retention after every synced batch (`LogCrashWriter` with
/// `LOG_CRASH_RETAIN_BYTES`) is SIGKILLed at random moments, many of them inside a
/// segment removal: the log must verify from its retention base after each kill.
@Suite("Retention under SIGKILL")
struct RetentionCrashTests {
    @Test("30 SIGKILLs while retention removes segments: the log verifies from its base, records are contiguous from it, leftovers go on the next run")
    func sigkillDuringRemoval() throws {
        let data = TemporaryDirectory("retain-crash")
        defer { data.remove() }
        let log = EventLog(dataDirectory: data.path)
        let directory = log.directory(topic: "crash", partition: 0)
        var random = SystemRandomNumberGenerator()
        var lastBase: Int64 = 0
        var removals = 0
        for kill in 0..<30 {
            let process = Process()
            process.executableURL = ChatLedgerProcess.builtProduct("LogCrashWriter")
            process.arguments = [directory, "batch", "20", "4096"]
            process.environment = ["LOG_CRASH_RETAIN_BYTES": "40000"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            var lines = ChildLineReader(descriptor: output.fileHandleForReading.fileDescriptor)
            _ = lines.nextLine()
            for _ in 0..<Int.random(in: 2...12, using: &random) {
                guard let line = lines.nextLine() else { break }
                if line.hasPrefix("retained "), let base = Int64(line.dropFirst("retained ".count)) {
                    if base > lastBase { removals += 1 }
                    lastBase = max(lastBase, base)
                }
            }
            usleep(UInt32.random(in: 0...2_000, using: &random))  // picks the kill moment; not a synchronisation
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)

            // Recovery (the writer truncates a torn tail), then the log verifies from its base.
            _ = try PartitionWriter(directory: directory, topic: "crash", partition: 0)
            let verification = try LogVerifier.verify(log)
            #expect(verification.isClean, "kill \(kill): \(verification.problems)")
            let base = try log.retentionBase(topic: "crash", partition: 0)
            let records = try PartitionReader(directory: directory, topic: "crash", partition: 0).records()
            let first = base?.baseOffset ?? 0
            #expect(records.map(\.offset) == Array(first..<(first + Int64(records.count))), "kill \(kill): contiguous from the base")
        }
        #expect(removals > 5, "retention ran between the kills")
        // The next run removes what an interrupted one left behind.
        let outcome = try LogRetention(policy: RetentionPolicy(maxBytes: 40_000)).enforce(
            directory: directory, topic: "crash", partition: 0, keepAfter: .max, now: 0)
        let base = try #require(outcome.base)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }
        #expect(names.allSatisfy { Int64($0.dropLast(4)).map { $0 >= base.baseOffset } ?? false }, "\(names)")
        #expect(log.bytesOnDisk(topic: "crash", partition: 0) <= 40_000 + 4_096 + 200)
        #expect(try LogVerifier.verify(log).isClean)
    }
}
