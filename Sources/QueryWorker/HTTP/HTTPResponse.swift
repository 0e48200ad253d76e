/// A response to write: status, headers, body.
package struct HTTPResponse: Sendable, Equatable {
    package var status: HTTPStatus
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]
    /// The answer to `HEAD` on a stream route: GET's head, whose body would run until the
    /// connection closes, so no `Content-Length` and `Connection: close` (the server closes).
    package var bodyRunsToClose = false

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
        var bytes: [UInt8] = []
        encode(into: &bytes, keepAlive: keepAlive, omitBody: omitBody)
        return bytes
    }

    /// Appends the bytes on the wire (as `encoded`) to `bytes`: one buffer, sized once, and
    /// no `String` built on the way.
    func encode(into bytes: inout [UInt8], keepAlive: Bool, omitBody: Bool = false) {
        var size = 64 + (omitBody ? 0 : body.count)
        for (name, value) in headers { size += name.utf8.count + value.utf8.count + 4 }
        bytes.reserveCapacity(bytes.count + size)
        appendStatusLine(&bytes)
        for (name, value) in headers { Self.appendField(&bytes, name, value) }
        // A 304 or 204 has no content and says no length (RFC 9110 §8.6); nor does the head
        // of a stream, whose GET body runs until the connection closes.
        if !bodyRunsToClose && status.rawValue != 304 && status.rawValue != 204 {
            bytes.append(contentsOf: Self.contentLengthName)
            Self.appendDecimal(&bytes, body.count)
            bytes.append(contentsOf: Self.crlf)
        }
        if !keepAlive || bodyRunsToClose { bytes.append(contentsOf: Self.connectionClose) }
        bytes.append(contentsOf: Self.crlf)
        if !omitBody { bytes.append(contentsOf: body) }
    }

    /// The head of a response whose body runs until the connection closes (a stream):
    /// no `Content-Length`, and `Connection: close` to say where the body ends.
    func encodedStreamHead() -> [UInt8] {
        var head = self
        head.bodyRunsToClose = true
        return head.encoded(keepAlive: false, omitBody: true)
    }

    private static let crlf: [UInt8] = [0x0D, 0x0A]
    private static let contentLengthName = Array("Content-Length: ".utf8)
    private static let connectionClose = Array("Connection: close\r\n".utf8)

    private func appendStatusLine(_ bytes: inout [UInt8]) {
        bytes.append(contentsOf: "HTTP/1.1 ".utf8)
        Self.appendDecimal(&bytes, status.rawValue)
        bytes.append(0x20)
        bytes.append(contentsOf: status.reasonPhrase.utf8)
        bytes.append(contentsOf: Self.crlf)
    }

    private static func appendField(_ bytes: inout [UInt8], _ name: String, _ value: String) {
        bytes.append(contentsOf: name.utf8)
        bytes.append(contentsOf: ": ".utf8)
        bytes.append(contentsOf: value.utf8)
        bytes.append(contentsOf: crlf)
    }

    /// A non-negative integer in decimal.
    static func appendDecimal(_ bytes: inout [UInt8], _ value: Int) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var remaining = value.magnitude
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(remaining % 10) + 0x30
                remaining /= 10
                count += 1
            } while remaining > 0
            if value < 0 {
                buffer[19 - count] = UInt8(ascii: "-")
                count += 1
            }
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }
}
