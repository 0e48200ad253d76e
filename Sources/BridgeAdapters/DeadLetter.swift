import ChatEvents
import Foundation

/// A bridge record the stage could not use, as written to the dead-letter topic: its
/// coordinates, the reason, and its bytes with the secret removed.
///
/// Value (JSON, documented in `schemas/README.md`): `{"format", "topic", "partition",
/// "offset", "timestamp", "reason", "detail", "key"?, "valueBytes", "truncated", and
/// "value" (the scrubbed record as text) or "valueBase64" (when it is not UTF-8)}`. At most
/// `maxValueBytes` of the value are kept (a record may be megabytes of media).
package struct DeadLetter: Sendable, Hashable {
    /// Bytes of the record's value kept in a dead letter.
    package static let maxValueBytes = 64 * 1024

    package var format: String
    package var record: BridgeRecord
    package var reason: String
    package var detail: String
    package var secret: [UInt8]?

    package init(format: String, record: BridgeRecord, reason: String, detail: String, secret: [UInt8]?) {
        self.format = format
        self.record = record
        self.reason = reason
        self.detail = detail
        self.secret = secret
    }

    /// The Kafka key of the dead letter: the record's own key (scrubbed), else its topic.
    package var key: [UInt8] {
        guard let key = record.key, !key.isEmpty else { return Array(record.topic.utf8) }
        return SecretScrubber.scrub(key, secret: secret)
    }

    /// The JSON value of the dead letter.
    package func encoded() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("format", format)
        writer.field("topic", record.topic)
        writer.field("partition", Int64(record.partition))
        writer.field("offset", record.offset)
        writer.field("timestamp", record.timestamp)
        writer.field("reason", reason)
        writer.field("detail", SecretScrubber.scrub(detail, secret: secret))
        if let key = record.key {
            writer.field("key", String(decoding: SecretScrubber.scrub(key, secret: secret), as: UTF8.self))
        }
        let value = record.value.map { SecretScrubber.scrub($0, secret: secret) }
        writer.field("valueBytes", Int64(record.value?.count ?? 0))
        if let value {
            var end = min(value.count, Self.maxValueBytes)
            while end < value.count, end > 0, value[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a character
            let kept = Array(value[..<end])
            writer.field("truncated", kept.count < value.count)
            if let text = String(validatingUTF8Bytes: kept) {
                writer.field("value", text)
            } else {
                writer.field("valueBase64", Data(kept).base64EncodedString())
            }
        } else {
            writer.field("truncated", false)
            writer.key("value")
            writer.null()
        }
        writer.endObject()
        return writer.bytes
    }
}

extension String {
    /// The text of `bytes` if they are valid UTF-8 (else nil, where `String(decoding:)`
    /// would replace bytes). A cut made inside a character is treated as invalid.
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var scalars = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = String(scalars)
    }
}
