#if canImport(Glibc)
import Glibc
#endif
import ChatLedgerCLI
import Foundation
import KafkaTestSupport
import Testing

/// Key rotation without a restart: `run` (and `serve`) reload the keys file when it
/// changes and on SIGHUP; a broken file keeps the keys in force.
@Suite("Keys file reloaded without a restart")
struct KeyRotationTests {
    func status(_ port: UInt16, key: String, _ target: String = "/api/v1/status") throws -> Int {
        try HTTPAnswer.get(port, target, key: key).status
    }

    /// Polls until `condition` holds (a reload is asynchronous); false after `seconds`.
    func eventually(seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        try Polling.until(seconds: seconds, condition)
    }

    static func keysFile(_ keys: [String]) -> String {
        #"{"keys":["# + keys.map { #"{"key":"\#($0)","devices":["*"],"role":"reader"}"# }.joined(separator: ",") + "]}"
    }

    @Test("a key removed from the file stops working and a new one starts, without a restart; a broken file changes nothing; SIGHUP reloads; keys never appear in the log")
    func rotation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-rotation-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = directory + "/keys.json"
        let log = directory + "/run.log"
        try Self.keysFile(["old-key-1111"]).write(toFile: keys, atomically: true, encoding: .utf8)
        let run = try ServerProcess(
            executable: ChatLedgerProcess.executable,
            arguments: ["run", "--http", "127.0.0.1:0", "--data", directory + "/data", "--keys", keys], standardError: log)
        #expect(try status(run.port, key: "old-key-1111") == 200)
        #expect(try status(run.port, key: "new-key-2222") == 401)

        // Rotate: the file is replaced (as editors and Kubernetes do), the old key is gone.
        try Self.keysFile(["new-key-2222"]).write(toFile: keys, atomically: true, encoding: .utf8)
        #expect(try eventually { try status(run.port, key: "new-key-2222") == 200 }, "the new key works without a restart")
        #expect(try status(run.port, key: "old-key-1111") == 401, "the removed key stopped working")

        // A broken file is refused: the keys in force stay.
        try #"{"keys":[{"key":"third-key-3333","devices":[]"#.write(toFile: keys, atomically: true, encoding: .utf8)
        let logged = eventually { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("keys file not reloaded") }
        #expect(logged, "the refusal is logged")
        #expect(try status(run.port, key: "new-key-2222") == 200)
        #expect(try status(run.port, key: "third-key-3333") == 401)

        // SIGHUP reloads too (and no longer ends the process).
        try Self.keysFile(["fourth-key-4444"]).write(toFile: keys, atomically: true, encoding: .utf8)
        kill(run.processIdentifier, SIGHUP)
        #expect(try eventually { try status(run.port, key: "fourth-key-4444") == 200 })
        #expect(run.terminate() == 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("keys file reloaded"))
        for key in ["old-key-1111", "new-key-2222", "third-key-3333", "fourth-key-4444"] { #expect(!text.contains(key), "\(key) in the log") }
    }
}
