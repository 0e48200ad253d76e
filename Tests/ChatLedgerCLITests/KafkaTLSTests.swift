import ChatLedgerCLI
import Foundation
import KafkaClient
import KafkaTestSupport
import Testing

/// TLS to Kafka, as far as these machines allow: librdkafka's mock cluster speaks plaintext
/// only, so it runs behind stunnel (Debian's `stunnel4`, installed by `deploy/local.sh test`)
/// with a certificate from a CA the test makes. The mock advertises its own plaintext
/// address in the metadata, so a client that trusts the CA completes the TLS handshake and
/// its bootstrap request, then fails at the advertised broker: what these tests can show is
/// that the file's TLS settings reach librdkafka (the handshake is verified against the CA
/// they name) and that a failed handshake ends ingest with a clear error. A full TLS session
/// needs a real broker.
@Suite("Kafka over TLS: the file's TLS settings reach librdkafka, a failed handshake ends ingest")
struct KafkaTLSTests {
    /// A CA and a server certificate for 127.0.0.1, and a second CA that did not sign it.
    struct Certificates {
        let directory: URL
        var ca: String { directory.appendingPathComponent("ca.pem").path }
        var otherCA: String { directory.appendingPathComponent("other-ca.pem").path }
        var serverCertificate: String { directory.appendingPathComponent("server.pem").path }
        var serverKey: String { directory.appendingPathComponent("server.key").path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("chatledger-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let d = directory.path
            try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem"])
            try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA", "-keyout", "\(d)/other-ca.key", "-out", "\(d)/other-ca.pem"])
            try Self.openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr"])
            try "subjectAltName=IP:127.0.0.1\n".write(toFile: "\(d)/san.ext", atomically: true, encoding: .utf8)
            try Self.openssl(["x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial", "-days", "2", "-extfile", "\(d)/san.ext", "-out", "\(d)/server.pem"])
        }

        static func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw TLSTestError("openssl \(arguments.first ?? "") failed") }
        }
    }

    struct TLSTestError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// stunnel terminating TLS on a loopback port and forwarding to the mock cluster.
    final class TLSProxy {
        let process = Process()
        let port: Int
        let log: String

        init(forwardingTo upstream: String, certificates: Certificates) throws {
            port = Int(try LoopbackPort.free())
            log = certificates.directory.appendingPathComponent("stunnel.log").path
            let configuration = certificates.directory.appendingPathComponent("stunnel.conf").path
            try """
                foreground = yes
                pid =
                output = \(log)
                debug = info
                [kafka]
                accept = 127.0.0.1:\(port)
                connect = \(upstream)
                cert = \(certificates.serverCertificate)
                key = \(certificates.serverKey)
                """.write(toFile: configuration, atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/stunnel4")
            process.arguments = [configuration]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            try awaitListening()
        }

        /// Polls until the port accepts a connection (stunnel binds after reading its files).
        private func awaitListening() throws {
            for _ in 0..<400 {
                guard process.isRunning else { throw TLSTestError("stunnel exited: \(logText)") }
                if Self.accepts(port) { return }
                usleep(25_000)
            }
            throw TLSTestError("stunnel did not listen on \(port)")
        }

        var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        static func accepts(_ port: Int) -> Bool {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(socket) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }

    }

    /// A mock cluster behind stunnel, with fresh certificates.
    static func mockBehindTLS() throws -> (Certificates, MockCluster, TLSProxy) {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/stunnel4"), "stunnel4 is installed by deploy/local.sh test")
        let certificates = try Certificates()
        let cluster = try MockCluster(topics: [("wa.device-events", 1)])
        return (certificates, cluster, try TLSProxy(forwardingTo: cluster.bootstrapServers, certificates: certificates))
    }

    /// Runs ingest against the TLS proxy with `properties` as its Kafka properties file.
    static func ingest(through proxy: TLSProxy, properties: String, in directory: URL) throws -> ChatLedgerProcess.Result {
        let file = directory.appendingPathComponent("kafka.properties").path
        try properties.write(toFile: file, atomically: true, encoding: .utf8)
        return try ChatLedgerProcess.run(
            ["ingest", "--brokers", "127.0.0.1:\(proxy.port)", "--data", directory.appendingPathComponent("data").path,
             "--kafka-config-file", file],
            killAfterSeconds: 120)
    }

    @Test("a CA that did not sign the broker's certificate: the handshake is refused, ingest ends with a clear authentication error, exit 1, in bounded time")
    func untrustedCertificateEndsIngest() throws {
        let (certificates, cluster, proxy) = try Self.mockBehindTLS()
        defer {
            proxy.stop()
            withExtendedLifetime(cluster) {}  // the mock lives until the proxy is gone
            try? FileManager.default.removeItem(at: certificates.directory)
        }

        let run = try Self.ingest(through: proxy, properties: "security.protocol=SSL\nssl.ca.location=\(certificates.otherCA)\n", in: certificates.directory)
        #expect(run.status == 1, "ingest fails (9 would be the watchdog): \(run.standardError.suffix(600))")
        #expect(run.standardError.contains("cannot authenticate with the Kafka cluster"), "\(run.standardError.suffix(600))")
        #expect(run.standardError.contains("certificate verify failed"), "the reason names the certificate: \(run.standardError.suffix(600))")
    }

    @Test("the CA that signed it: the TLS handshake through the proxy is verified and completes, and Kafka requests flow through it (the mock's plaintext advertised address then fails the next handshake, as a transport error ingest retries)")
    func trustedCertificateCompletesTheHandshake() throws {
        let (certificates, cluster, proxy) = try Self.mockBehindTLS()
        defer {
            proxy.stop()
            withExtendedLifetime(cluster) {}  // the mock lives until the proxy is gone
            try? FileManager.default.removeItem(at: certificates.directory)
        }
        let file = certificates.directory.appendingPathComponent("kafka.properties").path
        try "security.protocol=SSL\nssl.ca.location=\(certificates.ca)\n".write(toFile: file, atomically: true, encoding: .utf8)

        let ingest = try IngestProcess(
            brokers: "127.0.0.1:\(proxy.port)", data: certificates.directory.appendingPathComponent("data").path, group: "tls-handshake",
            extra: ["--kafka-config-file", file])
        // Awaits the proxy's record of a verified session forwarded to the mock, and ingest's
        // report of the advertised plaintext listener (bounded: a hang fails, it does not block).
        let deadline = ContinuousClock.now + .seconds(60)
        while ingest.process.isRunning, ContinuousClock.now < deadline,
            !(proxy.logText.contains("s_connect: connected") && ingest.standardError.contains("PLAINTEXT broker listener"))
        {
            usleep(50_000)
        }
        if ingest.process.isRunning { _ = ingest.terminate() }
        let standardError = ingest.standardError
        let log = proxy.logText
        #expect(log.contains("TLS accepted"), "stunnel completed a TLS handshake with ingest: \(log.suffix(800))")
        #expect(log.contains("s_connect: connected \(cluster.bootstrapServers)"), "and forwarded its requests to the mock: \(log.suffix(800))")
        #expect(!standardError.contains("certificate verify failed"), "the broker's certificate was trusted: \(standardError.suffix(600))")
        #expect(standardError.contains("connecting to a PLAINTEXT broker listener"),
                "the mock's advertised plaintext address is what ends the session: \(standardError.suffix(600))")
    }
}
