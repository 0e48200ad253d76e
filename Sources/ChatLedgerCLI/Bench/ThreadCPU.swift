#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// CPU time of a process and of its threads by thread name (`/proc/PID/stat`,
/// `/proc/PID/task/*/stat`), to see what competes for the cores during a measurement.
struct ThreadCPU {
    /// Seconds of user + system time per thread name (threads of one name summed).
    var seconds: [String: Double] = [:]
    /// Seconds of the whole process, threads that have ended included.
    var total = 0.0

    /// The process `pid` and its threads now; zero if it cannot be read.
    init(pid: Int32) {
        total = Self.seconds(stat: "/proc/\(pid)/stat")?.seconds ?? 0
        let tasks = "/proc/\(pid)/task"
        for task in (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? [] {
            guard let (name, seconds) = Self.seconds(stat: "\(tasks)/\(task)/stat") else { continue }
            self.seconds[name, default: 0] += seconds
        }
    }

    private init(seconds: [String: Double], total: Double) {
        self.seconds = seconds
        self.total = total
    }

    /// The name and user + system seconds in a `stat` file.
    private static func seconds(stat path: String) -> (name: String, seconds: Double)? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the name: state, ppid, … utime is the 12th field, stime the 13th.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (String(stat[stat.index(after: open)..<close]), (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// CPU seconds spent between `earlier` and this (threads that ended meanwhile count in
    /// `total` only).
    func since(_ earlier: ThreadCPU) -> ThreadCPU {
        ThreadCPU(
            seconds: seconds.merging(earlier.seconds.mapValues { -$0 }) { $0 + $1 }.filter { $0.value > 0 }, total: total - earlier.total)
    }

    /// The busiest thread names with their share of one core over `wall` seconds.
    func busiest(_ count: Int, over wall: Double) -> String {
        seconds.sorted { $0.value > $1.value }.prefix(count)
            .map { "\($0.key) \(Int(($0.value / wall * 100).rounded())) %" }.joined(separator: ", ")
    }
}
