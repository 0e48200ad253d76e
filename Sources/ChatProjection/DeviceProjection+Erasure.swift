import ChatEvents
import LedgerSupport

extension DeviceProjection {
    /// `sha256:` and the lowercase hex SHA-256 of an id: how a `ledger.erased` event names it.
    package static func digestName(_ id: String) -> String {
        LedgerErasure.digestPrefix + SHA256.hash(Array(id.utf8)).hex
    }

    /// Drops the chat a chat or contact erasure names (the contact's chat under either of
    /// its ids), and every alias of it. Returns whether anything was dropped.
    mutating func erase(_ erasure: LedgerErasure) -> Bool {
        guard erasure.scope != .device, let subject = erasure.subject else { return false }
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
        version += 1
        return true
    }
}
