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
public enum EventIdentity {
    /// The id of event number `index` made from the record at `topic`/`partition`/`offset`.
    public static func eventId(format: String, topic: String, partition: Int32, offset: Int64, index: Int) -> String {
        var text = "r1\u{0}" + format + "\u{0}" + topic + "\u{0}"
        text += String(partition) + "\u{0}" + String(offset) + "\u{0}" + String(index)
        return encode(SHA256.hash(Array(text.utf8)))
    }

    /// The id of the fact "on `deviceId`, `chatId` and `alias` are one contact".
    public static func aliasEventId(deviceId: String, chatId: String, alias: String) -> String {
        encode(SHA256.hash(Array(("a1\u{0}" + deviceId + "\u{0}" + chatId + "\u{0}" + alias).utf8)))
    }

    private static let crockford = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    private static func encode(_ digest: SHA256Digest) -> String {
        let bytes = digest.bytes
        var out: [UInt8] = []
        out.reserveCapacity(26)
        var buffer: UInt32 = 0
        var bits = 0
        var index = 0
        while out.count < 26 {
            if bits < 5 {
                buffer = buffer << 8 | UInt32(bytes[index])
                index += 1
                bits += 8
            }
            bits -= 5
            out.append(crockford[Int((buffer >> UInt32(bits)) & 31)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
