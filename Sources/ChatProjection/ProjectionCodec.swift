import ChatEvents
import LedgerSupport

/// The canonical binary encoding of projection state (format in `schemas/projection.md`):
/// the body of checkpoints and the input of the state digest. Devices and chats are
/// sorted by the bytes of their ids, so equal states encode to equal bytes.
enum ProjectionCodec {
    static func encodeDevices(_ devices: [String: DeviceProjection]) -> [UInt8] {
        var writer = ByteWriter()
        let sorted = devices.values.sorted { $0.deviceId.utf8.lexicographicallyPrecedes($1.deviceId.utf8) }
        writer.u32(UInt32(sorted.count))
        for device in sorted {
            writer.string(device.deviceId)
            writer.u64(device.version)
            writer.u32(UInt32(bitPattern: device.partition))
            writer.u8(device.keepChatsArchived ? 1 : 0)
            let chats = device.chats.sorted { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
            writer.u32(UInt32(chats.count))
            for (chatId, chat) in chats {
                writer.string(chatId)
                encode(chat, &writer)
            }
            let aliases = device.aliases.map { ($0.key.description, $0.value.description) }
                .sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            writer.u32(UInt32(aliases.count))
            for (alias, canonical) in aliases {
                writer.string(alias)
                writer.string(canonical)
            }
        }
        return writer.bytes
    }

    private static func encode(_ chat: ChatState, _ writer: inout ByteWriter) {
        var flags: UInt8 = 0
        if chat.isGroup { flags |= 1 }
        if chat.markedUnread { flags |= 2 }
        if chat.archived { flags |= 4 }
        if chat.pinned { flags |= 8 }
        if chat.readOnly { flags |= 16 }
        if chat.pinnedAt != nil { flags |= 32 }
        if chat.lastMessage != nil { flags |= 64 }
        if chat.name != nil { flags |= 128 }
        writer.u8(flags)
        if let name = chat.name { writer.string(name) }
        writer.u32(UInt32(bitPattern: chat.unreadCount))
        writer.u64(UInt64(bitPattern: chat.timestamp))
        if let pinnedAt = chat.pinnedAt { writer.u64(UInt64(bitPattern: pinnedAt)) }
        writer.u64(UInt64(bitPattern: chat.muteUntil))
        if let message = chat.lastMessage {
            writer.string(message.id)
            writer.u8(message.fromMe ? 1 : 0)
            writer.u8(WireCode.kind(message.kind))
            writer.string(message.preview)
            writer.u64(UInt64(bitPattern: message.timestamp))
            writer.u8(message.ack.map(WireCode.ack) ?? WireCode.noAck)
            writer.u8(message.revoked ? 1 : 0)
        }
        let history = chat.history.entries
        writer.u32(UInt32(history.count))
        for entry in history {
            writer.u64(entry.word)
            writer.u64(UInt64(bitPattern: entry.timestamp))
        }
    }

    /// The versions of devices an erasure left without state (`ProjectionState.erasedDeviceVersions`):
    /// count (4), then per device, sorted by digest bytes, the SHA-256 of its id (32) and
    /// the version (8).
    static func encodeErasedDeviceVersions(_ versions: [SHA256Digest: UInt64]) -> [UInt8] {
        var writer = ByteWriter()
        writer.u32(UInt32(versions.count))
        for (digest, version) in versions.sorted(by: { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }) {
            writer.raw(digest.bytes)
            writer.u64(version)
        }
        return writer.bytes
    }

    /// Reads `encodeErasedDeviceVersions` output from `reader`; nil if it is not a valid encoding.
    static func decodeErasedDeviceVersions(_ reader: inout ByteReader) -> [SHA256Digest: UInt64]? {
        guard let count = reader.u32(), Int(count) <= reader.remaining / 40 else { return nil }
        var versions: [SHA256Digest: UInt64] = [:]
        for _ in 0..<count {
            guard let bytes = reader.take(32), let digest = SHA256Digest(bytes: Array(bytes)), let version = reader.u64() else { return nil }
            versions[digest] = version
        }
        return versions.count == Int(count) ? versions : nil
    }

    /// Decodes `encodeDevices` output; nil if the bytes are not a valid encoding.
    static func decodeDevices(_ bytes: [UInt8]) -> [String: DeviceProjection]? {
        var reader = ByteReader(bytes)
        guard let deviceCount = reader.u32() else { return nil }
        var devices: [String: DeviceProjection] = [:]
        for _ in 0..<deviceCount {
            guard let deviceId = reader.string(), let version = reader.u64(), let partition = reader.u32(), let keep = reader.u8(),
                let chatCount = reader.u32()
            else { return nil }
            var device = DeviceProjection(deviceId: deviceId)
            device.version = version
            device.partition = Int32(bitPattern: partition)
            device.keepChatsArchived = keep == 1
            device.chats.reserveCapacity(Int(chatCount))
            for _ in 0..<chatCount {
                guard let chatId = reader.string(), let chat = decodeChat(&reader) else { return nil }
                device.chats[chatId] = chat
            }
            guard let aliasCount = reader.u32() else { return nil }
            for _ in 0..<aliasCount {
                guard let alias = reader.string(), let canonical = reader.string() else { return nil }
                device.aliases[ChatKey(alias)] = ChatKey(canonical)
            }
            devices[deviceId] = device
        }
        return reader.isAtEnd ? devices : nil
    }

    private static func decodeChat(_ reader: inout ByteReader) -> ChatState? {
        guard let flags = reader.u8() else { return nil }
        var chat = ChatState()
        chat.isGroup = flags & 1 != 0
        chat.markedUnread = flags & 2 != 0
        chat.archived = flags & 4 != 0
        chat.pinned = flags & 8 != 0
        chat.readOnly = flags & 16 != 0
        if flags & 128 != 0 {
            guard let name = reader.string() else { return nil }
            chat.name = name
        }
        guard let unreadCount = reader.u32(), let timestamp = reader.u64() else { return nil }
        chat.unreadCount = Int32(bitPattern: unreadCount)
        chat.timestamp = Int64(bitPattern: timestamp)
        if flags & 32 != 0 {
            guard let pinnedAt = reader.u64() else { return nil }
            chat.pinnedAt = Int64(bitPattern: pinnedAt)
        }
        guard let muteUntil = reader.u64() else { return nil }
        chat.muteUntil = Int64(bitPattern: muteUntil)
        if flags & 64 != 0 {
            guard let id = reader.string(), let fromMe = reader.u8(), let kind = reader.u8().flatMap(WireCode.kind),
                let preview = reader.string(), let time = reader.u64(), let ackCode = reader.u8(), let revoked = reader.u8()
            else { return nil }
            let ack = WireCode.ack(ackCode)
            guard ack != nil || ackCode == WireCode.noAck else { return nil }
            chat.lastMessage = LastMessage(
                id: id, fromMe: fromMe == 1, kind: kind, preview: preview,
                timestamp: Int64(bitPattern: time), ack: ack, revoked: revoked == 1)
        }
        guard let count = reader.u32(), Int(count) <= reader.remaining / 16 else { return nil }
        var history: [MessageHistory.Entry] = []
        history.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let word = reader.u64(), let time = reader.u64() else { return nil }
            history.append(MessageHistory.Entry(word: word, timestamp: Int64(bitPattern: time)))
        }
        chat.history = MessageHistory(history)
        return chat
    }

