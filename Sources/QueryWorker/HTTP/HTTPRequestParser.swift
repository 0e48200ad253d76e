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
        let lowered = name.utf8.contains { $0 >= 0x41 && $0 <= 0x5A } ? name.lowercased() : name
        return headers.first { $0.name == lowered }?.value
    }

    /// Whether `If-None-Match` names `etag` (a quoted entity tag), as RFC 9110 §13.1.2 reads
    /// it: `*`, or a comma-separated list of tags (in one header line or several) compared
    /// weakly, so `W/"7"` matches `"7"`.
    package func ifNoneMatch(_ etag: String) -> Bool {
        let wanted = etag.hasPrefix("W/") ? etag.dropFirst(2) : etag[...]
        for header in headers where header.name == "if-none-match" {
            for candidate in header.value.split(separator: ",") {
                var tag = candidate.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
                while let last = tag.last, last == " " || last == "\t" { tag = tag.dropLast() }
                if tag == "*" { return true }
                if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
                if tag == wanted { return true }
            }
        }
        return false
    }

    /// The path part of the target.
    package var path: Substring {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target[...] }
        return target[..<mark]
    }

    /// The query part of the target, empty when there is none.
    package var query: Substring {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return "" }
        return target[target.utf8.index(after: mark)...]
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

    /// How far the scan of an incomplete request head got, so that the next parse (with
    /// more bytes after the same start) resumes there instead of rescanning from its first
    /// byte. Offsets count from the request's start. A fresh value starts a new request.
    package struct Progress: Sendable, Equatable {
        /// Bytes scanned for the end of the head.
        package private(set) var scanned = 0
        /// Where the line being scanned starts.
        var lineStart = 0
        /// The request line (without CRLF), once its end was seen.
        var requestLine: Range<Int>?
        /// Header lines seen after the request line.
        var fieldLines = 0

        package init() {}

        init(scanned: Int, lineStart: Int, requestLine: Range<Int>?, fieldLines: Int) {
            self.scanned = scanned
            self.lineStart = lineStart
            self.requestLine = requestLine
            self.fieldLines = fieldLines
        }
    }

    /// Parses the request at the start of `bytes`.
    package func parse(_ bytes: [UInt8]) -> Outcome {
        var progress = Progress()
        return parse(bytes, from: 0, progress: &progress)
    }

    /// Parses the request that starts at `bytes[start]`; `consumed` counts from `start`.
    /// `progress` carries an incomplete head's scan from one call to the next (the bytes
    /// after `start` may only grow in between); give a fresh one for each new request.
    package func parse(_ bytes: [UInt8], from start: Int, progress: inout Progress) -> Outcome {
        // The head ends at the first empty line; every LF must follow a CR.
        var index = start + progress.scanned
        var lineStart = start + progress.lineStart
        var requestLine = progress.requestLine.map { (start + $0.lowerBound)..<(start + $0.upperBound) }
        var fieldLines = progress.fieldLines
        var headEnd: Int?
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0A {
                guard index > start, bytes[index - 1] == 0x0D else { return .failure(.init(400, "bare LF in the request head")) }
                let line = lineStart..<(index - 1)
                if line.isEmpty {
                    if requestLine == nil {
                        lineStart = index + 1  // RFC 9112 §2.2: ignore an empty line before the request line
                        index += 1
                        continue
                    }
                    headEnd = index + 1
                    break
                }
                if requestLine == nil { requestLine = line } else { fieldLines += 1 }
                lineStart = index + 1
            } else if byte == 0x0D, index + 1 < bytes.count, bytes[index + 1] != 0x0A {
                return .failure(.init(400, "bare CR in the request head"))
            }
            if requestLine == nil, index - lineStart >= limits.requestLineBytes {
                return .failure(.init(414, "request line longer than \(limits.requestLineBytes) bytes"))
            }
            // The header section (after the request line) has its own limit.
            if let requestLine, index - requestLine.upperBound > limits.headerBytes {
                return .failure(.init(431, "header section larger than \(limits.headerBytes) bytes"))
            }
            index += 1
        }
        guard let headEnd, let requestLine else {
            // A CR as the last byte is looked at again with the byte that follows it.
            let resume = index > start && bytes[index - 1] == 0x0D ? index - 1 : index
            progress = Progress(
                scanned: resume - start, lineStart: lineStart - start,
                requestLine: requestLine.map { ($0.lowerBound - start)..<($0.upperBound - start) }, fieldLines: fieldLines)
            return .incomplete
        }
        guard fieldLines <= limits.headerCount else {
            return .failure(.init(431, "more than \(limits.headerCount) header fields"))
        }

        var head: HTTPRequestHead
        switch parseRequestLine(bytes[requestLine]) {
        case .success(let parsed): head = parsed
        case .failure(let error): return .failure(error)
        }
        head.headers.reserveCapacity(fieldLines)
        var contentLength: Int?
        var transferEncoding = false
        var hosts = 0
        var connection = ""
        // The header lines, each ended by CRLF (the scan above checked every LF).
        var fieldStart = requestLine.upperBound + 2
        while fieldStart < headEnd - 2 {
            var fieldEnd = fieldStart
            while bytes[fieldEnd] != 0x0A { fieldEnd += 1 }
            let line = fieldStart..<(fieldEnd - 1)
            fieldStart = fieldEnd + 1
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
        guard bytes.count - headEnd >= length else {
            // Resume at the empty line's CR: the head is scanned to its end again, not from its start.
            progress = Progress(
                scanned: headEnd - 2 - start, lineStart: headEnd - 2 - start,
                requestLine: (requestLine.lowerBound - start)..<(requestLine.upperBound - start), fieldLines: fieldLines)
            return .incomplete
        }
        return .request(head, body: length == 0 ? [] : Array(bytes[headEnd..<(headEnd + length)]), consumed: headEnd + length - start)
    }

    // MARK: - Pieces

    /// Whether each byte value is a token character (RFC 9110 §5.6.2), by index.
    private static let tokenCharacters: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in Array("!#$%&'*+-.^_`|~".utf8) + Array(0x30...0x39) + Array(0x41...0x5A) + Array(0x61...0x7A) { table[Int(byte)] = true }
        return table
    }()

    private func parseRequestLine(_ line: ArraySlice<UInt8>) -> Result<HTTPRequestHead, HTTPParseError> {
        // Exactly two spaces: method, target, version.
        guard let firstSpace = line.firstIndex(of: 0x20), let secondSpace = line[(firstSpace + 1)...].firstIndex(of: 0x20),
            !line[(secondSpace + 1)...].contains(0x20)
        else { return .failure(.init(400, "malformed request line")) }
        let method = line[..<firstSpace]
        let target = line[(firstSpace + 1)..<secondSpace]
        let version = line[(secondSpace + 1)...]
        let tokenCharacters = Self.tokenCharacters
        guard !method.isEmpty, method.allSatisfy({ tokenCharacters[Int($0)] }) else {
            return .failure(.init(400, "invalid method"))
        }
        guard !target.isEmpty, target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(.init(400, "invalid request target (origin-form expected)"))
        }
        let parsedVersion: HTTPRequestHead.Version
        if version.elementsEqual("HTTP/1.1".utf8) {
            parsedVersion = .http11
        } else if version.elementsEqual("HTTP/1.0".utf8) {
            parsedVersion = .http10
        } else {
            return .failure(Self.versionError(String(decoding: version, as: UTF8.self)))
        }
        return .success(HTTPRequestHead(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self), version: parsedVersion,
            headers: [], contentLength: 0, keepAlive: true))
    }

    /// Why a version other than HTTP/1.0 and 1.1 is refused.
    private static func versionError(_ version: String) -> HTTPParseError {
        switch version {
        case let other where other.count == 8 && other.hasPrefix("HTTP/") && other.dropFirst(5).first?.isNumber == true:
            return HTTPParseError(505, "HTTP version \(other.dropFirst(5)) is not supported")
        default:
            return HTTPParseError(400, "invalid HTTP version")
        }
    }

    private func parseField(_ line: ArraySlice<UInt8>) -> Result<HTTPRequestHead.Header, HTTPParseError> {
        guard let first = line.first, first != 0x20, first != 0x09 else {
            return .failure(.init(400, "obsolete line folding"))
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .failure(.init(400, "header line without a colon")) }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty else { return .failure(.init(400, "empty header name")) }
        let tokenCharacters = Self.tokenCharacters
        guard name.allSatisfy({ tokenCharacters[Int($0)] }) else {
            return .failure(.init(400, name.last == 0x20 || name.last == 0x09 ? "whitespace before the colon" : "invalid header name"))
        }
        var value = line[(colon + 1)...]
        while let byte = value.first, byte == 0x20 || byte == 0x09 { value = value.dropFirst() }
        while let byte = value.last, byte == 0x20 || byte == 0x09 { value = value.dropLast() }
        guard value.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else {
            return .failure(.init(400, "invalid character in a header value"))
        }
        // Token characters are ASCII: lower-case them as bytes, into the one String made.
        let lowered = String(unsafeUninitializedCapacity: name.count) { buffer in
            for (offset, byte) in name.enumerated() { buffer[offset] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
            return name.count
        }
        return .success(.init(name: lowered, value: String(decoding: value, as: UTF8.self)))
    }
}
