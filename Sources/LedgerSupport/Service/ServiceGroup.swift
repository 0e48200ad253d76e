import Synchronization

/// The services of one process and its one shutdown path: `run` starts them in order,
/// waits until a termination signal arrives or any service fails, then stops them in
/// reverse order, so a service is stopped before those it was started after (the
/// follower before the server it wakes, ingest before the server reading its store).
package final class ServiceGroup: Sendable {
    /// Why the wait ended.
    package enum Shutdown: Sendable {
        /// SIGINT or SIGTERM arrived (its number).
        case signal(Int32)
        /// A service failed: which, and why.
        case failure(ServiceFailure)
        /// `shutdown()` was called.
        case requested
    }

    /// The error that ended a service's work, with the service's name.
    package struct ServiceFailure: Error, Sendable, CustomStringConvertible {
        /// The service's `serviceName`.
        package let service: String
        /// What it reported.
        package let error: any Error

        package var description: String { "\(service): \(error)" }
    }

    private let services: [any Service]
    private let reason = Mutex<Shutdown?>(nil)
    private let finished = Semaphore()
    private let started = Mutex<Int>(0)

    /// A group of `services`, started in this order.
    package init(_ services: [any Service]) {
        self.services = services
    }

    /// Starts every service in order. If one cannot start, those already started are
    /// stopped in reverse order and its error is thrown.
    package func start() throws {
        for service in services {
            do {
                let name = service.serviceName
                try service.start { [self] error in shutdown(.failure(ServiceFailure(service: name, error: error))) }
            } catch {
                stop()
                throw error
            }
            started.withLock { $0 += 1 }
        }
    }

    /// Ends the wait of `waitForShutdown` (the first reason given is kept).
    package func shutdown(_ cause: Shutdown = .requested) {
        let first = reason.withLock { reason in
            guard reason == nil else { return false }
            reason = cause
            return true
        }
        if first { finished.signal() }
    }

    /// Blocks until `shutdown` (a signal, when `signals` is given, or a failed service).
    package func waitForShutdown(signals: TerminationSignal? = nil) -> Shutdown {
        signals?.onSignal { [self] number in shutdown(.signal(number)) }
        finished.wait()
        finished.signal()  // later waiters return at once
        return reason.withLock { $0 } ?? .requested
    }

    /// Stops the started services in reverse order, each joined before the next stops.
    package func stop() {
        let count = started.withLock { count in
            defer { count = 0 }
            return count
        }
        for service in services.prefix(count).reversed() { service.stop() }
    }

    /// Waits for a signal or a failure, then stops every service; a service's failure is
    /// thrown (the command reports it and exits 1), a signal returns its number.
    /// - Throws: `ServiceFailure`.
    @discardableResult
    package func runUntilShutdown(signals: TerminationSignal?) throws(ServiceFailure) -> Int32? {
        let cause = waitForShutdown(signals: signals)
        stop()
        switch cause {
        case .signal(let number): return number
        case .failure(let failure): throw failure
        case .requested: return nil
        }
    }
}
