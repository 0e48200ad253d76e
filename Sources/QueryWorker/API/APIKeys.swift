import Foundation
import LedgerSupport

/// The keys file (`--keys`): which key may read which devices, in which role, and whether
/// it may write (`schemas/openapi.yaml`; README, "The write API").
///
/// `{"keys":[{"id":"crm"?, "key":"…" | "keySha256":"hex", "devices":["*"] | ["dev-1",…],
/// "role":"reader"|"auditor", "write":true?}]}`. Keys in clear are hashed on load, so every
/// key is compared as a SHA-256 digest, in constant time, and no key is ever kept or logged
/// in clear. A key's id names it where a key must be named (the `source` of the events it
/// writes): its `id`, else `sha256:` and the first 12 hex digits of its SHA-256 (what the
/// keys file shows for a `keySha256` entry; 48 bits, which tell nothing of a strong key).
package struct APIKeys: Sendable {
    package enum Role: String, Sendable, Decodable {
        case reader, auditor
    }

    /// What a key may do.
    package struct Grant: Sendable, Equatable {
        package var role: Role
        /// nil: every device.
        package var devices: Set<String>?
        /// Whether it may use the write routes (for the devices it may read).
        package var mayWrite = false
        /// The key's id: never the key, safe to log and to put in events.
        package var keyId = ""

        package func mayRead(_ deviceId: String) -> Bool { devices?.contains(deviceId) ?? true }
    }

    /// The most bytes of a key id.
    package static let maxKeyIdBytes = 64

    package struct LoadError: Error, CustomStringConvertible {
        package var description: String
    }

    private struct File: Decodable {
        struct Entry: Decodable {
            var id: String?
            var key: String?
            var keySha256: String?
            var devices: [String]
            var role: Role
            var write: Bool?
        }
        var keys: [Entry]
    }

    private let entries: [(digest: SHA256Digest, grant: Grant)]

    /// What is wrong with a keys file, by the place in it and never by its values: a key
    /// pasted into the wrong field (`role`, say) must not reach a log line. The decoder's
    /// own descriptions quote values ("Cannot initialize Role from invalid String value …").
    static func describe(_ error: any Error) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.reduce("") { text, key in
                if let index = key.intValue { return text + "[\(index)]" }
                return text.isEmpty ? key.stringValue : text + "." + key.stringValue
            }
        }
        switch error as? DecodingError {
        case .typeMismatch(_, let context)?: return "\(path(context.codingPath)): wrong type"
        case .valueNotFound(_, let context)?: return "\(path(context.codingPath)): missing value"
        case .keyNotFound(let key, let context)?: return "\(path(context.codingPath + [key])): missing"
        case .dataCorrupted(let context)?:
            return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context.codingPath)): not a valid value"
        default: return "cannot be read"
        }
    }

    /// No keys: every route that needs one answers 401 (`ingest` and `adapt` serve only
    /// their health and metrics routes).
    package static let none = APIKeys(entries: [])

    private init(entries: [(digest: SHA256Digest, grant: Grant)]) { self.entries = entries }

    /// Parses a keys file.
    /// - Throws: `LoadError` naming the entry and what is wrong with it.
    package init(json: [UInt8]) throws {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(json))
        } catch {
            throw LoadError(description: "keys file: \(Self.describe(error))")
        }
        var entries: [(SHA256Digest, Grant)] = []
        var ids = Set<String>()
        for (index, entry) in file.keys.enumerated() {
            let digest: SHA256Digest
            switch (entry.key, entry.keySha256) {
            case (let key?, nil):
                guard !key.isEmpty else { throw LoadError(description: "keys[\(index)]: empty key") }
                digest = SHA256.hash(Array(key.utf8))
            case (nil, let hex?):
                guard let parsed = SHA256Digest(hex: hex.lowercased()) else {
                    throw LoadError(description: "keys[\(index)]: keySha256 must be 64 hex digits")
                }
                digest = parsed
            default:
                throw LoadError(description: "keys[\(index)]: give exactly one of key and keySha256")
            }
            guard !entry.devices.isEmpty else { throw LoadError(description: "keys[\(index)]: devices is empty") }
            let keyId = entry.id ?? "sha256:" + digest.hex.prefix(12)
            guard Self.isValidKeyId(keyId) else {
                throw LoadError(description: "keys[\(index)]: id must be 1 to \(Self.maxKeyIdBytes) of A-Z a-z 0-9 . _ : -")
            }
            guard !ids.contains(keyId) else { throw LoadError(description: "keys[\(index)]: id \(keyId) is used twice") }
            ids.insert(keyId)
            guard !entries.contains(where: { HMACSHA256.constantTimeEqual($0.0, digest) }) else {
                throw LoadError(description: "keys[\(index)] (\(keyId)): the same key is listed twice")
            }
            let grant = Grant(
                role: entry.role, devices: entry.devices.contains("*") ? nil : Set(entry.devices), mayWrite: entry.write ?? false,
                keyId: keyId)
            entries.append((digest, grant))
        }
        self.entries = entries
    }

    static func isValidKeyId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxKeyIdBytes
            && id.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-")].contains(byte)
            }
    }

    /// Reads and parses a keys file.
    package static func load(path: String) throws -> APIKeys {
        guard let data = FileManager.default.contents(atPath: path) else { throw LoadError(description: "cannot read \(path)") }
        return try APIKeys(json: Array(data))
    }

    /// The grant of a presented key, nil for an unknown one. Every entry is compared, in
    /// constant time, whatever matches.
    package func authenticate(_ presented: String) -> Grant? {
        let digest = SHA256.hash(Array(presented.utf8))
        var found: Grant?
        for entry in entries where HMACSHA256.constantTimeEqual(entry.digest, digest) && found == nil {
            found = entry.grant
        }
        return found
    }
}