    /// The codes enums are written as, in checkpoints and so in digests: fixed numbers,
    /// independent of the order cases are declared in Swift (`schemas/projection.md`).
    enum WireCode {
        static func kind(_ kind: MessageKind) -> UInt8 {
            switch kind {
            case .text: return 0
            case .image: return 1
            case .video: return 2
            case .audio: return 3
            case .document: return 4
            case .sticker: return 5
            case .location: return 6
            case .contact: return 7
            case .call: return 8
            case .system: return 9
            }
        }

        static func kind(_ code: UInt8) -> MessageKind? {
            MessageKind.allCases.first { kind($0) == code }
        }

        static func ack(_ ack: AckStatus) -> UInt8 {
            switch ack {
            case .error: return 0
            case .pending: return 1
            case .server: return 2
            case .delivered: return 3
            case .read: return 4
            case .played: return 5
            }
        }

        static func ack(_ code: UInt8) -> AckStatus? {
            AckStatus.allCases.first { ack($0) == code }
        }

        /// An incoming message has no ack.
        static let noAck: UInt8 = 255
    }
}

/// Little-endian binary writer.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ value: String) {
        u32(UInt32(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }
    mutating func raw(_ value: [UInt8]) { bytes.append(contentsOf: value) }
}

/// Little-endian binary reader that answers nil rather than reading past the end.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }
    var remaining: Int { bytes.count - position }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.count - position >= count else { return nil }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private mutating func integer<Value: FixedWidthInteger>(_ type: Value.Type) -> Value? {
        guard let slice = take(MemoryLayout<Value>.size) else { return nil }
        return slice.reversed().reduce(Value(0)) { $0 << 8 | Value($1) }
    }

    mutating func u8() -> UInt8? { integer(UInt8.self) }
    mutating func u16() -> UInt16? { integer(UInt16.self) }
    mutating func u32() -> UInt32? { integer(UInt32.self) }
    mutating func u64() -> UInt64? { integer(UInt64.self) }
    mutating func string() -> String? {
        guard let length = u32(), let slice = take(Int(length)) else { return nil }
        return String(decoding: slice, as: UTF8.self)
    }
}
