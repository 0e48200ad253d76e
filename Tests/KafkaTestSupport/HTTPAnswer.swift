import Foundation

/// One HTTP/1.1 answer read over a fresh loopback connection (`Connection: close`), for
/// the tests that drive a live server: the one request helper they share.
public struct HTTPAnswer: CustomStringConvertible {
    /// The status code; -1 when the answer has no status line.
    public var status: Int
    /// The status line and header lines as received (the whole answer if it has no blank line).
    public var head: String
    /// Header values by lowercased name.
    public var headers: [String: String]
    /// What follows the blank line after the head.
    public var body: String

    /// The body as a JSON object; empty when it is not one.
    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }

    public var description: String { head + "\r\n\r\n" + body }

    /// Reads an answer as received.
    public init(_ raw: String) {
        status = Int(raw.split(separator: " ").dropFirst().first ?? "") ?? -1
        guard let end = raw.range(of: "\r\n\r\n") else {
            head = raw
            headers = [:]
            body = ""
            return
        }
        head = String(raw[..<end.lowerBound])
        body = String(raw[end.upperBound...])
        headers = [:]
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }

    /// `GET target` on 127.0.0.1:`port`, with `x-api-key: key` when a key is given.
    public static func get(_ port: UInt16, _ target: String, key: String? = nil) throws -> HTTPAnswer {
        try request(port, "GET", target, key: key)
    }

    /// One request on 127.0.0.1:`port`: a POST carries `body` with its length (and a JSON
    /// content type when it is not empty); `headers` are added as given ("Name: value").
    public static func request(
        _ port: UInt16, _ method: String, _ target: String, key: String? = nil, body: String = "", headers: [String] = []
    ) throws -> HTTPAnswer {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: x\r\n"
        if let key { head += "x-api-key: \(key)\r\n" }
        head += "Connection: close\r\n"
        if method == "POST" { head += "Content-Length: \(body.utf8.count)\r\n" + (body.isEmpty ? "" : "Content-Type: application/json\r\n") }
        for header in headers { head += header + "\r\n" }
        client.send(head + "\r\n" + body)
        return HTTPAnswer(client.readToEnd())
    }
}
