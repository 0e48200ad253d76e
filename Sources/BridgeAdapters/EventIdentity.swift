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
        var input: [UInt8] = [UInt8(ascii: "r"), UInt8(ascii: "1"), 0]
        input.reserveCapacity(format.utf8.count + topic.utf8.count + 32)
        input.append(contentsOf: format.utf8)
        input.append(0)
        input.append(contentsOf: topic.utf8)
        input.append(0)
        // The numbers as fixed-width little-endian bytes: unambiguous, no text made.
        withUnsafeBytes(of: partition.littleEndian) { input.append(contentsOf: $0) }
        withUnsafeBytes(of: offset.littleEndian) { input.append(contentsOf: $0) }
        withUnsafeBytes(of: Int64(index).littleEndian) { input.append(contentsOf: $0) }
        return encode(SHA256.hash(input))
    }

    /// The id of the fact "on `deviceId`, `chatId` and `alias` are one contact".
    package static func aliasEventId(deviceId: String, chatId: String, alias: String) -> String {
        encode(SHA256.hash(Array(("a1\u{0}" + deviceId + "\u{0}" + chatId + "\u{0}" + alias).utf8)))
    }

    private static let crockford = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    private static func encode(_ digest: SHA256Digest) -> String {
        return digest.withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: 26) { out in
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
                    out[position] = crockford[Int((buffer >> UInt32(bits)) & 31)]
                }
                return 26
            }
        }
    }
}
