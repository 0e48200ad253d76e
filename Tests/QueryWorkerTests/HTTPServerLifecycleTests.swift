#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Synchronization
import Testing

/// The server's descriptors across its life: nothing is written to a wake pipe after it is
/// closed, and a server starts once.
@Suite("HTTPServer lifecycle")
struct HTTPServerLifecycleTests {
    @Test("a second start() is refused: the first loop keeps its own wake pipe and still answers and stops")
    func startsOnce() throws {
        let (server, port) = try HTTPServerTests.server()
        defer { server.stop() }
        // Today's code took a second pipe and a second loop here; the first loop, when it
        // ended, closed the second's write end, a number a later file could hold.
        #expect(throws: HTTPServer.StartError.self) { try server.start() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(client.readResponses(1).first?.hasSuffix("you asked for /after") == true)
    }

    @Test("a stopped server does not start again")
    func noRestart() throws {
        let (server, _) = try HTTPServerTests.server()
        server.stop()
        #expect(throws: HTTPServer.StartError.self) { try server.start() }
        server.stop()  // and stopping twice is harmless
    }

    @Test("deferred work that ends after the drain wakes nothing: descriptors opened since are untouched")
    func lateDeferredWorkWritesNowhere() throws {
        let release = Semaphore()
        let started = Semaphore()
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let server = HTTPServer(configuration: configuration) { _, _ in
            .deferred {
                started.signal()
                release.wait()  // an auditor replay still running when stop() has drained the loop
                return HTTPResponse(status: 200, body: Array("late".utf8))
            }
        }
        let port = try server.start()
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /replay HTTP/1.1\r\nHost: x\r\n\r\n")
        started.wait()
        let stopped = Semaphore()
        Thread {
            server.stop()
            stopped.signal()
        }.start()
        // The loop ends after its drain closes the connection (the end of stream here); its
        // descriptors are then free, and pipes opened now may take their numbers. The worker
        // then finishes and wakes the server.
        _ = client.readToEnd()
        let reused = (0..<8).compactMap { _ -> (read: Int32, write: Int32)? in
            var ends: [Int32] = [-1, -1]
            guard pipe(&ends) == 0 else { return nil }
            _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
            return (ends[0], ends[1])
        }
        defer { for ends in reused { close(ends.read); close(ends.write) } }
        #expect(reused.count == 8, "the pipes that could take the server's descriptor numbers were opened")
        release.signal()
        stopped.wait()
        server.wake()
        for ends in reused {
            var byte: UInt8 = 0
            #expect(read(ends.read, &byte, 1) == -1, "a byte reached descriptor \(ends.write)")
        }
    }
}
