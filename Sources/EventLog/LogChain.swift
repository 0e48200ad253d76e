/// What a record's chain hash covers: the format generation new segments are written in
/// (`schemas/event-log.md`).
package enum LogChain: Sendable, Hashable {
    /// Versions 1 and 2: the record's body bytes. A record cannot be redacted without
    /// breaking the chain. Kept for reading old logs and for tests that write one.
    case overBodies
    /// Versions 3 and 4 (the default): the SHA-256 of the key, the value and the reason
    /// instead of their bytes, so an erasure can replace them with a redaction marker that
    /// keeps the digest, and the chain still holds.
    case overDigests
}
