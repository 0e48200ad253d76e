/// HMAC-SHA256 (RFC 2104): checkpoint attestations.
package enum HMACSHA256 {
    /// The authentication code of `message` under `key`.
    package static func authenticate(_ message: [UInt8], key: [UInt8]) -> SHA256Digest {
        var block = key.count > 64 ? SHA256.hash(key).bytes : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        var inner = SHA256()
        inner.update(block.map { $0 ^ 0x36 })
        inner.update(message)
        var outer = SHA256()
        outer.update(block.map { $0 ^ 0x5C })
        outer.update(inner.finalize())
        return outer.finalize()
    }

    /// Compares two codes in time independent of where they differ.
    package static func constantTimeEqual(_ lhs: SHA256Digest, _ rhs: SHA256Digest) -> Bool {
        zip(lhs.bytes, rhs.bytes).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
