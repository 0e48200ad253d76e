/// A request head as the parser accepted it.
package struct HTTPRequestHead: Sendable, Equatable {
    package enum Version: Sendable, Equatable {
        case http10, http11
    }

    package var method: String
    /// The origin-form target, `/path?query`, as sent.
    package var target: String
    package var version: Version
    /// Header fields in order; names lower-cased, values without surrounding whitespace.
    package var headers: [Header]
    /// Body bytes announced by `Content-Length` (0 without one).
    package var contentLength: Int
    /// Whether the connection stays open after the response (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    package var keepAlive: Bool

    package struct Header: Sendable, Equatable {
        package var name: String
        package var value: String
    }

    /// The first value of a header (name in any case).
    package func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name == lowered }?.value
    }

    /// The path part of the target.
    package var path: Substring { target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0] }

    /// The query part of the target, empty when there is none.
    package var query: Substring {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count > 1 ? parts[1] : ""
    }
}

/// Why a request was refused: the status to answer with (the connection is closed after).
package struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package var status: HTTPStatus
    package var reason: String

    package init(_ status: HTTPStatus, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    package var description: String { "\(status): \(reason)" }
}

/// A strict HTTP/1.1 request parser (RFC 9112), over whatever bytes a connection has
/// received so far. Refuses rather than guesses: bare LF, whitespace before a colon,
/// obs-fold, invalid characters, `Content-Length` with `Transfer-Encoding`, duplicate or
/// invalid `Content-Length`, a missing `Host` in HTTP/1.1, and every limit exceeded.
package struct HTTPRequestParser: Sendable {
    package struct Limits: Sendable {
        /// 414 beyond this.
        package var requestLineBytes = 8 * 1024
        /// 431 beyond these.
        package var headerBytes = 32 * 1024
        package var headerCount = 100
        /// 413 beyond this. The API's bodies are small JSON objects (the write routes take at
        /// most 4 KiB); a connection never buffers more than this for a body.
        package var bodyBytes = 64 * 1024

        package init() {}
    }

    package enum Outcome: Sendable, Equatable {
        /// More bytes are needed.
        case incomplete
        /// A whole request, and how many bytes of the input it used (pipelining: the rest
        /// is the next request).
        case request(HTTPRequestHead, body: [UInt8], consumed: Int)
        case failure(HTTPParseError)
    }

    package var limits: Limits

    package init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Parses the request at the start of `bytes`.
    package func parse(_ bytes: [UInt8]) -> Outcome {
        // The head ends at the first empty line; every LF must follow a CR.
        var lineStart = 0
        var lines: [Range<Int>] = []
        var index = 0
        var headEnd: Int?
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0A {
                guard index > 0, bytes[index - 1] == 0x0D else { return .failure(.init(400, "bare LF in the request head")) }
                let line = lineStart..<(index - 1)
                if line.isEmpty {
                    if lines.isEmpty {
                        lineStart = index + 1  // RFC 9112 §2.2: ignore an empty line before the request line
                        index += 1
                        continue
                    }
                    headEnd = index + 1
                    break
                }
                lines.append(line)
                lineStart = index + 1
            } else if byte == 0x0D, index + 1 < bytes.count, bytes[index + 1] != 0x0A {
                return .failure(.init(400, "bare CR in the request head"))
            }
            if lines.isEmpty, index - lineStart >= limits.requestLineBytes {
                return .failure(.init(414, "request line longer than \(limits.requestLineBytes) bytes"))
            }
            // The header section (after the request line) has its own limit.
            if let requestLine = lines.first, index - requestLine.upperBound > limits.headerBytes {
                return .failure(.init(431, "header section larger than \(limits.headerBytes) bytes"))
            }
            index += 1
        }
        guard let headEnd else { return .incomplete }
        guard lines.count - 1 <= limits.headerCount else {
            return .failure(.init(431, "more than \(limits.headerCount) header fields"))
        }

        var head: HTTPRequestHead
        switch parseRequestLine(bytes[lines[0]]) {
        case .success(let parsed): head = parsed
        case .failure(let error): return .failure(error)
        }
        var contentLength: Int?
        var transferEncoding = false
        var hosts = 0
        var connection = ""
        for line in lines.dropFirst() {
            switch parseField(bytes[line]) {
            case .failure(let error):
                return .failure(error)
            case .success(let field):
                switch field.name {
                case "content-length":
                    guard contentLength == nil else { return .failure(.init(400, "more than one Content-Length")) }
                    guard !field.value.isEmpty, field.value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), field.value.count <= 18,
                        let length = Int(field.value)
                    else { return .failure(.init(400, "invalid Content-Length")) }
                    contentLength = length
                case "transfer-encoding":
                    transferEncoding = true
                case "host":
                    hosts += 1
                case "connection":
                    connection = field.value.lowercased()
                default:
                    break
                }
                head.headers.append(field)
            }
        }
        if transferEncoding {
            if contentLength != nil { return .failure(.init(400, "both Content-Length and Transfer-Encoding")) }
            return .failure(.init(501, "Transfer-Encoding is not supported (send a body with Content-Length)"))
        }
        if head.version == .http11, hosts != 1 {
            return .failure(.init(400, hosts == 0 ? "missing Host" : "more than one Host"))
        }
        let length = contentLength ?? 0
        guard length <= limits.bodyBytes else { return .failure(.init(413, "body of \(length) bytes is over \(limits.bodyBytes)")) }
        head.contentLength = length
        let tokens = connection.split(separator: ",").map { String($0.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
        head.keepAlive = head.version == .http11 ? !tokens.contains("close") : tokens.contains("keep-alive")
        guard bytes.count - headEnd >= length else { return .incomplete }
        return .request(head, body: Array(bytes[headEnd..<(headEnd + length)]), consumed: headEnd + length)
    }

    // MARK: - Pieces

    private static let tokenCharacters: Set<UInt8> = Set(Array("!#$%&'*+-.^_`|~".utf8) + Array(0x30...0x39) + Array(0x41...0x5A) + Array(0x61...0x7A))

    private func parseRequestLine(_ line: ArraySlice<UInt8>) -> Result<HTTPRequestHead, HTTPParseError> {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.init(400, "malformed request line")) }
        let (method, target, version) = (parts[0], parts[1], parts[2])
        guard !method.isEmpty, method.allSatisfy(Self.tokenCharacters.contains) else {
            return .failure(.init(400, "invalid method"))
        }
        guard !target.isEmpty, target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(.init(400, "invalid request target (origin-form expected)"))
        }
        let parsedVersion: HTTPRequestHead.Version
        switch String(decoding: version, as: UTF8.self) {
        case "HTTP/1.1": parsedVersion = .http11
        case "HTTP/1.0": parsedVersion = .http10
        case let other where other.count == 8 && other.hasPrefix("HTTP/") && other.dropFirst(5).first?.isNumber == true:
            return .failure(.init(505, "HTTP version \(other.dropFirst(5)) is not supported"))
        default:
            return .failure(.init(400, "invalid HTTP version"))
        }
        return .success(HTTPRequestHead(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self), version: parsedVersion,
            headers: [], contentLength: 0, keepAlive: true))
    }

    private func parseField(_ line: ArraySlice<UInt8>) -> Result<HTTPRequestHead.Header, HTTPParseError> {
        guard let first = line.first, first != 0x20, first != 0x09 else {
            return .failure(.init(400, "obsolete line folding"))
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .failure(.init(400, "header line without a colon")) }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty else { return .failure(.init(400, "empty header name")) }
        guard name.allSatisfy(Self.tokenCharacters.contains) else {
            return .failure(.init(400, name.last == 0x20 || name.last == 0x09 ? "whitespace before the colon" : "invalid header name"))
        }
        var value = line[(colon + 1)...]
        while let byte = value.first, byte == 0x20 || byte == 0x09 { value = value.dropFirst() }
        while let byte = value.last, byte == 0x20 || byte == 0x09 { value = value.dropLast() }
        guard value.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else {
            return .failure(.init(400, "invalid character in a header value"))
        }
        return .success(.init(name: String(decoding: name, as: UTF8.self).lowercased(), value: String(decoding: value, as: UTF8.self)))
    }
}
