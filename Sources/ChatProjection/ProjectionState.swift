import ChatEvents
import EventLog
import LedgerSupport

/// Every device's chat list, folded from the log: a pure value, `apply` is deterministic.
package struct ProjectionState: Sendable, Hashable {
    package private(set) var devices: [String: DeviceProjection] = [:]
    /// Per partition, the last log position applied (for checkpoints and `X-Ledger-Position`).
    package private(set) var positions: [Int32: Int64] = [:]
    /// Per partition, the chain hash of the last applied record (for checkpoints).
    package private(set) var chainHashes: [Int32: SHA256Digest] = [:]
    /// The recent event ids of each partition, which make redeliveries no-ops.
    package private(set) var eventIds: PartitionedEventIdWindow
    /// Events seen, by outcome: `applied`, `duplicate`, `ignored` (unknown type, status posts).
    package private(set) var counts = Counts()
    /// The version of each device an erasure left with no state (a device erasure, or a chat
    /// or contact erasure of all it held), by the SHA-256 of its id: the device's next event
    /// continues from it instead of from 0, so no version handed out before the erasure
    /// comes back for other content. Keyed by digest because a replay of the redacted log
    /// knows an erased device only by the digest its erasure names. Checkpoints store it
    /// (format version 4) and the digest covers it.
    package private(set) var erasedDeviceVersions: [SHA256Digest: UInt64] = [:]
    /// The ids of `devices` by the SHA-256 of the id (how a `ledger.erased` event names its
    /// device): built at the first lookup, then kept with `devices`, so an erasure finds its
    /// device without hashing every id. Derived from `devices`: not part of `==` and
    /// `hash(into:)`, not in checkpoints.
    private var deviceDigests: [SHA256Digest: String]?

    package struct Counts: Sendable, Hashable {
        package var applied = 0
        package var duplicate = 0
        package var ignored = 0
        package var deadLetters = 0
        /// Event records this build could not parse (see `StoredRecord.unreadable`).
        /// Checkpoints store it (format version 3), so a restart keeps the count.
        package var unreadable = 0
    }

    /// What `apply` did with an event.
    package enum Outcome: Sendable, Equatable {
        case applied(deviceVersion: UInt64)
        case duplicate
        case ignored
    }

    /// Equal when the devices, positions, chain hashes, event-id windows, counts and erased
    /// devices' versions are
    /// (`deviceDigests`, a lookup table derived from the devices, is left out).
    package static func == (lhs: ProjectionState, rhs: ProjectionState) -> Bool {
        lhs.devices == rhs.devices && lhs.positions == rhs.positions && lhs.chainHashes == rhs.chainHashes
            && lhs.eventIds == rhs.eventIds && lhs.counts == rhs.counts && lhs.erasedDeviceVersions == rhs.erasedDeviceVersions
    }

    /// Hashes what `==` compares.
    package func hash(into hasher: inout Hasher) {
        hasher.combine(devices)
        hasher.combine(positions)
        hasher.combine(chainHashes)
        hasher.combine(eventIds)
        hasher.combine(counts)
        hasher.combine(erasedDeviceVersions)
    }

    /// - Parameter eventIdWindow: event ids remembered per partition to recognise
    ///   redeliveries.
    package init(eventIdWindow: Int = 1_000_000) {
        eventIds = PartitionedEventIdWindow(capacity: eventIdWindow)
    }

    init(
        devices: [String: DeviceProjection], positions: [Int32: Int64], chainHashes: [Int32: SHA256Digest],
        eventIds: PartitionedEventIdWindow, counts: Counts, erasedDeviceVersions: [SHA256Digest: UInt64] = [:]
    ) {
        self.devices = devices
        self.positions = positions
        self.chainHashes = chainHashes
        self.eventIds = eventIds
        self.counts = counts
        self.erasedDeviceVersions = erasedDeviceVersions
    }

    /// A hint that `event` is applied soon: its id's slot in the event-id window is
    /// fetched into the cache meanwhile. Changes nothing; returns the id's hash for
    /// `apply(_:eventIdHash:at:chainHash:)`. Mutating only so that a caller holding the
    /// state in a closure capture reaches it in place: a non-mutating call copied the
    /// whole state (a retain and release of each of its tables) per event.
    mutating func prefetch(_ event: Event, partition: Int32) -> UInt64 {
        let hash = event.eventIdHash
        eventIds.prefetch(hash: hash, partition: partition)
        return hash
    }

    /// Applies one event read from the log at `position` (with that record's chain hash).
    /// Duplicates (an `eventId` seen before on the same partition) change nothing but the
    /// position.
    @discardableResult
    package mutating func apply(_ event: Event, at position: LogPosition, chainHash: SHA256Digest = .zero) -> Outcome {
        apply(event, eventIdHash: event.eventIdHash, at: position, chainHash: chainHash)
    }

    /// `apply(_:at:chainHash:)` with the event id's hash already computed (by `prefetch`).
    @discardableResult
    mutating func apply(_ event: Event, eventIdHash: UInt64, at position: LogPosition, chainHash: SHA256Digest) -> Outcome {
        advance(to: position, chainHash: chainHash)
        guard eventIds.insert(hash: eventIdHash, partition: position.partition) else {
            counts.duplicate += 1
            return .duplicate
        }
        if case .ledgerErased(let erasure) = event.payload {
            guard let version = erase(erasure, deviceDigest: event.deviceId, at: position.offset) else {
                counts.ignored += 1
                return .ignored
            }
            counts.applied += 1
            return .applied(deviceVersion: version)
        }
        // One hash lookup, then mutated in place through a single access (reading the
        // version back through the dictionary copied the whole device); a device appears
        // with its first applied event, or with a fact it keeps without a chat changing: a
        // `contact.aliased` before any message (bridges teach LID–phone pairs first).
        let version: UInt64?
        if let index = devices.index(forKey: event.deviceId) {
            version = Self.apply(event, partition: position.partition, to: &devices.values[index])
        } else {
            var device = DeviceProjection(deviceId: event.deviceId)
            // A device an erasure ended continues from the version it had then.
            let erased = erasedDeviceVersions.isEmpty ? nil : Self.digest(event.deviceId)
            if let erased, let erasedVersion = erasedDeviceVersions[erased] { device.version = erasedVersion }
            version = Self.apply(event, partition: position.partition, to: &device)
            if version == nil, !device.aliases.isEmpty { device.partition = position.partition }
            if version != nil || !device.aliases.isEmpty {
                devices[event.deviceId] = device
                if let erased { erasedDeviceVersions[erased] = nil }
                if deviceDigests != nil { deviceDigests?[erased ?? Self.digest(event.deviceId)] = event.deviceId }
            }
        }
        guard let version else {
            counts.ignored += 1
            return .ignored
        }
        counts.applied += 1
        return .applied(deviceVersion: version)
    }

    /// Applies `event` to `device`; its new version, or nil if the event did not concern it.
    private static func apply(_ event: Event, partition: Int32, to device: inout DeviceProjection) -> UInt64? {
        guard device.apply(event) else { return nil }
        device.partition = partition
        return device.version
    }

    /// Puts a device's state in place of the one held (nil: removes it, keeping its version
    /// in `erasedDeviceVersions`): a chat or contact erasure refolds the device from the
    /// redacted log, so the live state is the one a replay gives (its version set past the
    /// erasure's offset, as the fold sets it).
    package mutating func replaceDevice(_ deviceId: String, with device: DeviceProjection?) {
        let digest = Self.digest(deviceId)
        if device != nil {
            erasedDeviceVersions[digest] = nil
        } else if let removed = devices[deviceId], removed.version > 0 {
            erasedDeviceVersions[digest] = max(erasedDeviceVersions[digest] ?? 0, removed.version)
        }
        devices[deviceId] = device
        if deviceDigests != nil { deviceDigests?[digest] = device == nil ? nil : deviceId }
    }

    /// Takes out what `partition`'s log put in: its devices (those whose events arrive on
    /// it), its position, chain hash and event ids, and the versions kept for the devices
    /// erased there (`erasedDevices`, by digest), so the digest is what a replay of the
    /// other partitions gives. The counts are totals of events seen, and keep them.
    /// Returns the ids of the devices removed.
    @discardableResult
    package mutating func dropPartition(_ partition: Int32, erasedDevices: [SHA256Digest] = []) -> [String] {
        let removed = devices.compactMap { $0.value.partition == partition ? $0.key : nil }
        for deviceId in removed { devices[deviceId] = nil }
        positions[partition] = nil
        chainHashes[partition] = nil
        eventIds.forget(partition: partition)
        for digest in erasedDevices { erasedDeviceVersions[digest] = nil }
        deviceDigests = nil
        return removed
    }

    /// Notes `version` as that of the device `digestName` (`sha256:` and the hex SHA-256 of
    /// its id) names, which an erasure left without state (`erasedDeviceVersions`), unless a
    /// higher one is noted; nothing for a name that is not a digest.
    package mutating func keepErasedDeviceVersion(_ version: UInt64, digestName: String) {
        guard LedgerErasure.isDigestName(digestName),
            let digest = SHA256Digest(hex: String(digestName.dropFirst(LedgerErasure.digestPrefix.count)))
        else { return }
        erasedDeviceVersions[digest] = max(erasedDeviceVersions[digest] ?? 0, version)
    }

    /// The id of the device a `ledger.erased` event names (`sha256:` and the lowercase hex
    /// SHA-256 of the id), nil if none held. Mutating only to build or use the digest
    /// table (`deviceDigests`): a direct lookup after the first call.
    package mutating func device(named digestName: String) -> String? {
        guard LedgerErasure.isDigestName(digestName),
            let digest = SHA256Digest(hex: String(digestName.dropFirst(LedgerErasure.digestPrefix.count)))
        else { return nil }
        if deviceDigests == nil {
            var table: [SHA256Digest: String] = [:]
            table.reserveCapacity(devices.count)
            for deviceId in devices.keys { table[Self.digest(deviceId)] = deviceId }
            deviceDigests = table
        }
        return deviceDigests?[digest]
    }

    /// The SHA-256 of a device id (`deviceDigests`' key).
    private static func digest(_ deviceId: String) -> SHA256Digest { SHA256.hash(Array(deviceId.utf8)) }

    /// Applies an erasure at log offset `offset`: a device erasure drops the device; a chat
    /// or contact erasure drops that chat of it and moves the device's version past the
    /// erasure's offset (`DeviceProjection.version(afterErasureAt:from:)`), above every
    /// version it had, even when the chat is no longer held (a replay of the redacted log).
    /// A device the erasure leaves without state, or does not find (a replay of the redacted
    /// log no longer holds what a device erasure removed), keeps that version in
    /// `erasedDeviceVersions` for its next event.
    /// Returns the device's new version, nil if the device is not held.
    private mutating func erase(_ erasure: LedgerErasure, deviceDigest: String, at offset: Int64) -> UInt64? {
        guard let deviceId = device(named: deviceDigest), var device = devices[deviceId] else {
            keepErasedDeviceVersion(DeviceProjection.version(afterErasureAt: offset, from: 0), digestName: deviceDigest)
            return nil
        }
        if erasure.scope == .device {
            devices[deviceId] = nil
            deviceDigests?[Self.digest(deviceId)] = nil
            let version = DeviceProjection.version(afterErasureAt: offset, from: device.version)
            erasedDeviceVersions[Self.digest(deviceId)] = version
            return version
        }
        device.erase(erasure, atOffset: offset)
        devices[deviceId] = device
        return device.version
    }

    /// Takes in a state folded from other partitions (for a parallel replay): its devices,
    /// positions, counts and event ids. Returns false, and takes nothing, if the two share
    /// a device or a partition, when the result would depend on the order of events.
    mutating func absorb(_ other: ProjectionState) -> Bool {
        guard other.positions.keys.allSatisfy({ positions[$0] == nil }),
            other.devices.keys.allSatisfy({ devices[$0] == nil }),
            other.erasedDeviceVersions.keys.allSatisfy({ erasedDeviceVersions[$0] == nil }),
            other.erasedDeviceVersions.isEmpty || devices.keys.allSatisfy({ other.erasedDeviceVersions[Self.digest($0)] == nil }),
            erasedDeviceVersions.isEmpty || other.devices.keys.allSatisfy({ erasedDeviceVersions[Self.digest($0)] == nil }),
            eventIds.absorb(other.eventIds)
        else { return false }
        erasedDeviceVersions.merge(other.erasedDeviceVersions) { mine, _ in mine }
        devices.merge(other.devices) { mine, _ in mine }
        deviceDigests = nil  // built again at the next lookup
        positions.merge(other.positions) { mine, _ in mine }
        chainHashes.merge(other.chainHashes) { mine, _ in mine }
        counts.applied += other.counts.applied
        counts.duplicate += other.counts.duplicate
        counts.ignored += other.counts.ignored
        counts.deadLetters += other.counts.deadLetters
        counts.unreadable += other.counts.unreadable
        return true
    }

    /// Folds one stored record read at `position` (with that record's chain hash): the
    /// one place a log record becomes projection state. An event is applied, a dead letter
    /// counted, a gap or a redacted event passed, and an unreadable event counted and logged
    /// with its position.
    /// - Returns: what happened to an event; nil for any other record.
    @discardableResult
    package mutating func fold(_ record: StoredRecord, at position: LogPosition, chainHash: SHA256Digest = .zero) -> Outcome? {
        switch record {
        case .event(let event):
            return apply(event, at: position, chainHash: chainHash)
        case .deadLetter:
            skip(at: position, chainHash: chainHash)
        case .gap, .redacted:
            pass(at: position, chainHash: chainHash)
        case .unreadable(let error):
            advance(to: position, chainHash: chainHash)
            counts.unreadable += 1
            StoredRecord.reportUnreadable(error, at: position)
        }
        return nil
    }

    /// Records a dead letter at `position`.
    package mutating func skip(at position: LogPosition, chainHash: SHA256Digest = .zero) {
        advance(to: position, chainHash: chainHash)
        counts.deadLetters += 1
    }

    /// Moves past a record that is neither an event nor a dead letter (a gap record).
    package mutating func pass(at position: LogPosition, chainHash: SHA256Digest = .zero) {
        advance(to: position, chainHash: chainHash)
    }

    private mutating func advance(to position: LogPosition, chainHash: SHA256Digest) {
        positions[position.partition] = position.offset
        chainHashes[position.partition] = chainHash
    }

    /// The log position a device's chat list reflects: its partition and how far that
    /// partition has been applied; nil for a device without events.
    package func position(of deviceId: String) -> LogPosition? {
        guard let partition = devices[deviceId]?.partition, partition >= 0, let offset = positions[partition] else { return nil }
        return LogPosition(partition: partition, offset: offset)
    }

    /// The version of a device's chat list (0 if it has none).
    package func version(of deviceId: String) -> UInt64 {
        devices[deviceId]?.version ?? 0
    }

    /// A digest of every device's chat list and settings and version, independent of the
    /// order events created them and of dictionary layout: SHA-256 over the canonical
    /// encoding (devices and chats sorted by id), then over the erased devices' versions
    /// if there are any.
    package var digest: SHA256Digest {
        var hasher = SHA256()
        hasher.update(ProjectionCodec.encodeDevices(devices))
        if !erasedDeviceVersions.isEmpty { hasher.update(ProjectionCodec.encodeErasedDeviceVersions(erasedDeviceVersions)) }
        return hasher.finalize()
    }
}

extension Event {
    /// The `stableHash` of the event id: what the event-id window keeps and checkpoints
    /// store. Hashed from the id's bytes as parsed.
    var eventIdHash: UInt64 { eventIdText.withBytes(stableHash) }
}
