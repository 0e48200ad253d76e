import ChatEvents
import LedgerSupport

extension DeviceProjection {
    /// `sha256:` and the lowercase hex SHA-256 of an id: how a `ledger.erased` event names it.
    package static func digestName(_ id: String) -> String {
        LedgerErasure.digestPrefix + SHA256.hash(Array(id.utf8)).hex
    }

    /// Drops the chat a chat or contact erasure at log offset `offset` names (the contact's
    /// chat under either of its ids), and every alias of it, and moves the version past the
    /// erasure (`version(afterErasureAt:from:)`) whether or not anything was dropped: a
    /// replay of the redacted log no longer holds what the live fold dropped, and must
    /// reach the same version. Returns whether anything was dropped.
    @discardableResult
    mutating func erase(_ erasure: LedgerErasure, atOffset offset: Int64) -> Bool {
        guard erasure.scope != .device else { return false }
        version = Self.version(afterErasureAt: offset, from: version)
        guard let subject = erasure.subject else { return false }
        var named: Set<String> = []
        for (id, _) in chats where Self.digestName(id) == subject { named.insert(id) }
        for (alias, canonical) in aliases where Self.digestName(alias.description) == subject {
            named.insert(canonical.description)
        }
        guard !named.isEmpty else { return false }
        for id in named { chats[id] = nil }
        aliases = aliases.filter { alias, canonical in
            !named.contains(canonical.description) && Self.digestName(alias.description) != subject
        }
        return true
    }

    /// A device's version after an erasure of it at log offset `offset` (its version before
    /// being `version`): one past the erasure's offset, or one past `version` if that is
    /// higher.
    ///
    /// Why: a version counts the events applied to the device, so it never exceeds one past
    /// the offset of its last event (each event takes an offset of the device's partition,
    /// and offsets start at 0). The erasure's offset + 1 is therefore above every version
    /// the device had before, however many of its events the erasure removes, and it
    /// depends on the log alone: ingest's live fold and its refold, `serve`'s follower and
    /// refold, a restart from a checkpoint and a replay of the redacted log from zero all
    /// reach it at the erasure's record, where the count of surviving events would drop
    /// below versions already handed out as ETags and repeat them for different content.
    /// (`version + 1` is only ever higher for a device whose events came on more than one
    /// partition, after partitions were added to the topic.)
    static func version(afterErasureAt offset: Int64, from version: UInt64) -> UInt64 {
        max(version + 1, UInt64(max(offset, 0)) + 1)
    }
}
