import ChatProjection
import Foundation
import KafkaTestSupport
import QueryWorker
import Testing

/// The console's three routes: served from the binary, with a strict Content-Security-Policy.
@Suite("QueryAPI: the console at /")
struct ConsoleRouteTests {
    func serve() throws -> (HTTPServer, UInt16) {
        let api = QueryAPI(store: ProjectionStore(), keys: KeyRing(try APIKeys(json: Array(#"{"keys":[{"key":"k","devices":["*"],"role":"reader"}]}"#.utf8))))
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let server = api.server(configuration: configuration)
        return (server, try server.start())
    }

    /// Head and body of one request on its own connection.
    func exchange(_ port: UInt16, _ request: String) throws -> (head: String, body: String) {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send(request)
        let text = client.readToEnd()
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func header(_ head: String, _ name: String) -> String? {
        head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { String($0.drop { $0 != ":" }.dropFirst()).trimmingCharacters(in: .whitespaces) }
    }

    @Test("/, /console.js and /console.css need no key, carry the CSP and nosniff, with their content types", arguments: [
        ("/", "text/html; charset=utf-8"), ("/console.js", "text/javascript; charset=utf-8"), ("/console.css", "text/css; charset=utf-8"),
    ])
    func assets(path: String, contentType: String) throws {
        let (server, port) = try serve()
        defer { server.stop() }
        let (head, body) = try exchange(port, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200 OK"))
        #expect(header(head, "Content-Type") == contentType)
        let policy = try #require(header(head, "Content-Security-Policy"))
        #expect(policy.contains("default-src 'none'"))
        #expect(policy.contains("script-src 'self'"))
        #expect(policy.contains("style-src 'self'"))
        #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"))
        #expect(header(head, "X-Content-Type-Options") == "nosniff")
        #expect(body.count > 100)
        // Served again with its ETag: 304, no body.
        let etag = try #require(header(head, "ETag"))
        let again = try exchange(port, "GET \(path) HTTP/1.1\r\nHost: x\r\nIf-None-Match: \(etag)\r\nConnection: close\r\n\r\n")
        #expect(again.head.hasPrefix("HTTP/1.1 304"))
        #expect(again.body.isEmpty)
    }

    @Test("the page has no inline script, style or event handler: everything comes from /console.js and /console.css")
    func noInlineCode() throws {
        let (server, port) = try serve()
        defer { server.stop() }
        let page = try exchange(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").body
        #expect(page.contains(#"<script src="/console.js" defer></script>"#))
        #expect(page.contains(#"<link rel="stylesheet" href="/console.css">"#))
        #expect(page.components(separatedBy: "<script").count == 2, "one script element, with src")
        #expect(!page.contains("<style") && !page.contains("style="), "no inline style")
        #expect(page.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil, "no inline event handler")
        let script = try exchange(port, "GET /console.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").body
        #expect(!script.contains("innerHTML") && !script.contains("insertAdjacentHTML") && !script.contains("eval("))
        #expect(!script.contains("new EventSource"), "the key goes in a header, which EventSource cannot send")
    }

    @Test("HEAD is GET without the body, so the next response on the connection starts where it should; POST is 405 with Allow: GET, HEAD")
    func otherMethods() throws {
        let (server, port) = try serve()
        defer { server.stop() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = client.readUntil("\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(header(head, "Content-Type")?.hasPrefix("text/html") == true, "the head GET would have")
        #expect(head.hasSuffix("\r\n\r\n"), "nothing after the head")
        client.send("POST /console.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /console.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let rest = client.readToEnd()
        #expect(rest.hasPrefix("HTTP/1.1 405"), "no stray body of the HEAD answer before it")
        #expect(header(rest, "Allow") == "GET, HEAD")
        let responses = LoopbackClient.split(rest)
        #expect(responses.count == 2)
        #expect(responses.last?.hasPrefix("HTTP/1.1 200") == true)
    }

    @Test("other paths are still JSON 404s, also near the console's")
    func otherPaths() throws {
        let (server, port) = try serve()
        defer { server.stop() }
        for path in ["/console", "/index.html", "/console.js/x", "/api/v1"] {
            let (head, body) = try exchange(port, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(head.hasPrefix("HTTP/1.1 404"), "\(path)")
            #expect(body.contains(#""code":"not_found""#), "\(path)")
        }
    }
}
