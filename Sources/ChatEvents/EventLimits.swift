/// Size limits the parser enforces; every limit is in bytes of UTF-8 unless it says otherwise.
///
/// The defaults are the contract of schema v1 (see `schemas/README.md`).
package struct EventLimits: Sendable, Hashable {
    /// The whole Kafka value.
    package var maxEventBytes: Int
    /// `eventId`, `deviceId`, `type`, message ids.
    package var maxIdentifierBytes: Int
    /// WhatsApp addresses: `chatId`, `senderId`, participants.
    package var maxAddressBytes: Int
    /// `preview` and `name`.
    package var maxTextBytes: Int
    /// `emoji` of a reaction.
    package var maxEmojiBytes: Int
    /// Elements in `messageIds` and `participants` (a count, not bytes).
    package var maxListCount: Int
    /// Nesting of objects and arrays inside an unknown type's `data` (a count).
    package var maxDepth: Int

    /// Schema v1's limits: 64 KiB per event.
    package static let `default` = EventLimits(
        maxEventBytes: 64 * 1024,
        maxIdentifierBytes: 128,
        maxAddressBytes: 256,
        maxTextBytes: 4096,
        maxEmojiBytes: 64,
        maxListCount: 1000,
        maxDepth: 32
    )

    /// Creates limits; see `default` for schema v1's values.
    package init(
        maxEventBytes: Int, maxIdentifierBytes: Int, maxAddressBytes: Int, maxTextBytes: Int,
        maxEmojiBytes: Int, maxListCount: Int, maxDepth: Int
    ) {
        self.maxEventBytes = maxEventBytes
        self.maxIdentifierBytes = maxIdentifierBytes
        self.maxAddressBytes = maxAddressBytes
        self.maxTextBytes = maxTextBytes
        self.maxEmojiBytes = maxEmojiBytes
        self.maxListCount = maxListCount
        self.maxDepth = maxDepth
    }
}
