#if canImport(Glibc)
import Glibc
#endif

/// Waiting in tests for a condition another thread or process makes true: polled, with a
/// deadline, so a broken server fails the test instead of hanging it.
public enum Polling {
    /// Thrown by `waitUntil` when the deadline passes.
    public struct Timeout: Error, CustomStringConvertible {
        public var description: String
    }

    /// Polls `condition` every `interval` until it holds or `seconds` pass; whether it held
    /// (checked once more at the deadline).
    public static func until(
        seconds: Double, every interval: Duration = .milliseconds(20), _ condition: () throws -> Bool
    ) rethrows -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            let (whole, attoseconds) = interval.components
            usleep(useconds_t(whole * 1_000_000 + attoseconds / 1_000_000_000_000))
        }
        return try condition()
    }

    /// `until`, throwing `Timeout` ("timed out waiting until `what`") if it never held.
    public static func waitUntil(
        _ what: String, seconds: Double = 60, every interval: Duration = .milliseconds(20), _ condition: () throws -> Bool
    ) throws {
        guard try until(seconds: seconds, every: interval, condition) else { throw Timeout(description: "timed out waiting until \(what)") }
    }
}
