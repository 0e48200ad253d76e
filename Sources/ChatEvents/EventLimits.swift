/// Size limits the parser enforces; every limit is in bytes of UTF-8 unless it says otherwise.
///
/// The defaults are the contract of schema v1 (see `schemas/README.md`).
public struct EventLimits: Sendable, Hashable {
    /// The whole Kafka value.
    public var maxEventBytes: Int
    /// `eventId`, `deviceId`, `type`, message ids.
    public var maxIdentifierBytes: Int
    /// WhatsApp addresses: `chatId`, `senderId`, participants.
    public var maxAddressBytes: Int
    /// `preview` and `name`.
    public var maxTextBytes: Int
    /// `emoji` of a reaction.
    public var maxEmojiBytes: Int
    /// Elements in `messageIds` and `participants` (a count, not bytes).
    public var maxListCount: Int
    /// Nesting of objects and arrays inside an unknown type's `data` (a count).
    public var maxDepth: Int

    /// Schema v1's limits: 64 KiB per event.
    public static let `default` = EventLimits(
        maxEventBytes: 64 * 1024,
        maxIdentifierBytes: 128,
        maxAddressBytes: 256,
        maxTextBytes: 4096,
        maxEmojiBytes: 64,
        maxListCount: 1000,
        maxDepth: 32
    )

    /// Creates limits; see `default` for schema v1's values.
    public init(
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
