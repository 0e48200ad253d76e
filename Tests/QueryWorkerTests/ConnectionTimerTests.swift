#if canImport(Glibc)
import Glibc
#endif
import KafkaTestSupport
import QueryWorker
import Testing

/// The loop keeps its connections' timers in a heap by deadline and looks only at those
/// that come up. A timer that moves later (a kept-alive client that keeps asking) must not
/// fire at its old deadline, and one that moves earlier (a head that starts arriving on an
/// idle connection) must fire at its new one, with other connections' timers around.
@Suite("HTTPServer: connection timers by deadline")
struct ConnectionTimerTests {
    @Test("an active keep-alive outlives its first idle deadline; an idle one is closed; a started head gets 408 though its idle deadline is later")
    func timersFollowTheConnection() throws {
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.idleTimeoutMilliseconds = 400
        configuration.headerTimeoutMilliseconds = 200
        let server = HTTPServer(configuration: configuration) { head, _ in .response(HTTPResponse(status: 200, body: Array(head.target.utf8))) }
        let port = try server.start()
        defer { server.stop() }
        // Other connections, with timers of their own in the heap.
        let bystanders = try (0..<20).map { _ in try LoopbackClient(port: port) }
        defer { for client in bystanders { client.close() } }

        let idle = try LoopbackClient(port: port)
        let active = try LoopbackClient(port: port)
        defer {
            idle.close()
            active.close()
        }
        // Asks every 100 ms for 1 s: 2.5 idle timeouts, never idle for one.
        for round in 0..<10 {
            active.send("GET /\(round) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(active.readResponses(1).first?.hasSuffix("/\(round)") == true, "an active connection is answered in round \(round)")
            usleep(100_000)  // the spacing under test, not a wait for the server
        }
        #expect(idle.readToEnd().isEmpty, "the idle connection was closed without a response")

        // An idle connection whose head starts arriving: its 408 comes with the header timeout.
        let started = try LoopbackClient(port: port)
        defer { started.close() }
        started.send("GET /never HTTP/1.1\r\nHost: x\r\n")
        #expect(started.readToEnd().hasPrefix("HTTP/1.1 408 Request Timeout"))
        for client in bystanders { #expect(client.readToEnd().isEmpty, "bystanders idle out too") }
    }
}
