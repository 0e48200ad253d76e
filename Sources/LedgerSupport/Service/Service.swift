/// A long-running part of a process (ingest, the log follower, the HTTP server, the demo
/// producer), hosted by a `ServiceGroup`: started in order, stopped in reverse order.
package protocol Service: AnyObject, Sendable {
    /// A short name for log lines (`ingest`, `http`).
    var serviceName: String { get }

    /// Starts the work on the service's own named threads and returns once it runs (a
    /// server once it listens). A failure that ends the work later is reported through
    /// `onFailure`, once, from the service's thread.
    /// - Throws: when the service cannot start; nothing of it is left running then.
    func start(onFailure: @escaping @Sendable (any Error) -> Void) throws

    /// Ends the work and joins the service's threads. Idempotent; a no-op before `start`.
    func stop()
}
