/// A response to write: status, headers, body.
package struct HTTPResponse: Sendable, Equatable {
    package var status: HTTPStatus
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]

    package init(status: HTTPStatus, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The JSON error body of SPEC §4: `{"error":{"code":…,"message":…}}`.
    package static func error(_ status: HTTPStatus, code: String, message: String) -> HTTPResponse {
        var text = "{\"error\":{\"code\":\"" + code + "\",\"message\":\""
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            default: text += scalar.value < 0x20 ? " " : String(scalar)
            }
        }
        text += "\"}}"
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(text.utf8))
    }

    package static func == (lhs: HTTPResponse, rhs: HTTPResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body && lhs.headers.elementsEqual(rhs.headers) { $0 == $1 }
    }

    /// The bytes on the wire, with `Content-Length` and `Connection` set. The answer to a
    /// `HEAD` request (`omitBody`) has the same head and no body (RFC 9110 §9.3.2), so the
    /// next response on a kept-alive connection starts where the client expects it.
    func encoded(keepAlive: Bool, omitBody: Bool = false) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(status.reasonPhrase)\r\n"
        for (name, value) in headers { head += name + ": " + value + "\r\n" }
        head += "Content-Length: \(body.count)\r\n"
        head += keepAlive ? "" : "Connection: close\r\n"
        head += "\r\n"
        return omitBody ? Array(head.utf8) : Array(head.utf8) + body
    }

    /// The head of a response whose body runs until the connection closes (a stream):
    /// no `Content-Length`, and `Connection: close` to say where the body ends.
    func encodedStreamHead() -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(status.reasonPhrase)\r\n"
        for (name, value) in headers { head += name + ": " + value + "\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8)
    }
}
