import ChatEvents
import EventLog

/// The audit views of a data directory: a device's state at a past point, and the events
/// as received. `chatledger replay` / `export` and the auditor routes all read through it.
public struct AuditLog: Sendable {
    public let log: EventLog
    /// The Kafka topic whose partitions are read.
    public let topic: String
    /// Where replays to a position may start from.
    public let checkpoints: CheckpointStore

    /// The audit views of `dataDirectory`'s log of `topic`.
    public init(dataDirectory: String, topic: String) {
        self.log = EventLog(dataDirectory: dataDirectory)
        self.topic = topic
        self.checkpoints = CheckpointStore(dataDirectory: dataDirectory)
    }

    /// The device's state at a point: through `position` (partition P up to offset O,
    /// starting from the newest checkpoint at or before it), or every record whose Kafka
    /// timestamp is at or before `asOf` (ingestion time: what the chat list could show
    /// then), or the whole log. Only records keyed by the device are parsed.
    /// - Parameter partitions: the partitions to read (nil: all of the topic's).
    /// - Throws: `EventLogError` for a damaged log.
    public func device(
        _ deviceId: String, at position: LogPosition? = nil, asOf: Int64? = nil, partitions: [Int32]? = nil
    ) throws -> DeviceProjection? {
        var state = ProjectionState()
        // A checkpoint helps a replay to a position when it is at or before that position.
        if let position {
            for sequence in checkpoints.sequences().reversed() {
                guard let (checkpointState, info) = try? checkpoints.read(sequence),
                    let at = info.positions[position.partition], at <= position.offset
                else { continue }
                state = checkpointState
                break
            }
        }
        let key = Array(deviceId.utf8)
        let parser = EventParser()
        for partition in try self.partitions(partitions) {
            if let position, position.partition != partition { continue }
            let start = position == nil ? 0 : (state.positions[partition] ?? -1) + 1
            try log.reader(topic: topic, partition: partition).forEach(from: start) { record in
                if let position, record.offset > position.offset { return false }
                if let asOf, record.timestamp > asOf { return true }  // timestamps need not be ordered
                // Only the device's own records can change it; the rest are not parsed.
                guard record.kind == .event, let recordKey = record.key, recordKey.elementsEqual(key) else { return true }
                state.fold(StoredRecord(record, parser: parser), at: LogPosition(partition: partition, offset: record.offset), chainHash: record.chainHash)
                return true
            }
        }
        return state.devices[deviceId]
    }

    /// Which events `events` yields.
    public struct EventFilter: Sendable {
        /// Only events keyed by this device (nil: all).
        public var deviceId: String?
        /// Only events of this chat (nil: all).
        public var chatId: String?
        /// `occurredAt` bounds, inclusive.
        public var from: Int64 = .min
        public var to: Int64 = .max
        /// The partitions to read (nil: all of the topic's), in ascending order.
        public var partitions: [Int32]?

        /// A filter; by default every event of every partition.
        public init(deviceId: String? = nil, chatId: String? = nil, from: Int64 = .min, to: Int64 = .max, partitions: [Int32]? = nil) {
            self.deviceId = deviceId
            self.chatId = chatId
            self.from = from
            self.to = to
            self.partitions = partitions
        }
    }

    /// Visits the events that pass `filter`, partition by partition in offset order,
    /// starting at `start` (a position from an earlier call), each as one export line:
    /// `{"partition":P,"offset":O,"timestamp":T,"event":<the value as received>}`. `body`
    /// returns false to decline the line it was given and stop; the result is the position
    /// of that line, to continue from (nil: the end was reached).
    /// Memory stays constant: nothing is collected.
    /// - Throws: `EventLogError` for a damaged log, or what `body` throws.
    @discardableResult
    public func events(_ filter: EventFilter, from start: LogPosition? = nil, _ body: ([UInt8]) throws -> Bool) throws -> LogPosition? {
        let device = filter.deviceId.map { Array($0.utf8) }
        let chat = filter.chatId.map(InlineString.init)  // compared as stored: no String per event
        let parser = EventParser()
        var resume: LogPosition?
        for partition in try partitions(filter.partitions) {
            if let start, partition < start.partition { continue }
            let first = start.map { $0.partition == partition ? $0.offset : 0 } ?? 0
            try log.reader(topic: topic, partition: partition).forEach(from: first) { record in
                guard record.kind == .event, let value = record.value else { return true }
                // Cheap filter on the key (= deviceId) before parsing.
                if let device, let key = record.key, !key.elementsEqual(device) { return true }
                let position = LogPosition(partition: partition, offset: record.offset)
                let event: Event
                switch StoredRecord(record, parser: parser) {
                case .event(let parsed):
                    event = parsed
                case .unreadable(let error):
                    // It cannot be filtered or re-encoded: reported with its position, never silently left out.
                    StoredRecord.reportUnreadable(error, at: position)
                    return true
                case .deadLetter, .gap:
                    return true
                }
                guard event.occurredAt >= filter.from, event.occurredAt <= filter.to, chat == nil || event.chatIdText == chat
                else { return true }
                if try body(Self.exportLine(partition: partition, offset: record.offset, timestamp: record.timestamp, value: value, event: event)) {
                    return true
                }
                resume = position  // not taken: the next call starts with it
                return false
            }
            if resume != nil { return resume }
        }
        return nil
    }

    private func partitions(_ only: [Int32]?) throws -> [Int32] {
        if let only { return only.sorted() }
        return try log.partitions().filter { $0.topic == topic }.map(\.partition).sorted()
    }

    /// One export line (without the line feed). The value is embedded verbatim unless it
    /// holds a line break, which would split the line; then its canonical encoding is used.
    static func exportLine(partition: Int32, offset: Int64, timestamp: Int64, value: UnsafeRawBufferPointer, event: Event) -> [UInt8] {
        var line = JSONWriter()
        line.beginObject()
        line.field("partition", Int64(partition))
        line.field("offset", offset)
        line.field("timestamp", timestamp)
        line.key("event")
        var bytes = line.bytes
        if value.contains(0x0A) || value.contains(0x0D) {
            bytes += EventEncoder.encode(event)
        } else {
            bytes += value
        }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
