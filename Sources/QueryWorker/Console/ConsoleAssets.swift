import LedgerSupport

/// The console (`GET /`): a page, its script and its styles, compiled into the binary
/// from `Console/console.html`, `console.js` and `console.css` (SwiftPM `embedInCode`),
/// so the executable serves it with nothing beside it: no CDN, no files on disk.
///
/// Every console response carries a strict Content-Security-Policy: scripts and styles
/// only from this origin (no inline script or style, no `eval`), requests only to this
/// origin, no frames, no forms posted anywhere. The script renders every text that comes
/// from events with `textContent`, never as markup.
enum ConsoleAssets {
    /// A file of the console with the headers it is served with.
    struct Asset: Sendable {
        let bytes: [UInt8]
        let contentType: String
        /// A strong validator: the first 16 hex digits of the bytes' SHA-256.
        let etag: String

        init(_ bytes: [UInt8], contentType: String) {
            self.bytes = bytes
            self.contentType = contentType
            etag = "\"" + String(SHA256.hash(bytes).hex.prefix(16)) + "\""
        }

        /// The asset, or 304 when `If-None-Match` names it.
        func response(_ head: HTTPRequestHead) -> HTTPResponse {
            var headers = ConsoleAssets.securityHeaders + [("ETag", etag), ("Cache-Control", "no-cache")]
            if head.ifNoneMatch(etag) { return HTTPResponse(status: 304, headers: headers) }
            headers.insert(("Content-Type", contentType), at: 0)
            return HTTPResponse(status: 200, headers: headers, body: bytes)
        }
    }

    /// The policy every console response carries.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let securityHeaders: [(name: String, value: String)] = [
        ("Content-Security-Policy", contentSecurityPolicy),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    ]

    static let page = Asset(PackageResources.console_html, contentType: "text/html; charset=utf-8")
    static let script = Asset(PackageResources.console_js, contentType: "text/javascript; charset=utf-8")
    static let styles = Asset(PackageResources.console_css, contentType: "text/css; charset=utf-8")
}
