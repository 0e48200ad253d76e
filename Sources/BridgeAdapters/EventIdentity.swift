import ChatEvents
import LedgerSupport

/// Deterministic event ids for events the stage makes.
///
/// Bridges give no event id (except WAHA). The stage derives one from what identifies the
/// source record for good: its format, topic, partition and offset, and the event's index
/// among the events made from the record. A record read again (the stage crashed before
/// committing it) therefore yields the same ids, and the projection, which ignores repeated
/// ids, sees each event once. Facts that several records can teach (`contact.aliased`)
/// get an id from the fact itself, so teaching it again changes nothing either.
///
/// Ids are 26 characters of Crockford base32 (130 bits of a SHA-256), the shape of the
/// ULIDs the traffic model writes, and short enough to be kept inline by the parser.
package enum EventIdentity {
    /// The id of event number `index` made from the record at `topic`/`partition`/`offset`.
    package static func eventId(format: String, topic: String, partition: Int32, offset: Int64, index: Int) -> String {
        eventIdText(format: format, topic: topic, partition: partition, offset: offset, index: index).string
    }

    /// `eventId(format:topic:partition:offset:index:)` as an event keeps it: hashed and
    /// written without a `String` or an array made.
    package static func eventIdText(format: String, topic: String, partition: Int32, offset: Int64, index: Int) -> InlineString {
        var hasher = SHA256()
        hasher.update(text: "r1\u{0}")
        hasher.update(text: format)
        hasher.update(text: "\u{0}")
        hasher.update(text: topic)
        hasher.update(text: "\u{0}")
        // The numbers as fixed-width little-endian bytes: unambiguous, no text made.
        var numbers = (partition.littleEndian, offset.littleEndian, Int64(index).littleEndian)
        withUnsafeBytes(of: &numbers.0) { hasher.update($0) }
        withUnsafeBytes(of: &numbers.1) { hasher.update($0) }
        withUnsafeBytes(of: &numbers.2) { hasher.update($0) }
        return encode(hasher.finalize())
    }

    /// The id of the fact "on `deviceId`, `chatId` and `alias` are one contact".
    package static func aliasEventId(deviceId: String, chatId: String, alias: String) -> String {
        aliasEventIdText(deviceId: deviceId, chatId: chatId, alias: alias).string
    }

    /// `aliasEventId(deviceId:chatId:alias:)` as an event keeps it.
    package static func aliasEventIdText(deviceId: String, chatId: String, alias: String) -> InlineString {
        var hasher = SHA256()
        hasher.update(text: "a1\u{0}")
        hasher.update(text: deviceId)
        hasher.update(text: "\u{0}")
        hasher.update(text: chatId)
        hasher.update(text: "\u{0}")
        hasher.update(text: alias)
        return encode(hasher.finalize())
    }

    /// The Crockford alphabet, one ASCII byte per digit.
    private static let crockford: StaticString = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

    /// The digest's first 130 bits as 26 Crockford digits.
    private static func encode(_ digest: SHA256Digest) -> InlineString {
        var out: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return digest.withUnsafeBytes { bytes in
            withUnsafeMutableBytes(of: &out) { raw in
                let alphabet = crockford.utf8Start
                var buffer: UInt32 = 0
                var bits = 0
                var index = 0
                for position in 0..<26 {
                    if bits < 5 {
                        buffer = buffer << 8 | UInt32(bytes[index])
                        index += 1
                        bits += 8
                    }
                    bits -= 5
                    raw[position] = alphabet[Int((buffer >> UInt32(bits)) & 31)]
                }
                return InlineString(validatedUTF8: UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 26))
            }
        }
    }
}

extension SHA256 {
    /// Adds `text`'s UTF-8 bytes (without copying them when the string is contiguous).
    fileprivate mutating func update(text: String) {
        var text = text
        text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }
}
