import Foundation
import LedgerSupport

/// The keys file (`--keys`): which key may read which devices, in which role (SPEC §4).
///
/// `{"keys":[{"key":"…" | "keySha256":"hex", "devices":["*"] | ["dev-1",…], "role":"reader"|"auditor"}]}`.
/// Keys in clear are hashed on load, so every key is compared as a SHA-256 digest, in
/// constant time, and no key is ever kept or logged in clear.
public struct APIKeys: Sendable {
    public enum Role: String, Sendable, Decodable {
        case reader, auditor
    }

    /// What a key may do.
    public struct Grant: Sendable, Equatable {
        public var role: Role
        /// nil: every device.
        public var devices: Set<String>?

        public func mayRead(_ deviceId: String) -> Bool { devices?.contains(deviceId) ?? true }
    }

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    private struct File: Decodable {
        struct Entry: Decodable {
            var key: String?
            var keySha256: String?
            var devices: [String]
            var role: Role
        }
        var keys: [Entry]
    }

    private let entries: [(digest: SHA256Digest, grant: Grant)]

    /// Parses a keys file.
    /// - Throws: `LoadError` naming the entry and what is wrong with it.
    public init(json: [UInt8]) throws {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(json))
        } catch {
            throw LoadError(description: "keys file: \(error)")
        }
        var entries: [(SHA256Digest, Grant)] = []
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
            entries.append((digest, Grant(role: entry.role, devices: entry.devices.contains("*") ? nil : Set(entry.devices))))
        }
        self.entries = entries
    }

    /// Reads and parses a keys file.
    public static func load(path: String) throws -> APIKeys {
        guard let data = FileManager.default.contents(atPath: path) else { throw LoadError(description: "cannot read \(path)") }
        return try APIKeys(json: Array(data))
    }

    /// The grant of a presented key, nil for an unknown one. Every entry is compared, in
    /// constant time, whatever matches.
    public func authenticate(_ presented: String) -> Grant? {
        let digest = SHA256.hash(Array(presented.utf8))
        var found: Grant?
        for entry in entries where HMACSHA256.constantTimeEqual(entry.digest, digest) && found == nil {
            found = entry.grant
        }
        return found
    }
}
