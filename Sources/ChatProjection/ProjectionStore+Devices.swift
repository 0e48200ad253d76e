import ChatEvents
import EventLog

/// Unread totals over the device's chats, archived ones included (what `filter=unread`
/// lists): what `GET …/unread` says and what the device list shows (one rule, here). A chat
/// counts when it has unread messages or is marked unread; messages add up `unreadCount`.
package struct UnreadTotals: Sendable, Hashable {
    /// Chats with unread messages or marked unread.
    package var chats = 0
    /// The sum of their `unreadCount`s.
    package var messages: Int64 = 0

    /// The totals of a device (zero for a device without events).
    package init(_ device: DeviceProjection?) {
        for chat in (device?.chats ?? ChatTable()).values {
            if chat.unreadCount > 0 || chat.markedUnread { chats += 1 }
            messages += Int64(chat.unreadCount)
        }
    }
}

/// One device as the device list (`GET /api/v1/devices`) shows it.
package struct DeviceSummary: Sendable, Hashable {
    package var deviceId: String
    /// The device version (the `ETag` of its routes).
    package var version: UInt64
    /// The log position the summary reflects; nil for a device without events.
    package var position: LogPosition?
    /// Chats in the device's list, archived ones included.
    package var chats: Int
    /// What `…/unread` says.
    package var unread: UnreadTotals
    /// The newest chat `timestamp` (WhatsApp time, epoch ms); nil without chats.
    package var lastActivity: Int64?

    init(_ device: DeviceProjection, position: LogPosition?) {
        deviceId = device.deviceId
        version = device.version
        self.position = position
        chats = device.chats.count
        unread = UnreadTotals(device)
        lastActivity = device.chats.values.lazy.map(\.timestamp).max()
    }
}

/// A page request for the device list: devices in byte order of their id, after `cursor`.
package struct DeviceListQuery: Sendable, Hashable {
    /// Devices per page when the request does not say.
    package static let defaultLimit = 50
    /// The largest page.
    package static let maxLimit = 500

    /// Devices per page, 1...`maxLimit`.
    package var limit: Int
    /// The `nextCursor` of the previous page, nil for the first.
    package var cursor: String?

    /// A page request; `limit` is clamped to 1...`maxLimit`.
    package init(limit: Int = DeviceListQuery.defaultLimit, cursor: String? = nil) {
        self.limit = min(max(1, limit), Self.maxLimit)
        self.cursor = cursor
    }

    /// Thrown for a cursor this server did not give out.
    package struct InvalidCursor: Error, Sendable {}

    /// The cursor after `deviceId`: opaque to clients (`d_` and the id's bytes in hex),
    /// so a device id never has to be escaped in a query string.
    static func cursor(after deviceId: String) -> String {
        "d_" + deviceId.utf8.map { String(format2: $0) }.joined()
    }

    /// The device id a cursor names.
    static func deviceId(of cursor: String) throws(InvalidCursor) -> String {
        let digits = Array(cursor.utf8)
        guard digits.count >= 2, digits[0] == UInt8(ascii: "d"), digits[1] == UInt8(ascii: "_"),
            digits.count % 2 == 0, digits.count <= 2 + 2 * 1024
        else { throw InvalidCursor() }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2 - 1)
        for index in stride(from: 2, to: digits.count, by: 2) {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { throw InvalidCursor() }
            bytes.append(high << 4 | low)
        }
        guard let deviceId = String(validating: bytes, as: UTF8.self) else { throw InvalidCursor() }
        return deviceId
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}

/// A page of the device list.
package struct DevicePage: Sendable, Hashable {
    /// In byte order of their id.
    package var devices: [DeviceSummary]
    /// The cursor of the next page, nil on the last.
    package var nextCursor: String?

    /// `{"devices":[{deviceId, version, position, chats, unreadChats, unreadMessages, lastActivity}…],"nextCursor":…|null}`.
    package var json: [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("devices")
        writer.beginArray()
        for device in devices {
            writer.beginObject()
            writer.field("deviceId", device.deviceId)
            writer.field("version", Int64(device.version))
            writer.key("position")
            if let position = device.position { writer.string(position.description) } else { writer.null() }
            writer.field("chats", Int64(device.chats))
            writer.field("unreadChats", Int64(device.unread.chats))
            writer.field("unreadMessages", device.unread.messages)
            writer.key("lastActivity")
            if let time = device.lastActivity { writer.integer(time) } else { writer.null() }
            writer.endObject()
        }
        writer.endArray()
        writer.key("nextCursor")
        if let cursor = nextCursor { writer.string(cursor) } else { writer.null() }
        writer.endObject()
        return writer.bytes
    }
}

extension ProjectionStore {
    /// A page of the devices a key may read, in byte order of their id, with their
    /// summaries; only devices the projection holds (that have had an event) are listed.
    ///
    /// Under the lock: one pass over the candidate ids keeping the `limit` + 1 smallest after
    /// the cursor (no sort of every device), and a copy of the page's devices with their
    /// positions, so versions, positions and counts in a page agree with each other. The
    /// summaries are computed outside it. No copy of the whole state is taken: one alive
    /// while events are applied would make the applier copy its tables (the event-id
    /// window alone is tens of MB).
    /// - Parameter scope: the ids the key may read; nil for every device.
    /// - Throws: `DeviceListQuery.InvalidCursor` for a cursor that is not one of ours.
    /// - Parameter partitions: when given, only devices whose events arrive on one of them.
    package func devicePage(scope: Set<String>?, partitions: Set<Int32>? = nil, query: DeviceListQuery) throws(DeviceListQuery.InvalidCursor) -> DevicePage {
        let after = try query.cursor.map { cursor throws(DeviceListQuery.InvalidCursor) in
            try DeviceListQuery.deviceId(of: cursor)
        }
        let keep = query.limit + 1  // one more than the page: whether a next page exists
        let (selected, devices) = guarded.withLock { guarded in
            let state = guarded.projection
            var smallest: [String] = []
            smallest.reserveCapacity(keep)
            func consider(_ deviceId: String) {
                if let after, !Self.precedes(after, deviceId) { return }
                if let partitions, let partition = state.devices[deviceId]?.partition, !partitions.contains(partition) { return }
                if smallest.count == keep, let last = smallest.last, !Self.precedes(deviceId, last) { return }
                var low = 0
                var high = smallest.count
                while low < high {
                    let middle = (low + high) / 2
                    if Self.precedes(smallest[middle], deviceId) { low = middle + 1 } else { high = middle }
                }
                smallest.insert(deviceId, at: low)
                if smallest.count > keep { smallest.removeLast() }
            }
            if let scope {
                for deviceId in scope where state.devices[deviceId] != nil { consider(deviceId) }
            } else {
                for deviceId in state.devices.keys { consider(deviceId) }
            }
            let devices = smallest.prefix(query.limit).compactMap { deviceId in
                state.devices[deviceId].map { ($0, state.position(of: deviceId)) }
            }
            return (smallest.count, devices)
        }
        let summaries = devices.map { DeviceSummary($0.0, position: $0.1) }
        let next = selected > query.limit ? summaries.last.map { DeviceListQuery.cursor(after: $0.deviceId) } : nil
        return DevicePage(devices: summaries, nextCursor: next)
    }

    /// What the projection has counted so far (applied, duplicates, ignored, dead letters).
    package var counts: ProjectionState.Counts { guarded.withLock { $0.projection.counts } }

    /// Byte order of UTF-8, the order of the device list and its cursors.
    private static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }
}
