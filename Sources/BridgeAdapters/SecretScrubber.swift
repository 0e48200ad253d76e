#if canImport(Glibc)
import Glibc
#endif

/// Keeps bridge secrets out of everything the stage writes about a record.
///
/// Evolution puts the instance token in every record's `apikey` (when the server exposes
/// it). Canonical events are built field by field and never carry it; dead letters keep the
/// record's bytes, so there every `apikey` value (at any depth, even in JSON cut short) is
/// replaced by `"[redacted]"`, and so is every other occurrence of the secret's bytes
/// (a record can repeat it, e.g. in a URL), in the value, the key and the description.
///
/// The `baileys` and `wwebjs` envelopes carry whatever their publisher forwards (ours in
/// `deploy/bridges/` leave the session's credentials out, another may not): the session's
/// keys in Baileys' `creds.update` (`AuthenticationCreds`), a code that links a device
/// (`qr` of Baileys' `connection.update` and of whatsapp-web.js, a pairing code, Evolution's
/// `qrcode.updated`), the legacy whatsapp-web.js session of `authenticated`, a media
/// message's `mediaKey`. In a dead letter the value of each
/// such key, and the whole `data`/`args` of those events, is replaced by `"[redacted]"`
/// (objects and arrays included).
package enum SecretScrubber {
    /// What a secret is replaced with.
    package static let redacted = Array("[redacted]".utf8)

    /// Key names (compared case-insensitively) whose values are secrets.
    static let secretKeys: Set<String> = ["apikey", "api_key", "api-key", "x-api-key"]

    /// Key names (compared case-insensitively) whose values are a WhatsApp session's
    /// credentials: Baileys' key pairs and secrets, a device-linking QR or pairing code,
    /// whatsapp-web.js' legacy session tokens.
    /// Also keys that decrypt content: a media message's `mediaKey` (with its `url` it
    /// decrypts the media; the URL alone gives only ciphertext, so it stays for diagnosis),
    /// `messageContextInfo.messageSecret` (poll votes, event responses, encrypted edits) and
    /// the app-state keys of an `appStateSyncKeyShare` (`keyData`, which Evolution publishes
    /// as `messages.edited` like every protocol message).
    static let credentialKeys: Set<String> = [
        "noisekey", "pairingephemeralkeypair", "signedidentitykey", "signedprekey", "advsecretkey", "signalidentities", "pairingcode",
        "qr", "wabrowserid", "wasecretbundle", "watoken1", "watoken2", "mediakey", "messagesecret", "keydata",
    ]

    /// Events whose whole payload (`data`, `args`) is credentials or carries them: Baileys'
    /// `creds.update` and `connection.update`, whatsapp-web.js' `qr`, `code` and `authenticated`,
    /// Evolution's `qrcode.updated` (`{qrcode: {code, base64, pairingCode}}`).
    static let credentialEvents: Set<String> = ["creds.update", "connection.update", "qr", "code", "authenticated", "qrcode.updated"]

    /// The payload keys of an envelope.
    static let payloadKeys: Set<String> = ["data", "args"]

    /// Occurrences of secrets shorter than this are not searched for outside `apikey`
    /// values (too likely to be ordinary text).
    static let minimumSecretBytes = 6

    /// The first `apikey` string value in `bytes`, read without needing valid JSON.
    package static func secretValue(in bytes: [UInt8]) -> [UInt8]? {
        var found: [UInt8]?
        _ = scan(bytes) { value in
            if found == nil, !value.isEmpty { found = value }
        }
        return found
    }

    /// `bytes` with every `apikey` value and every occurrence of `secret` replaced.
    package static func scrub(_ bytes: [UInt8], secret: [UInt8]?) -> [UInt8] {
        var secrets: [[UInt8]] = []
        var scrubbed = scan(bytes, credentials: true) { value in
            if value.count >= minimumSecretBytes { secrets.append(value) }
        }
        if let secret, secret.count >= minimumSecretBytes { secrets.append(secret) }
        for secret in secrets {
            scrubbed = replacing(secret, in: scrubbed)
            let escaped = jsonEscaped(secret)
            if escaped != secret { scrubbed = replacing(escaped, in: scrubbed) }
        }
        return scrubbed
    }

    /// `text` with every occurrence of `secret` replaced.
    package static func scrub(_ text: String, secret: [UInt8]?) -> String {
        guard let secret, secret.count >= minimumSecretBytes else { return text }
        return String(decoding: replacing(secret, in: Array(text.utf8)), as: UTF8.self)
    }

    /// Whether `secret` occurs in `bytes` (raw or JSON-escaped).
    package static func contains(_ secret: [UInt8], in bytes: [UInt8]) -> Bool {
        guard secret.count >= minimumSecretBytes else { return false }
        if firstIndex(of: secret, in: bytes, from: 0) != nil { return true }
        // Most secrets (tokens, UUIDs) have nothing to escape: no second form to look for.
        guard secret.contains(where: needsEscape) else { return false }
        return firstIndex(of: jsonEscaped(secret), in: bytes, from: 0) != nil
    }

    /// Whether `jsonEscaped` writes `byte` differently.
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "/")
    }

    // MARK: - Scanning

    /// Copies `bytes`, replacing the value after every secret key with `"[redacted]"`, and
    /// reports each secret string value found (decoded). Works on broken JSON: strings
    /// are found by their quotes, a string cut off runs to the end.
    /// With `credentials`, the values of `credentialKeys` (and the payload of a
    /// `credentialEvents` record) are replaced too, whatever their type, without being reported.
    private static func scan(_ bytes: [UInt8], credentials: Bool = false, found: ([UInt8]) -> Void) -> [UInt8] {
        let payloadIsCredential = credentials && carriesCredentialEvent(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        let count = bytes.count
        func stringEnd(_ open: Int) -> Int {
            var cursor = open + 1
            while cursor < count, bytes[cursor] != UInt8(ascii: "\"") {
                cursor += bytes[cursor] == UInt8(ascii: "\\") ? 2 : 1
            }
            return min(cursor, count)  // the closing quote, or the end
        }
        func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
        while index < count {
            guard bytes[index] == UInt8(ascii: "\"") else {
                out.append(bytes[index])
                index += 1
                continue
            }
            let close = stringEnd(index)
            let content = Array(bytes[(index + 1)..<close])
            out.append(contentsOf: bytes[index..<min(close + 1, count)])
            index = close + 1
            let name = String(decoding: unescaped(content), as: UTF8.self).lowercased()
            let isCredential = credentials && (credentialKeys.contains(name) || (payloadIsCredential && payloadKeys.contains(name)))
            guard isCredential || secretKeys.contains(name) else { continue }
            var cursor = index
            while cursor < count, isWhitespace(bytes[cursor]) { cursor += 1 }
            guard cursor < count, bytes[cursor] == UInt8(ascii: ":") else { continue }
            cursor += 1
            while cursor < count, isWhitespace(bytes[cursor]) { cursor += 1 }
            out.append(contentsOf: bytes[index..<cursor])
            index = cursor
            guard cursor < count else { break }
            if isCredential {
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: redacted)
                out.append(UInt8(ascii: "\""))
                index = valueEnd(bytes, from: cursor)
            } else if bytes[cursor] == UInt8(ascii: "\"") {
                let valueEnd = stringEnd(cursor)
                found(unescaped(Array(bytes[(cursor + 1)..<valueEnd])))
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: redacted)
                out.append(UInt8(ascii: "\""))
                index = valueEnd + 1
            } else if bytes[cursor] == UInt8(ascii: "{") || bytes[cursor] == UInt8(ascii: "[") {
                // An object or array where a token belongs (`"apikey": ["…"]`): replaced
                // whole, and every string in it counts as a secret found.
                let end = valueEnd(bytes, from: cursor)
                var inner = cursor
                while inner < end {
                    if bytes[inner] == UInt8(ascii: "\"") {
                        let close = stringEnd(inner)
                        var after = close + 1
                        while after < end, isWhitespace(bytes[after]) { after += 1 }
                        // A member's name (a colon follows) is no secret; its value is.
                        if after >= end || bytes[after] != UInt8(ascii: ":") {
                            found(unescaped(Array(bytes[(inner + 1)..<min(close, count)])))
                        }
                        inner = close + 1
                    } else {
                        inner += 1
                    }
                }
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: redacted)
                out.append(UInt8(ascii: "\""))
                index = end
            } else {
                // A number or literal: replaced as well (a token is a token).
                var end = cursor
                while end < count, !isWhitespace(bytes[end]), ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]")].contains(bytes[end]) {
                    end += 1
                }
                if Array(bytes[cursor..<end]) != Array("null".utf8) {
                    out.append(UInt8(ascii: "\""))
                    out.append(contentsOf: redacted)
                    out.append(UInt8(ascii: "\""))
                    index = end
                }
            }
        }
        return out
    }

    /// Where the JSON value starting at `start` ends (one past it): a string, an object or
    /// an array (brackets balanced outside strings), or a number or literal; the end of
    /// `bytes` for a value cut off.
    private static func valueEnd(_ bytes: [UInt8], from start: Int) -> Int {
        var depth = 0
        var index = start
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") { index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1 }
                index = min(index + 1, bytes.count)
                if depth == 0 { return index }
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return index }  // a literal's end, the enclosing container's bracket
                depth -= 1
                if depth == 0 { return index + 1 }
            case UInt8(ascii: ","), 0x20, 0x0A, 0x0D, 0x09:
                if depth == 0 { return index }
            default:
                break
            }
            index += 1
        }
        return bytes.count
    }

    /// Whether the record's `event` (at any depth, read without needing valid JSON) is one
    /// of `credentialEvents`.
    private static func carriesCredentialEvent(_ bytes: [UInt8]) -> Bool {
        var found = false
        var index = 0
        let key = Array("\"event\"".utf8)
        while !found, let at = firstIndex(of: key, in: bytes, from: index) {
            var cursor = at + key.count
            while cursor < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[cursor]) { cursor += 1 }
            index = at + 1
            guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: ":") else { continue }
            cursor += 1
            while cursor < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[cursor]) { cursor += 1 }
            guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: "\"") else { continue }
            let end = valueEnd(bytes, from: cursor)
            let name = unescaped(Array(bytes[(cursor + 1)..<max(cursor + 1, end - 1)]))
            found = credentialEvents.contains(String(decoding: name, as: UTF8.self))
        }
        return found
    }

    /// A JSON string's contents with the common escapes decoded (`\uXXXX` to UTF-8).
    private static func unescaped(_ content: [UInt8]) -> [UInt8] {
        guard content.contains(UInt8(ascii: "\\")) else { return content }
        var out: [UInt8] = []
        var index = 0
        while index < content.count {
            let byte = content[index]
            guard byte == UInt8(ascii: "\\"), index + 1 < content.count else {
                out.append(byte)
                index += 1
                continue
            }
            let escape = content[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u") where index + 4 <= content.count:
                let hex = String(decoding: content[index..<(index + 4)], as: UTF8.self)
                index += 4
                if let unit = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(unit) {
                    out.append(contentsOf: String(Character(scalar)).utf8)
                } else {
                    out.append(contentsOf: "\u{FFFD}".utf8)
                }
            default: out.append(escape)
            }
        }
        return out
    }

    private static func jsonEscaped(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case UInt8(ascii: "/"): out.append(contentsOf: [0x5C, 0x2F])
            default: out.append(byte)
            }
        }
        return out
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, start <= haystack.count, haystack.count - start >= needle.count else { return nil }
        return haystack.withUnsafeBytes { hay in
            needle.withUnsafeBytes { pin in
                // memchr finds candidates for the first byte; memcmp checks each.
                let base = hay.baseAddress!
                var index = start
                let last = hay.count - pin.count
                while index <= last {
                    guard let hit = memchr(base + index, Int32(pin[0]), last - index + 1) else { return nil }
                    let offset = UnsafeRawPointer(hit) - base
                    if memcmp(base + offset, pin.baseAddress!, pin.count) == 0 { return offset }
                    index = offset + 1
                }
                return nil
            }
        }
    }

    private static func replacing(_ needle: [UInt8], in haystack: [UInt8]) -> [UInt8] {
        guard var found = firstIndex(of: needle, in: haystack, from: 0) else { return haystack }
        var out: [UInt8] = []
        var copied = 0
        while true {
            out.append(contentsOf: haystack[copied..<found])
            out.append(contentsOf: redacted)
            copied = found + needle.count
            guard let next = firstIndex(of: needle, in: haystack, from: copied) else { break }
            found = next
        }
        out.append(contentsOf: haystack[copied...])
        return out
    }
}
