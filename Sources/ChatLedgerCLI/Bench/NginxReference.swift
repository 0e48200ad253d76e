#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// nginx serving one file, as the reference `bench http` measures the query worker against:
/// the same bytes, one worker process, no access log. Started from a configuration in a
/// temporary directory; nil (with the reason) when nginx is not installed and cannot be.
final class NginxReference {
    let port: UInt16
    /// The path that serves the file.
    let target = "/chats.json"
    private let process: Process
    private let directory: String

    /// Why the reference could not be started, for the report's notes.
    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    init(serving body: [UInt8]) throws {
        guard let executable = Self.executable() else {
            throw Unavailable(description: "nginx is not installed and could not be (apt-get install nginx-light)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-nginx-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(body).write(to: URL(fileURLWithPath: directory + target))
        port = try LoopbackPort.free()
        let configuration = """
            daemon off; master_process off; worker_processes 1;
            pid \(directory)/nginx.pid; error_log \(directory)/error.log;
            events { worker_connections 1024; }
            http {
              access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
              server {
                listen 127.0.0.1:\(port);
                location / { root \(directory); default_type application/json; }
              }
            }
            """
        try configuration.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", directory + "/nginx.conf", "-p", directory, "-e", directory + "/error.log"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready once it accepts a connection (a bounded number of tries).
        for _ in 0..<200 {
            if (try? HTTPLoadClient(port: port)) != nil { return }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        stop()
        throw Unavailable(description: "nginx did not start (see its error log)")
    }

    var processIdentifier: Int32 { process.processIdentifier }

    func stop() {
        if process.isRunning {
            // SIGKILL: a child started from a thread with SIGTERM blocked (as chatledger's
            // are, for its own signal handling) inherits the block, and nginx then ignores
            // SIGTERM. The reference keeps nothing worth a graceful stop.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// nginx's path, installing nginx-light through apt when it is missing and we are root.
    private static func executable() -> String? {
        let candidates = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get") else { return nil }
        let install = Process()
        install.executableURL = URL(fileURLWithPath: "/usr/bin/apt-get")
        install.arguments = ["install", "-y", "-qq", "--no-install-recommends", "nginx-light"]
        install.environment = ["DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        install.standardOutput = FileHandle.nullDevice
        install.standardError = FileHandle.nullDevice
        guard (try? install.run()) != nil else { return nil }
        install.waitUntilExit()
        return candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    }

    /// Keeps every thread of `pid` on the CPUs `cores` (a `taskset` list such as "0"), so
    /// that each server under test has one core; false when that cannot be done.
    static func pin(_ pid: Int32, cores: String) -> Bool {
        let taskset = Process()
        taskset.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        taskset.arguments = ["-a", "-p", "-c", cores, String(pid)]
        taskset.standardOutput = FileHandle.nullDevice
        taskset.standardError = FileHandle.nullDevice
        guard (try? taskset.run()) != nil else { return false }
        taskset.waitUntilExit()
        return taskset.terminationStatus == 0
    }
}
