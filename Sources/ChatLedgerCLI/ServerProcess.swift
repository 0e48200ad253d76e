import Foundation

/// `chatledger run` or `serve` as a child process, with the addresses it prints first
/// (`bootstrap=…` for an embedded broker, then `url=…`). Used by `bench http` and by the
/// tests that drive real servers.
package final class ServerProcess: @unchecked Sendable {
    // SAFETY: `process` is only started in `init` and ended in `terminate`; Foundation's
    // `Process` is safe to query and terminate from any thread.
    private let process = Process()
    /// The embedded broker's bootstrap address (empty for `serve` or `run --brokers`).
    package let brokers: String
    /// The HTTP port it listens on (loopback).
    package let port: UInt16

    /// Starts `executable` with `arguments` and reads its stdout up to the `url=` line;
    /// its log lines (stderr) go to the file `standardError`, or nowhere.
    /// - Throws: if it cannot start or ends before printing its URL.
    package init(executable: URL, arguments: [String], standardError: String? = nil) throws {
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        if let standardError {
            _ = FileManager.default.createFile(atPath: standardError, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: standardError))
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        var brokers = ""
        var port: UInt16 = 0
        var line = Data()
        while port == 0, let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty {
            guard byte == Data("\n".utf8) else {
                line.append(byte)
                continue
            }
            let text = String(decoding: line, as: UTF8.self)
            if text.hasPrefix("bootstrap=") { brokers = String(text.dropFirst(10)) }
            if text.hasPrefix("url=") { port = UInt16(text.split(separator: ":").last ?? "") ?? 0 }
            line = Data()
        }
        self.brokers = brokers
        self.port = port
        guard port != 0 else {
            _ = terminate()
            throw ServerProcessError(description: "chatledger \(arguments.first ?? "") ended before printing its URL")
        }
    }

    /// Its process id (for signals).
    package var processIdentifier: Int32 { process.processIdentifier }

    /// Its resident memory (`VmRSS`), nil once it has ended.
    package var residentBytes: Int? {
        guard process.isRunning, let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    /// SIGTERM and wait; the exit status.
    package func terminate() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    deinit { _ = terminate() }
}

/// A server child that could not be started.
package struct ServerProcessError: Error, CustomStringConvertible {
    package var description: String
}
