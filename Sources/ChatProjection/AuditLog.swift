import ChatEvents
import EventLog
import LedgerSupport

/// The audit views of a data directory: a device's state at a past point, and the events
/// as received. `chatledger replay` / `export` and the auditor routes all read through it.
package struct AuditLog: Sendable {
    package let log: EventLog
    /// The Kafka topic whose partitions are read.
    package let topic: String
    /// Where replays to a position may start from.
    package let checkpoints: CheckpointStore

    /// The audit views of `dataDirectory`'s log of `topic`.
    package init(dataDirectory: String, topic: String) {
        self.log = EventLog(dataDirectory: dataDirectory)
        self.topic = topic
        self.checkpoints = CheckpointStore(dataDirectory: dataDirectory)
    }

    /// The device's state at a point: through `position` (partition P up to offset O,
    /// starting from the newest checkpoint at or before it), or every record whose Kafka
    /// timestamp is at or before `asOf` (ingestion time: what the chat list could show
    /// then), or the whole log. Only records keyed by the device are parsed.
    /// - Parameter partitions: the partitions to read (nil: all of the topic's).
    /// - Throws: `EventLogError` for a damaged log; `PositionNotInLog` when `position` is
    ///   no point of the device's history; `BeforeRetainedLog` for a point retention removed.
    package func device(
        _ deviceId: String, at position: LogPosition? = nil, asOf: Int64? = nil, partitions: [Int32]? = nil
    ) throws -> DeviceProjection? {
        try replay(deviceId, at: position, asOf: asOf, partitions: partitions).devices[deviceId]
    }

    /// The device's state at `asOf` (as `device(_:asOf:partitions:)`) and the log position
    /// that state reflects: its partition, as far as the replay folded it (nil for a device
    /// without state then). What `?asOf=` answers carry as `X-Ledger-Position`.
    package func pointInTime(
        _ deviceId: String, asOf: Int64, partitions: [Int32]? = nil
    ) throws -> (device: DeviceProjection?, position: LogPosition?) {
        let state = try replay(deviceId, at: nil, asOf: asOf, partitions: partitions)
        return (state.devices[deviceId], state.position(of: deviceId))
    }

    /// The replay behind `device(_:at:asOf:partitions:)`: the state with the device folded.
    private func replay(
        _ deviceId: String, at position: LogPosition?, asOf: Int64?, partitions: [Int32]?
    ) throws -> ProjectionState {
        var state = ProjectionState()
        let partitions = try self.partitions(partitions)
        // A checkpoint helps a replay to a position when it is at or before that position.
        if let position {
            guard partitions.contains(position.partition) else {
                let held = partitions.isEmpty ? "none" : partitions.map(String.init).joined(separator: ", ")
                throw PositionNotInLog("the log of \(topic) has no partition \(position.partition) (it has \(held))")
            }
            // The oldest checkpoint's position, for the error below (the loop reads them all then).
            var oldestPosition: Int64?
            for sequence in checkpoints.sequences().reversed() {
                guard case (var checkpointState, let info)? = try? checkpoints.read(sequence) else { continue }
                oldestPosition = info.positions[position.partition]
                guard let at = oldestPosition, at <= position.offset else { continue }
                try ErasureRefold.upgradeVersions(in: &checkpointState, readWith: info, log: log, topic: topic)
                state = checkpointState
                break
            }
            if let base = try log.retentionBase(topic: topic, partition: position.partition),
                (state.positions[position.partition] ?? -1) < base.baseOffset - 1
            {
                // A replay starts from the oldest checkpoint: the base.
                let from = oldestPosition.map { "from offset \($0) (its oldest checkpoint, the base; the log itself starts at \(base.baseOffset))" }
                    ?? "from offset \(base.baseOffset)"
                throw BeforeRetainedLog("partition \(position.partition) can be replayed \(from): offset \(position.offset) is before it")
            }
        } else if let base = try retainedBase(partitions) {
            state = base.state
            if let asOf, asOf < base.time {
                throw BeforeRetainedLog(
                    "the log is retained from checkpoint \(base.sequence) (Kafka time \(base.time)): "
                        + "--as-of \(asOf) is before it and cannot be answered")
            }
        }
        let key = Array(deviceId.utf8)
        let keyDigest = SHA256.hash(key)
        let parser = EventParser()
        // The last offset a replay to a position reads: the first past the position, or the partition's last.
        var lastOffset = position.flatMap { state.positions[$0.partition] }
        // A gap record whose lost range holds the position: the log has no state there (the
        // gap record's own offset is a point: the state with the gap, as ingest applied it).
        var lostAt: LogGap?
        for partition in partitions {
            if let position, position.partition != partition { continue }
            let start = (state.positions[partition] ?? -1) + 1
            try log.reader(topic: topic, partition: partition).forEach(from: start) { record in
                lastOffset = record.offset
                if let position, record.kind == .gap, let gap = LogGap(record), gap.firstLostOffset <= position.offset,
                    position.offset <= gap.lastLostOffset, position.offset != record.offset
                {
                    lostAt = gap
                    return false
                }
                if let position, record.offset > position.offset { return false }
                if let asOf, record.timestamp > asOf { return true }  // timestamps need not be ordered
                // Only the device's own records can change it; the rest are not parsed. Its
                // erasures count too, though their keys are redacted: they move its version.
                guard record.kind == .event,
                    record.key?.elementsEqual(key) ?? (LogErasure(record) != nil && record.keyDigest == keyDigest)
                else { return true }
                state.fold(StoredRecord(record, parser: parser), at: LogPosition(partition: partition, offset: record.offset), chainHash: record.chainHash)
                return true
            }
        }
        if let position {
            if let gap = lostAt {
                throw PositionNotInLog(
                    "offset \(position.offset) of partition \(position.partition) was lost at the broker (\(gap)): the log holds no state "
                        + "there; the nearest points are offsets \(gap.firstLostOffset - 1) and \(gap.lastLostOffset) (the gap record)")
            }
            guard let lastOffset, lastOffset >= position.offset else {
                throw PositionNotInLog(
                    "partition \(position.partition) of the log " + (lastOffset.map { "ends at offset \($0)" } ?? "holds no records")
                        + ": offset \(position.offset) is beyond it")
            }
            // A checkpoint holds every partition's devices: one from another partition is no
            // point of its history either.
            if let home = state.devices[deviceId]?.partition, home >= 0, home != position.partition {
                throw PositionNotInLog(
                    "device \(deviceId) has no records on partition \(position.partition) (its events are on partition \(home))"
                        + ": \(position) is no point of its history (a device's events all arrive on one partition)")
            }
            // No state at the point: the device is not on that partition, or not yet there.
            if state.devices[deviceId] == nil, try !holdsRecord(ofKey: key, digest: keyDigest, partition: position.partition) {
                let home = try partitions.first { partition in
                    try partition != position.partition && holdsRecord(ofKey: key, digest: keyDigest, partition: partition)
                }
                throw PositionNotInLog(
                    "device \(deviceId) has no records on partition \(position.partition)"
                        + (home.map { " (its events are on partition \($0))" } ?? "")
                        + ": \(position) is no point of its history (a device's events all arrive on one partition)")
            }
        }
        return state
    }

    /// Whether `partition` holds any record keyed by the device (by its key, or by the digest
    /// a redacted key keeps). Stops at the first.
    private func holdsRecord(ofKey key: [UInt8], digest: SHA256Digest, partition: Int32) throws -> Bool {
        var found = false
        try log.reader(topic: topic, partition: partition).forEach { record in
            found = record.key.map { $0.elementsEqual(key) } ?? (record.keyDigest == digest)
            return !found
        }
        return found
    }

    /// A replay asked for a position that is no point of the device's history: a partition
    /// the log does not hold, an offset past the partition's last record, or a partition
    /// the device's events are not on.
    package struct PositionNotInLog: Error, Sendable, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }

    /// A replay asked for a point before the retained log (`RetentionBase`).
    package struct BeforeRetainedLog: Error, Sendable, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }

    /// When any of `partitions` lost its start to retention: the oldest checkpoint (the
    /// base every replay starts from) and its time (the latest Kafka timestamp of a record
    /// it holds, per the log or the retention base), nil when none did.
    /// - Throws: `BeforeRetainedLog` when no checkpoint is left to start from.
    private func retainedBase(_ partitions: [Int32]) throws -> (state: ProjectionState, sequence: UInt64, time: Int64)? {
        var bases: [Int32: RetentionBase] = [:]
        for partition in partitions {
            if let base = try log.retentionBase(topic: topic, partition: partition) { bases[partition] = base }
        }
        guard !bases.isEmpty else { return nil }
        guard let sequence = checkpoints.sequences().first, let (state, info) = try? checkpoints.read(sequence) else {
            throw BeforeRetainedLog("the log is retained from a base but no checkpoint is left to replay from")
        }
        var time: Int64 = -1
        for (partition, base) in bases {
            time = max(time, base.removedUpToTimestamp)
            guard let at = info.positions[partition], at >= base.baseOffset else { continue }
            try log.reader(topic: topic, partition: partition).forEach(from: base.baseOffset) { record in
                guard record.offset <= at else { return false }
                time = max(time, record.timestamp)
                return true
            }
        }
        return (state, sequence, time)
    }

    /// Which events `events` yields.
    package struct EventFilter: Sendable {
        /// Only events keyed by this device (nil: all).
        package var deviceId: String?
        /// Only events of this chat (nil: all).
        package var chatId: String?
        /// The other ids of `chatId`'s contact (a LID beside a phone id, from
        /// `contact.aliased`): their events are the chat's too (the fold merged them).
        package var chatAliases: [String] = []
        /// `occurredAt` bounds, inclusive.
        package var from: Int64 = .min
        package var to: Int64 = .max
        /// The partitions to read (nil: all of the topic's), in ascending order.
        package var partitions: [Int32]?

        /// A filter; by default every event of every partition.
        package init(deviceId: String? = nil, chatId: String? = nil, from: Int64 = .min, to: Int64 = .max, partitions: [Int32]? = nil) {
            self.deviceId = deviceId
            self.chatId = chatId
            self.from = from
            self.to = to
            self.partitions = partitions
        }
    }

    /// How `events` shows an event.
    package enum EventLine: Sendable {
        /// The value exactly as received (`chatledger export`).
        case asReceived
        /// `{"partition":P,"offset":O,"timestamp":T,"event":<the value as received>}` (the
        /// auditor `events` route, `chatledger export --with-position`).
        case withPosition
    }

    /// Visits the events that pass `filter`, partition by partition in offset order,
    /// starting at `start` (a position from an earlier call), each as one line in the form
    /// `line` says. `body` returns false to decline the line it was given and stop; the
    /// result is the position of that line, to continue from (nil: the end was reached). A
    /// record an erasure redacted is shown as such, in either form `{"partition":P,"offset":O,
    /// "timestamp":T,"redacted":{"erasureOffset":E}}` (its value is gone), when the filter
    /// names no chat (its chat cannot be told) and its device is the filter's (by the digest
    /// the redaction keeps) or none is given. Memory stays constant: nothing is collected.
    /// - Throws: `EventLogError` for a damaged log, or what `body` throws.
    @discardableResult
    package func events(
        _ filter: EventFilter, from start: LogPosition? = nil, line form: EventLine = .withPosition, _ body: ([UInt8]) throws -> Bool
    ) throws -> LogPosition? {
        let device = filter.deviceId.map { Array($0.utf8) }
        let deviceDigest = device.map(SHA256.hash)
        // Compared as stored: no String per event.
        let chats = filter.chatId.map { [InlineString($0)] + filter.chatAliases.map(InlineString.init) }
        let parser = EventParser()
        var resume: LogPosition?
        for partition in try partitions(filter.partitions) {
            if let start, partition < start.partition { continue }
            let first = start.map { $0.partition == partition ? $0.offset : 0 } ?? 0
            try log.reader(topic: topic, partition: partition).forEach(from: first) { record in
                guard record.kind == .event else { return true }
                guard let value = record.value else {
                    guard record.isRedacted, chats == nil, deviceDigest == nil || record.keyDigest == deviceDigest,
                        let erasureOffset = record.erasureOffset
                    else { return true }
                    let line = Self.redactionLine(
                        partition: partition, offset: record.offset, timestamp: record.timestamp, erasureOffset: erasureOffset)
                    if try body(line) { return true }
                    resume = LogPosition(partition: partition, offset: record.offset)
                    return false
                }
                // Cheap filter on the key (= deviceId) before parsing; a redacted key (an
                // erasure record's) by the digest its marker keeps.
                if let device, !(record.key.map { $0.elementsEqual(device) } ?? (record.keyDigest == deviceDigest)) { return true }
                let position = LogPosition(partition: partition, offset: record.offset)
                let event: Event
                switch StoredRecord(record, parser: parser) {
                case .event(let parsed):
                    event = parsed
                case .unreadable(let error):
                    // It cannot be filtered or re-encoded: reported with its position, never silently left out.
                    StoredRecord.reportUnreadable(error, at: position)
                    return true
                case .deadLetter, .gap, .redacted:
                    return true
                }
                guard event.occurredAt >= filter.from, event.occurredAt <= filter.to,
                    chats.map({ chats in event.chatIdText.map(chats.contains) ?? false }) ?? true
                else { return true }
                let line =
                    switch form {
                    case .asReceived: Self.receivedLine(value: value, event: event)
                    case .withPosition:
                        Self.exportLine(partition: partition, offset: record.offset, timestamp: record.timestamp, value: value, event: event)
                    }
                if try body(line) { return true }
                resume = position  // not taken: the next call starts with it
                return false
            }
            if resume != nil { return resume }
        }
        return nil
    }

    /// The other ids of `chatId`'s contact that the log's `contact.aliased` events link to
    /// it, directly or through other ids (of `deviceId` only, when given): what
    /// `EventFilter.chatAliases` wants when no projection is at hand (`export --chat`).
    /// - Throws: `EventLogError` for a damaged log.
    package func chatAliases(of chatId: String, deviceId: String?, partitions only: [Int32]? = nil) throws -> [String] {
        let device = deviceId.map { Array($0.utf8) }
        let parser = EventParser()
        var links: [(String, String)] = []
        for partition in try partitions(only) {
            try log.reader(topic: topic, partition: partition).forEach { record in
                guard record.kind == .event, let value = record.value, value.firstRange(of: ErasureSelector.aliasTypeName) != nil,
                    device.map({ device in record.key.map { $0.elementsEqual(device) } ?? false }) ?? true,
                    let event = try? parser.parse(value), case .contactAliased(let aliased) = event.payload, let chat = event.chatId
                else { return true }
                links.append((chat, aliased.alias))
                return true
            }
        }
        var ids: Set<String> = [chatId]
        var grew = true
        while grew {
            grew = false
            for (chat, alias) in links where ids.contains(chat) != ids.contains(alias) {
                ids.insert(chat)
                ids.insert(alias)
                grew = true
            }
        }
        ids.remove(chatId)
        return ids.sorted()
    }

    private func partitions(_ only: [Int32]?) throws -> [Int32] {
        if let only { return only.sorted() }
        return try log.partitions().filter { $0.topic == topic }.map(\.partition).sorted()
    }

    /// The export line of a redacted record (without the line feed).
    static func redactionLine(partition: Int32, offset: Int64, timestamp: Int64, erasureOffset: Int64) -> [UInt8] {
        var line = JSONWriter()
        line.beginObject()
        line.field("partition", Int64(partition))
        line.field("offset", offset)
        line.field("timestamp", timestamp)
        line.key("redacted")
        var bytes = line.bytes
        var marker = JSONWriter()
        marker.beginObject()
        marker.field("erasureOffset", erasureOffset)
        marker.endObject()
        bytes += marker.bytes
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// One export line with the event's coordinates (without the line feed), the event as
    /// `receivedLine` shows it.
    static func exportLine(partition: Int32, offset: Int64, timestamp: Int64, value: UnsafeRawBufferPointer, event: Event) -> [UInt8] {
        var line = JSONWriter()
        line.beginObject()
        line.field("partition", Int64(partition))
        line.field("offset", offset)
        line.field("timestamp", timestamp)
        line.key("event")
        var bytes = line.bytes
        appendReceived(value, event: event, to: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// The event as received (without the line feed): the value verbatim unless it holds a
    /// line break, which would split the line; then its canonical encoding.
    static func receivedLine(value: UnsafeRawBufferPointer, event: Event) -> [UInt8] {
        var bytes: [UInt8] = []
        appendReceived(value, event: event, to: &bytes)
        return bytes
    }

    private static func appendReceived(_ value: UnsafeRawBufferPointer, event: Event, to bytes: inout [UInt8]) {
        if value.contains(0x0A) || value.contains(0x0D) {
            bytes += EventEncoder.encode(event)
        } else {
            bytes += value
        }
    }
}
