import CLedgerChecksums

/// A SHA-256 digest: 32 bytes, compared and hashed by value.
package struct SHA256Digest: Hashable, Sendable, CustomStringConvertible {
    // Four words in memory order, so `withUnsafeBytes` gives the digest's bytes.
    @usableFromInline
    var words: (UInt64, UInt64, UInt64, UInt64)

    /// All zero bytes: the chain hash before the first record.
    package static let zero = SHA256Digest(words: (0, 0, 0, 0))

    @usableFromInline
    init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    /// A digest from exactly 32 bytes; nil for any other count.
    package init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self = bytes.withUnsafeBytes { SHA256Digest(loading: $0) }
    }

    /// A digest from exactly 32 bytes in memory; nil for any other count.
    package init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 32 else { return nil }
        self.init(loading: bytes)
    }

    /// Loads 32 bytes (the caller checked the count); the hot path of reading records.
    @inlinable
    init(loading bytes: UnsafeRawBufferPointer) {
        self.init(
            words: (
                bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            ))
    }

    /// A digest from 64 hex digits; nil otherwise.
    package init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<(index + 2)], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        self.init(bytes: bytes)
    }

    /// Calls `body` with the 32 bytes.
    package func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try Swift.withUnsafeBytes(of: words, body)
    }

    /// The 32 bytes.
    package var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Lower-case hex, 64 digits.
    package var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        withUnsafeBytes { bytes in
            for byte in bytes {
                text.append(digits[Int(byte >> 4)])
                text.append(digits[Int(byte & 15)])
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    package var description: String { hex }

    package static func == (lhs: SHA256Digest, rhs: SHA256Digest) -> Bool {
        lhs.words == rhs.words
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

/// Incremental SHA-256: the log's hash chain, checkpoint digests, key hashes. Uses the
/// CPU's SHA extensions where present.
package struct SHA256 {
    private var context = cl_sha256_context()

    /// Starts a hash.
    package init() {
        cl_sha256_init(&context)
    }

    /// Starts a hash that never uses the CPU's SHA extensions (for tests).
    package static func software() -> SHA256 {
        var hasher = SHA256()
        cl_sha256_init_software(&hasher.context)
        return hasher
    }

    /// Adds bytes.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        cl_sha256_update(&context, bytes.baseAddress, bytes.count)
    }

    /// Adds bytes.
    package mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Adds a digest's 32 bytes.
    package mutating func update(_ digest: SHA256Digest) {
        digest.withUnsafeBytes { update($0) }
    }

    /// The digest; the hasher is spent.
    package mutating func finalize() -> SHA256Digest {
        var digest = SHA256Digest.zero
        withUnsafeMutableBytes(of: &digest.words) { target in
            cl_sha256_final(&context, target.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return digest
    }

    /// The digest of `bytes`.
    package static func hash(_ bytes: [UInt8]) -> SHA256Digest {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Whether the CPU's SHA extensions are used.
    package static var isHardwareAccelerated: Bool { cl_sha256_is_hardware() != 0 }
}
