import LedgerSupport
import Synchronization

/// The query worker's HTTP server as a `Service`: `start` binds and listens (a port in
/// use fails the start), `stop` drains and joins its threads. Hosted after the services
/// that only read the store and before those that wake it, so it is stopped after them.
package final class HTTPService: Service {
    package let serviceName = "http"
    /// The server; `wake()` it when what parked queries wait for may have happened.
    package let server: HTTPServer
    private let host: String
    private let lifecycle = Mutex<(state: ServiceLifecycle, port: UInt16)>((.idle, 0))

    /// The server for `api` under `configuration` (`port` 0: any free port).
    package init(api: QueryAPI, configuration: HTTPServer.Configuration) {
        self.server = api.server(configuration: configuration)
        self.host = configuration.host
    }

    /// `http://HOST:PORT` once started (the port it listens on).
    package var url: String { "http://\(host):\(lifecycle.withLock { $0.port })" }

    /// Binds, listens and starts the server's threads.
    /// - Throws: `HTTPServer.StartError` (address in use, not IPv4), or
    ///   `ServiceLifecycle.IllegalTransition` if it was started before.
    package func start(onFailure: @escaping @Sendable (any Error) -> Void) throws {
        try lifecycle.withLock { lifecycle throws(ServiceLifecycle.IllegalTransition) in try lifecycle.state.start() }
        do {
            let port = try server.start()
            lifecycle.withLock { $0.port = port }
        } catch {
            _ = lifecycle.withLock { $0.state.stop() }
            throw error
        }
    }

    /// Stops accepting, drains, closes every connection and joins the server's threads.
    package func stop() {
        guard lifecycle.withLock({ $0.state.stop() }) else { return }
        server.stop()
    }
}
