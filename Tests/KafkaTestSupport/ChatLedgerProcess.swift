import Foundation

/// Runs the built `chatledger` binary as a real child process.
public enum ChatLedgerProcess {
    public struct Result: Sendable {
        public var status: Int32
        public var standardOutput: String
        public var standardError: String
    }

    /// The `chatledger` executable next to the running test bundle (`swift build` puts it there).
    public static var executable: URL { builtProduct("chatledger") }

    /// An executable this package builds, next to the running test bundle.
    public static func builtProduct(_ name: String) -> URL {
        let testBinary = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        return testBinary.deletingLastPathComponent().appendingPathComponent(name)
    }

    /// Runs `chatledger arguments…` to completion and captures its output.
    /// - Parameters:
    ///   - environment: added to this process's environment for the child.
    ///   - killAfterSeconds: a child still running then is killed (SIGKILL, status 9), so a
    ///     test of "ends in bounded time" fails instead of hanging.
    public static func run(
        _ arguments: [String], standardInput: Data? = nil, environment: [String: String] = [:], killAfterSeconds: Double? = nil
    ) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let killAfterSeconds {
            let pid = process.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + killAfterSeconds) { [process] in
                if process.isRunning { kill(pid, SIGKILL) }
            }
        }
        if let standardInput { input.fileHandleForWriting.write(standardInput) }
        try input.fileHandleForWriting.close()
        // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
        let errorData = Box()
        let errorRead = DispatchSemaphore(value: 0)
        Thread {
            errorData.data = error.fileHandleForReading.readDataToEndOfFile()
            errorRead.signal()
        }.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errorRead.wait()
        return Result(
            status: process.terminationStatus, standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData.data, as: UTF8.self))
    }

    private final class Box: @unchecked Sendable {
        // SAFETY: written by the reader thread before it signals; read only after the wait.
        var data = Data()
    }
}
