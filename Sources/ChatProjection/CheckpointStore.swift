#if canImport(Glibc)
import Glibc
#endif
import EventLog
import Foundation
import LedgerSupport

/// What a checkpoint says about itself.
package struct CheckpointInfo: Sendable, Hashable {
    package var sequence: UInt64
    package var path: String
    package var topic: String
    /// Per partition, the last log offset folded into the state.
    package var positions: [Int32: Int64]
    /// Per partition, the chain hash of that record.
    package var chainHashes: [Int32: SHA256Digest]
    package var stateDigest: SHA256Digest
    /// The checkpoint's format version (`CheckpointStore.version` for one this build wrote).
    /// Before 4, a chat or contact erasure's refold set a device's version to the count of
    /// its surviving events: `ErasureRefold.upgradeVersions` brings such a state to this
    /// build's rule.
    package var formatVersion: UInt16 = CheckpointStore.version
}

/// Checkpoints of the projection under `DATA/checkpoints/`: written atomically (temporary
/// file, fsync, rename, directory fsync), newest kept `retain` deep; loading takes the
/// newest that is intact and falls back to older ones (or to none: a full replay).
package struct CheckpointStore: Sendable {
    package let directory: String
    package let retain: Int
    /// When set, every checkpoint written gets an attestation: HMAC-SHA256 under this key
    /// of its topic, positions, chain hashes and state digest (`<sequence>.attest`).
    package let attestationKey: [UInt8]?
    /// Called with the temporary file of a checkpoint once it is written and synced, just
    /// before it is renamed into place: the crash tests stop a writer there.
    package var beforeRename: (@Sendable (_ temporaryPath: String, _ sequence: UInt64) -> Void)?

    package init(dataDirectory: String, retain: Int = 3, attestationKey: [UInt8]? = nil) {
        self.directory = dataDirectory + "/checkpoints"
        self.retain = max(1, retain)
        self.attestationKey = attestationKey
    }

    /// What an attestation authenticates, as text an auditor can rebuild:
    /// `chatledger-checkpoint-v1`, the sequence, the topic, a line `P:O:CHAIN` per
    /// partition (ascending), and `digest:HEX`, each line ending in `\n`.
    package static func attestationMessage(_ info: CheckpointInfo) -> [UInt8] {
        var text = "chatledger-checkpoint-v1\n\(info.sequence)\n\(info.topic)\n"
        for partition in info.positions.keys.sorted() {
            text += "\(partition):\(info.positions[partition] ?? -1):\((info.chainHashes[partition] ?? .zero).hex)\n"
        }
        text += "digest:\(info.stateDigest.hex)\n"
        return Array(text.utf8)
    }

    func attestationPath(_ sequence: UInt64) -> String { String(path(sequence).dropLast(5)) + ".attest" }

    /// Whether checkpoint `sequence` carries a valid attestation under `key`.
    package func checkAttestation(_ sequence: UInt64, key: [UInt8]) throws -> Bool {
        let (_, info) = try read(sequence)
        guard let text = try? String(contentsOfFile: attestationPath(sequence), encoding: .utf8),
            let stored = SHA256Digest(hex: text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return false }
        return HMACSHA256.constantTimeEqual(stored, HMACSHA256.authenticate(Self.attestationMessage(info), key: key))
    }

    static let magic: [UInt8] = Array("CLEDGCKP".utf8)
    /// 2: message histories instead of at most 256 unread messages per chat, enums as fixed
    /// wire codes, one event-id window per partition. 3: version 2 and the count of stored
    /// events this build could not read (`Counts.unreadable`). Version 2 is read as before
    /// (that count 0). 4: version 3 and the versions of devices erasures left without state
    /// (`ProjectionState.erasedDeviceVersions`), with a device's version set past the offset
    /// of a chat or contact erasure of it; versions 2 and 3 are read as before (none such),
    /// their devices' versions brought to that rule by `ErasureRefold.upgradeVersions`.
    /// 5: version 4, folded by the rule that a `contact.aliased` before a device's first
    /// chat is kept (the device appears with it); versions 2 to 4 are read as before, their
    /// devices with an alias refolded by `ErasureRefold.refoldAliasedDevices`.
    /// 6: version 5, folded by the rules that an incoming message more than a second older
    /// than an own message the chat holds is read, and that a snapshot without a name
    /// leaves the chat without one; versions 2 to 5 are read as before, their devices with
    /// such a message or snapshot refolded by `ErasureRefold.refoldDevicesWithLateIncoming`.
    /// 7: version 6, folded by the rule that an edit leaves a revoked last message empty;
    /// versions 2 to 6 are read as before, their devices with an edit of a message revoked
    /// before it refolded by `ErasureRefold.refoldDevicesWithEditAfterRevoke`.
    /// Other versions are skipped (the log is replayed instead).
    package static let version: UInt16 = 7
    /// The oldest version still read.
    static let oldestReadVersion: UInt16 = 2

    /// Sequences of the checkpoint files present, ascending.
    package func sequences() -> [UInt64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in
            guard name.hasSuffix(".ckpt"), name.count == 25 else { return nil }
            return UInt64(name.dropLast(5))
        }.sorted()
    }

    /// The file of checkpoint `sequence`.
    package func path(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return directory + "/" + String(repeating: "0", count: 20 - digits.count) + digits + ".ckpt"
    }

    /// Writes `state` as the next checkpoint and prunes old ones.
    @discardableResult
    package func write(_ state: ProjectionState, topic: String) throws -> CheckpointInfo {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sequence = (sequences().last ?? 0) + 1
        let devices = ProjectionCodec.encodeDevices(state.devices)
        let erased = ProjectionCodec.encodeErasedDeviceVersions(state.erasedDeviceVersions)
        var hasher = SHA256()
        hasher.update(devices)
        if !state.erasedDeviceVersions.isEmpty { hasher.update(erased) }  // as `ProjectionState.digest`
        let digest = hasher.finalize()

        var writer = ByteWriter()
        writer.raw(Self.magic)
        writer.u16(Self.version)
        writer.u64(sequence)
        writer.string(topic)
        let partitions = state.positions.keys.sorted()
        writer.u32(UInt32(partitions.count))
        for partition in partitions {
            writer.u32(UInt32(bitPattern: partition))
            writer.u64(UInt64(bitPattern: state.positions[partition] ?? -1))
            writer.raw((state.chainHashes[partition] ?? .zero).bytes)
        }
        let counts = state.counts
        for count in [counts.applied, counts.duplicate, counts.ignored, counts.deadLetters, counts.unreadable] {
            writer.u64(UInt64(count))
        }
        let windows = state.eventIds.partitions
        writer.u32(UInt32(state.eventIds.capacity))
        writer.u32(UInt32(windows.count))
        for (partition, window) in windows {
            writer.u32(UInt32(bitPattern: partition))
            writer.u32(UInt32(window.count))
            for hash in window { writer.u64(hash) }
        }
        writer.raw(erased)
        writer.u64(UInt64(devices.count))
        // The devices (most of the file) are written from their own buffer, not copied
        // behind the header: at 1,000,000 chats each copy is ~100 MB of memory traffic and
        // page faults on the checkpoint thread, next to the threads answering queries.
        var trailer = ByteWriter()
        trailer.raw(digest.bytes)
        var crc = CRC32C.checksum(writer.bytes)
        crc = devices.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
        crc = trailer.bytes.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
        trailer.u32(crc)

        let path = path(sequence)
        let temporary = path + ".tmp"
        try writeSynced(temporary, [writer.bytes, devices, trailer.bytes])
        beforeRename?(temporary, sequence)
        guard rename(temporary, path) == 0 else { throw ProjectionError(path: path, "rename: errno \(errno)") }
        try syncFile(directory)
        let info = CheckpointInfo(
            sequence: sequence, path: path, topic: topic, positions: state.positions, chainHashes: state.chainHashes,
            stateDigest: digest)
        if let attestationKey {
            let attestation = HMACSHA256.authenticate(Self.attestationMessage(info), key: attestationKey).hex + "\n"
            let target = attestationPath(sequence)
            try Data(attestation.utf8).write(to: URL(fileURLWithPath: target + ".tmp"))
            try syncFile(target + ".tmp")
            guard rename(target + ".tmp", target) == 0 else { throw ProjectionError(path: target, "rename: errno \(errno)") }
            try syncFile(directory)
        }
        for old in sequences().dropLast(retain) {
            unlink(self.path(old))
            unlink(attestationPath(old))
        }
        return info
    }

    /// Removes one checkpoint and its attestation (an erasure replaces the checkpoints
    /// written before it, so none holds what it erased).
    package func remove(_ sequence: UInt64) throws {
        for file in [path(sequence), attestationPath(sequence)] where unlink(file) != 0 && errno != ENOENT {
            throw ProjectionError(path: file, "unlink: errno \(errno)")
        }
        try syncFile(directory)
    }

    /// Reads one checkpoint, checking its CRC and recomputing its state digest.
    package func read(_ sequence: UInt64) throws -> (ProjectionState, CheckpointInfo) {
        let path = path(sequence)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        func damaged(_ what: String) -> ProjectionError { ProjectionError(path: path, "damaged checkpoint: \(what)") }
        guard bytes.count > 4 else { throw damaged("too short") }
        let stored = bytes.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard CRC32C.checksum(Array(bytes.dropLast(4))) == stored else { throw damaged("CRC mismatch") }
        var reader = ByteReader(Array(bytes.dropLast(4)))
        guard reader.take(8).map(Array.init) == Self.magic, let version = reader.u16() else { throw damaged("bad header") }
        guard (Self.oldestReadVersion...Self.version).contains(version) else {
            throw ProjectionError(
                path: path, "checkpoint format version \(version) is not this build's (\(Self.version)); the projection is rebuilt from the log")
        }
        guard let storedSequence = reader.u64(),
            let topic = reader.string(), let partitionCount = reader.u32()
        else { throw damaged("bad header") }
        var positions: [Int32: Int64] = [:]
        var chainHashes: [Int32: SHA256Digest] = [:]
        for _ in 0..<partitionCount {
            guard let partition = reader.u32(), let offset = reader.u64(), let chain = reader.take(32) else { throw damaged("bad positions") }
            positions[Int32(bitPattern: partition)] = Int64(bitPattern: offset)
            chainHashes[Int32(bitPattern: partition)] = SHA256Digest(bytes: Array(chain))
        }
        guard let applied = reader.u64(), let duplicate = reader.u64(), let ignored = reader.u64(), let deadLetters = reader.u64(),
            let unreadable = version >= 3 ? reader.u64() : 0, let capacity = reader.u32(), let windowCount = reader.u32()
        else { throw damaged("bad counters") }
        var windows: [(partition: Int32, oldestFirst: [UInt64])] = []
        for _ in 0..<windowCount {
            guard let partition = reader.u32(), let count = reader.u32(), Int(count) <= reader.remaining / 8 else {
                throw damaged("bad event id window")
            }
            var window: [UInt64] = []
            window.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let hash = reader.u64() else { throw damaged("bad event id window") }
                window.append(hash)
            }
            windows.append((Int32(bitPattern: partition), window))
        }
        var erasedDeviceVersions: [SHA256Digest: UInt64] = [:]
        if version >= 4 {
            guard let versions = ProjectionCodec.decodeErasedDeviceVersions(&reader) else { throw damaged("bad erased devices") }
            erasedDeviceVersions = versions
        }
        guard let devicesLength = reader.u64(), let devicesBytes = reader.take(Int(devicesLength)).map(Array.init),
            let digestBytes = reader.take(32).map(Array.init), reader.isAtEnd
        else { throw damaged("bad state section") }
        var hasher = SHA256()
        hasher.update(devicesBytes)
        if !erasedDeviceVersions.isEmpty { hasher.update(ProjectionCodec.encodeErasedDeviceVersions(erasedDeviceVersions)) }
        let digest = hasher.finalize()
        guard digest.bytes == digestBytes else { throw damaged("state digest mismatch") }
        guard let devices = ProjectionCodec.decodeDevices(devicesBytes) else { throw damaged("undecodable state") }
        let state = ProjectionState(
            devices: devices, positions: positions, chainHashes: chainHashes,
            eventIds: PartitionedEventIdWindow(capacity: Int(capacity), partitions: windows),
            counts: .init(
                applied: Int(applied), duplicate: Int(duplicate), ignored: Int(ignored), deadLetters: Int(deadLetters),
                unreadable: Int(unreadable)),
            erasedDeviceVersions: erasedDeviceVersions)
        return (state, CheckpointInfo(
            sequence: storedSequence, path: path, topic: topic, positions: positions, chainHashes: chainHashes, stateDigest: digest,
            formatVersion: version))
    }

    /// Writes `parts` one after the other as the file `path` (replacing it) and fsyncs it.
    private func writeSynced(_ path: String, _ parts: [[UInt8]]) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ProjectionError(path: path, "open: errno \(errno)") }
        defer { close(descriptor) }
        do {
            for part in parts { try part.withUnsafeBytes { try SystemCall.writeAll(descriptor, $0) } }
            try SystemCall.run("fsync") { fsync(descriptor) }
        } catch {
            throw ProjectionError(path: path, "\(error)")
        }
    }

    private func syncFile(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ProjectionError(path: path, "open: errno \(errno)") }
        defer { close(descriptor) }
        try SystemCall.run("fsync") { fsync(descriptor) }
    }
}
