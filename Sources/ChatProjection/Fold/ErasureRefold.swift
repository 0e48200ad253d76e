import ChatEvents
import EventLog

/// A device folded again from its partition's log after a chat or contact erasure, as a
/// replay from zero gives it once ingest has redacted what the erasure names: the records
/// that the device's erasures up to that point name are left out whether or not their
/// redaction has run yet. `ingest` refolds after redacting; `serve`, which follows the log
/// from another process and may read an erasure before its redaction, refolds with this,
/// so both hold the same device (version included) at the same position.
package enum ErasureRefold {
    /// The device `deviceId` folded from the start of `partition`'s log through `offset`
    /// (an erasure record's), every record one of its erasures names left out; nil if
    /// nothing of it is left. The caller makes sure retention has not removed the log's
    /// start (`EventLog.retentionBase`), as ingest does before its refold.
    /// - Throws: `EventLogError` for a damaged log.
    package static func device(_ deviceId: String, log: EventLog, topic: String, partition: Int32, through offset: Int64) throws -> DeviceProjection? {
        let reader = log.reader(topic: topic, partition: partition)
        let digestName = DeviceProjection.digestName(deviceId)
        let parser = EventParser()
        // The device's erasures: their records carry the reason `erasure: <scope>`, and
        // their values (kept by the redaction) name the device by digest.
        var selectors: [ErasureSelector] = []
        var erasures: [Int64: Event] = [:]
        try reader.forEach(from: 0) { record in
            guard record.offset <= offset else { return false }
            guard LogErasure(record) != nil, let value = record.value, let event = try? parser.parse(value),
                event.deviceId == digestName, case .ledgerErased(let erasure) = event.payload,
                let selector = ErasureSelector(erasure, deviceDigestName: event.deviceId, erasureOffset: record.offset)
            else { return true }
            selectors.append(selector)
            erasures[record.offset] = event
            return true
        }
        for index in selectors.indices { try selectors[index].learnAliases(in: reader) }
        let key = Array(deviceId.utf8)
        var state = ProjectionState()
        try reader.forEach(from: 0) { record in
            guard record.offset <= offset else { return false }
            let position = LogPosition(partition: partition, offset: record.offset)
            // An erasure record, its key redacted by itself or not yet: folded as the
            // replay of the redacted log folds it (its value stays), which moves the
            // device's version past its offset.
            if let erasure = erasures[record.offset] {
                state.fold(.event(erasure), at: position, chainHash: record.chainHash)
                return true
            }
            guard record.kind == .event, let recordKey = record.key, recordKey.elementsEqual(key) else { return true }
            var named = false
            for index in selectors.indices where record.offset < selectors[index].erasureOffset {
                // Every selector sees every earlier record, in order: a contact's aliases
                // are learnt from the `contact.aliased` events as they come.
                if selectors[index].fields(record).contains(.value) { named = true }
            }
            state.fold(named ? .redacted : StoredRecord(record, parser: parser), at: position, chainHash: record.chainHash)
            return true
        }
        return state.devices[deviceId]
    }

    /// After a load that replayed the log from a checkpoint (`ProjectionRecovery.load`):
    /// each device a chat or contact erasure after `positions` names, refolded through the
    /// state's position as ingest refolds it (an erasure ingest wrote after the checkpoint
    /// `serve` loaded, whose own checkpoint was not on disk yet). Partitions retention has
    /// trimmed keep the fold's drop, as in ingest.
    /// - Returns: how many devices were refolded.
    /// - Throws: `EventLogError` for a damaged log.
    @discardableResult
    package static func refoldErasedDevices(
        in state: inout ProjectionState, log: EventLog, topic: String, after positions: [Int32: Int64]
    ) throws -> Int {
        let parser = EventParser()
        var refolded = 0
        for (logTopic, partition) in try log.partitions() where logTopic == topic {
            guard let through = state.positions[partition], try log.retentionBase(topic: topic, partition: partition) == nil else { continue }
            var named: Set<String> = []
            try log.reader(topic: topic, partition: partition).forEach(from: (positions[partition] ?? -1) + 1) { record in
                guard record.offset <= through else { return false }
                guard let erasure = LogErasure(record), erasure.scope != .device, let value = record.value,
                    let event = try? parser.parse(value)
                else { return true }
                named.insert(event.deviceId)
                return true
            }
            for digestName in named.sorted() {
                guard let deviceId = state.device(named: digestName) else { continue }
                let device = try device(deviceId, log: log, topic: topic, partition: partition, through: through)
                state.replaceDevice(deviceId, with: device)
                refolded += 1
            }
        }
        return refolded
    }

    /// A state read from a checkpoint described by `info` brought to this build's version
    /// rule when the checkpoint's format is older than this build's (`upgradeVersions`);
    /// unchanged otherwise. The one place that decides which checkpoints need it.
    /// - Returns: how many devices were refolded or given a version.
    /// - Throws: `EventLogError` for a damaged log.
    @discardableResult
    package static func upgradeVersions(in state: inout ProjectionState, readWith info: CheckpointInfo, log: EventLog, topic: String) throws -> Int {
        var upgraded = 0
        if info.formatVersion < 4 { upgraded += try upgradeVersions(in: &state, log: log, topic: topic) }
        if info.formatVersion < 5 { upgraded += try refoldAliasedDevices(in: &state, log: log, topic: topic) }
        if info.formatVersion < 6 { upgraded += try refoldDevicesWithLateIncoming(in: &state, log: log, topic: topic) }
        if info.formatVersion < 7 { upgraded += try refoldDevicesWithEditAfterRevoke(in: &state, log: log, topic: topic) }
        return upgraded
    }

    /// A state read from a checkpoint of format 2 to 6 brought to format 7's fold, where an
    /// edit leaves a revoked last message empty: each device with a `message.edited` in the
    /// log (up to the state's positions) of a message it revoked before is refolded, as
    /// `refoldAliasedDevices` refolds. Partitions retention trimmed keep the checkpoint's state.
    /// - Returns: how many devices were refolded.
    /// - Throws: `EventLogError` for a damaged log.
    static func refoldDevicesWithEditAfterRevoke(in state: inout ProjectionState, log: EventLog, topic: String) throws -> Int {
        let markers = [Array(#""message.revoked""#.utf8), Array(#""message.edited""#.utf8)]
        let partitions = try untrimmedPartitions(of: state, log: log, topic: topic)
        var revoked: [[UInt8]: Set<String>] = [:]
        var flagged: [[UInt8]: Int32] = [:]
        let erased = try scan(partitions, log: log, topic: topic, naming: markers, wants: { flagged[$0] == nil }) { partition, key, event in
            switch event.payload {
            case .messageRevoked(let revoke): revoked[key, default: []].insert(revoke.messageId)
            case .messageEdited(let edit) where revoked[key]?.contains(edit.messageId) == true: flagged[key] = partition
            default: break
            }
        }
        return try refold(flagged, erased: erased, partitions: partitions, in: &state, log: log, topic: topic)
    }

    /// A state read from a checkpoint of format 2 to 5 brought to format 6's fold, where an
    /// incoming message more than a second older than an own message the chat holds is
    /// read: each device with an incoming message in the log (up to the state's positions)
    /// that arrived after an own message of the device (or a snapshot's own last message)
    /// more than a second later, or with a snapshot without a name (format 6 leaves its
    /// chat without one, where earlier builds held ""), is refolded, as `refoldAliasedDevices`
    /// refolds (a superset of the devices the rule changes: every chat of the device
    /// counts). Partitions retention trimmed keep the checkpoint's state.
    /// - Returns: how many devices were refolded.
    /// - Throws: `EventLogError` for a damaged log.
    static func refoldDevicesWithLateIncoming(in state: inout ProjectionState, log: EventLog, topic: String) throws -> Int {
        let markers = [Array(#""message.created""#.utf8), Array(#""chat.snapshot""#.utf8)]
        let partitions = try untrimmedPartitions(of: state, log: log, topic: topic)
        var newestOwn: [[UInt8]: Int64] = [:]
        var flagged: [[UInt8]: Int32] = [:]
        let erased = try scan(partitions, log: log, topic: topic, naming: markers) { partition, key, event in
            switch event.payload {
            case .messageCreated(let message) where message.fromMe:
                newestOwn[key] = max(newestOwn[key] ?? .min, event.occurredAt)
            case .messageCreated(let message):
                if message.kind != .system, event.occurredAt &+ ChatState.replyClockMargin < newestOwn[key] ?? .min, flagged[key] == nil {
                    flagged[key] = partition
                }
            case .chatSnapshot(let snapshot):
                // A snapshot whose last message is own puts that message in the history.
                if let last = snapshot.lastMessage, last.fromMe { newestOwn[key] = max(newestOwn[key] ?? .min, last.timestamp) }
                // One without a name leaves the chat without one from format 6 on (it was "").
                if snapshot.name.isEmpty, flagged[key] == nil { flagged[key] = partition }
            default:
                break
            }
        }
        return try refold(flagged, erased: erased, partitions: partitions, in: &state, log: log, topic: topic)
    }

    /// Reads `partitions` up to their positions once: hands `body` each event record whose
    /// key `wants` takes and whose value contains one of `markers` (parsed only then, with its
    /// partition and Kafka key), and returns
    /// the digest names of the devices erasures name. An erasure record's key (the device
    /// id) is redacted by itself: its value names the device.
    private static func scan(
        _ partitions: [(partition: Int32, through: Int64)], log: EventLog, topic: String, naming markers: [[UInt8]],
        wants: (_ key: [UInt8]) -> Bool = { _ in true }, _ body: (_ partition: Int32, _ key: [UInt8], _ event: Event) -> Void
    ) throws -> Set<String> {
        let parser = EventParser()
        var erased: Set<String> = []
        for (partition, through) in partitions {
            try log.reader(topic: topic, partition: partition).forEach { record in
                guard record.offset <= through, let value = record.value else { return record.offset <= through }
                if LogErasure(record) != nil {
                    if let event = try? parser.parse(value) { erased.insert(event.deviceId) }
                } else if record.kind == .event, markers.contains(where: { value.firstRange(of: $0) != nil }),
                    let key = record.key.map(Array.init), wants(key), let event = try? parser.parse(value)
                {
                    body(partition, key, event)
                }
                return true
            }
        }
        return erased
    }

    /// The partitions of `topic` that `state` has positions in and retention has not
    /// trimmed, ascending, each with its position.
    private static func untrimmedPartitions(of state: ProjectionState, log: EventLog, topic: String) throws -> [(partition: Int32, through: Int64)] {
        var partitions: [(partition: Int32, through: Int64)] = []
        for (logTopic, partition) in try log.partitions() where logTopic == topic {
            guard let through = state.positions[partition], try log.retentionBase(topic: topic, partition: partition) == nil else { continue }
            partitions.append((partition, through))
        }
        return partitions.sorted { $0.partition < $1.partition }
    }

    /// A state read from a checkpoint of format 2 to 4 brought to format 5's fold, which
    /// keeps a `contact.aliased` that comes before a device's first chat (the older fold
    /// dropped it with the device, so the LID's chat and the phone's stayed apart): each
    /// device with a `contact.aliased` in the log up to the state's positions is refolded
    /// through them: in one fold over the partitions in ascending order (as a replay from
    /// zero folds them, so a device on two partitions keeps both), or, for a device an
    /// erasure names, as an erasure refolds it (`device(_:log:topic:partition:through:)`).
    /// Partitions retention has trimmed cannot be refolded: their devices keep the
    /// checkpoint's state.
    /// - Returns: how many devices were refolded.
    /// - Throws: `EventLogError` for a damaged log.
    static func refoldAliasedDevices(in state: inout ProjectionState, log: EventLog, topic: String) throws -> Int {
        let marker = ErasureSelector.aliasTypeName
        let partitions = try untrimmedPartitions(of: state, log: log, topic: topic)
        // The devices with an alias (by their Kafka key, the device id) and the partition it was in.
        var aliased: [[UInt8]: Int32] = [:]
        let erased = try scan(partitions, log: log, topic: topic, naming: [marker], wants: { aliased[$0] == nil }) { partition, key, event in
            if case .contactAliased = event.payload { aliased[key] = partition }
        }
        return try refold(aliased, erased: erased, partitions: partitions, in: &state, log: log, topic: topic)
    }

    /// Refolds the devices `devices` names (by Kafka key, with the partition their first
    /// record was met on) through `partitions`' positions: one fold over the partitions in
    /// ascending order (as a replay from zero folds them), or, for a device an erasure
    /// names (`erased`, digest names), as an erasure refolds it. A device whose events
    /// arrive on a partition not in `partitions` (retention trimmed it) keeps its state.
    /// - Returns: how many devices were refolded.
    private static func refold(
        _ devices: [[UInt8]: Int32], erased: Set<String>, partitions: [(partition: Int32, through: Int64)], in state: inout ProjectionState,
        log: EventLog, topic: String
    ) throws -> Int {
        let parser = EventParser()
        let aliased = devices
        guard !aliased.isEmpty else { return 0 }
        var refolded = 0
        var plain: Set<[UInt8]> = []
        for (key, partition) in aliased.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let deviceId = String(decoding: key, as: UTF8.self)
            guard erased.contains(DeviceProjection.digestName(deviceId)) else {
                plain.insert(key)
                continue
            }
            let at = state.devices[deviceId]?.partition ?? partition
            guard let through = partitions.first(where: { $0.partition == at })?.through else { continue }
            state.replaceDevice(deviceId, with: try device(deviceId, log: log, topic: topic, partition: at, through: through))
            refolded += 1
        }
        // A device whose events arrive on a partition retention trimmed keeps its state.
        let untrimmed = Set(partitions.map(\.partition))
        plain = plain.filter { key in state.devices[String(decoding: key, as: UTF8.self)].map { untrimmed.contains($0.partition) } ?? true }
        guard !plain.isEmpty else { return refolded }
        var fold = ProjectionState()
        for (partition, through) in partitions {
            try log.reader(topic: topic, partition: partition).forEach { record in
                guard record.offset <= through else { return false }
                guard record.kind == .event, let key = record.key, plain.contains(Array(key)) else { return true }
                fold.fold(StoredRecord(record, parser: parser), at: LogPosition(partition: partition, offset: record.offset), chainHash: record.chainHash)
                return true
            }
        }
        for key in plain.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let deviceId = String(decoding: key, as: UTF8.self)
            state.replaceDevice(deviceId, with: fold.devices[deviceId])
            refolded += 1
        }
        return refolded
    }

    /// A state read from a checkpoint of format version 2 or 3 brought to this build's
    /// version rule (`DeviceProjection.version(afterErasureAt:from:)`, and
    /// `ProjectionState.erasedDeviceVersions`): each device an erasure in the log up to the
    /// state's position names is refolded through that position, and a device an erasure
    /// left without state gets the version it ends with. Then the state is the one a replay
    /// from zero gives, version included. Partitions retention has trimmed cannot be
    /// refolded and keep their versions. Reads the log up to the state's position once
    /// (only erasure records are parsed); a state without erasures is unchanged.
    /// - Returns: how many devices were refolded or given a version.
    /// - Throws: `EventLogError` for a damaged log.
    @discardableResult
    package static func upgradeVersions(in state: inout ProjectionState, log: EventLog, topic: String) throws -> Int {
        let parser = EventParser()
        var upgraded = 0
        for (logTopic, partition) in try log.partitions() where logTopic == topic {
            guard let through = state.positions[partition], try log.retentionBase(topic: topic, partition: partition) == nil else { continue }
            // Each erased device's digest name, with the offset of its last erasure.
            var lastErasure: [String: Int64] = [:]
            try log.reader(topic: topic, partition: partition).forEach(from: 0) { record in
                guard record.offset <= through else { return false }
                guard LogErasure(record) != nil, let value = record.value, let event = try? parser.parse(value),
                    case .ledgerErased = event.payload
                else { return true }
                lastErasure[event.deviceId] = record.offset
                return true
            }
            for (digestName, offset) in lastErasure.sorted(by: { $0.key < $1.key }) {
                var refolded: DeviceProjection?
                if let deviceId = state.device(named: digestName) {
                    refolded = try device(deviceId, log: log, topic: topic, partition: partition, through: through)
                    state.replaceDevice(deviceId, with: refolded)
                }
                if refolded == nil {
                    // Nothing of it after its last erasure, where its version stands.
                    state.keepErasedDeviceVersion(DeviceProjection.version(afterErasureAt: offset, from: 0), digestName: digestName)
                }
                upgraded += 1
            }
        }
        return upgraded
    }
}
