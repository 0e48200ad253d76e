import ChatProjection
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Testing

/// The HTTP server as a service: listening once started, started once, and a failed bind
/// leaves nothing running.
@Suite("HTTPService")
struct HTTPServiceTests {
    static func api() throws -> QueryAPI {
        QueryAPI(store: ProjectionStore(), keys: KeyRing(try APIKeys(json: Array(#"{"keys":[]}"#.utf8))))
    }

    @Test("started in a group it listens on the port its url names; stopped, the port is closed")
    func listensWhileRunning() throws {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let service = HTTPService(api: try Self.api(), configuration: configuration)
        let group = ServiceGroup([service])
        try group.start()
        let port = try #require(UInt16(service.url.split(separator: ":").last.map(String.init) ?? ""))
        #expect(port != 0 && service.url == "http://127.0.0.1:\(port)")
        let client = try LoopbackClient(port: port)
        client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(client.readToEnd().hasPrefix("HTTP/1.1 200"))
        #expect(throws: ServiceLifecycle.IllegalTransition.self) { try service.start { _ in } }
        group.stop()
        #expect(throws: (any Error).self) { try LoopbackClient(port: port) }
    }

    @Test("a port in use fails the start with the server's error; the service is not running after")
    func portInUse() throws {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let first = HTTPService(api: try Self.api(), configuration: configuration)
        try first.start { _ in }
        defer { first.stop() }
        configuration.port = try #require(UInt16(first.url.split(separator: ":").last.map(String.init) ?? ""))
        let second = HTTPService(api: try Self.api(), configuration: configuration)
        #expect(throws: HTTPServer.StartError.self) { try ServiceGroup([second]).start() }
        second.stop()  // a no-op: it never ran
        #expect(throws: ServiceLifecycle.IllegalTransition.self) { try second.start { _ in } }
    }
}
