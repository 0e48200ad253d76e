import ChatEvents
import EventLog
import LedgerSupport

/// Which fields of which records one erasure redacts (see `schemas/event-log.md`,
/// "Erasure"): the erasure record's own key (the device id); for a device erasure every
/// field of every record keyed by the device (but an earlier erasure's value and reason);
/// for a chat or contact erasure the value and reason of the device's events of that chat
/// (under every id of the contact that `contact.aliased` events before the erasure link
/// to it, including records of an id written before the event that links it:
/// `learnAliases` reads them all first) and of all the device's dead letters and stored
/// events this build cannot read (their chat cannot be told, and they are not folded, so
/// nothing is lost by erasing them).
package struct ErasureSelector {
    package let erasure: LedgerErasure
    package let erasureOffset: Int64
    package let deviceDigest: SHA256Digest
    /// Digest names (`sha256:<hex>`) of the chat ids erased: the subject, and aliases found.
    private var subjects: Set<String>
    private let parser = EventParser()

    /// The selector of the `ledger.erased` event at `erasureOffset`; nil if its device is not digest-named.
    package init?(_ erasure: LedgerErasure, deviceDigestName: String, erasureOffset: Int64) {
        guard LedgerErasure.isDigestName(deviceDigestName),
            let digest = SHA256Digest(hex: String(deviceDigestName.dropFirst(LedgerErasure.digestPrefix.count)))
        else { return nil }
        self.erasure = erasure
        self.erasureOffset = erasureOffset
        self.deviceDigest = digest
        self.subjects = Set(erasure.subject.map { [$0] } ?? [])
    }

    /// The selector of a consumed `ledger.erased` event at `erasureOffset`, if the event is
    /// valid as an erasure: its device digest-named and its Kafka key the device id that
    /// digest names (what lands it on the device's partition); nil otherwise.
    package init?(_ erasure: LedgerErasure, deviceDigestName: String, key: UnsafeRawBufferPointer?, erasureOffset: Int64) {
        guard let key else { return nil }
        self.init(erasure, deviceDigestName: deviceDigestName, erasureOffset: erasureOffset)
        guard SHA256.hash(Array(key)) == deviceDigest else { return nil }
    }

    /// Redacts what this erasure names in `writer`'s partition (idempotent).
    /// - Throws: `EventLogError` for a damaged log or a failed rewrite.
    package func redact(in writer: PartitionWriter) throws -> (redacted: Int, unredactable: Int) {
        var selector = self
        try selector.learnAliases(in: PartitionReader(directory: writer.directory, topic: writer.topic, partition: writer.partition))
        return try writer.redact(erasureOffset: erasureOffset) { selector.fields($0) }
    }

    /// A contact erasure: every id the device's `contact.aliased` events up to the erasure
    /// link to the subject (directly or through other ids), learnt before any record is
    /// selected, so the records of an id written before the event that links it are named
    /// too (the fold merged them into the contact's chat). Nothing for other scopes.
    /// - Throws: `EventLogError` for a damaged log.
    package mutating func learnAliases(in reader: PartitionReader) throws {
        guard erasure.scope == .contact else { return }
        var links: [(String, String)] = []
        try reader.forEach { record in
            guard record.offset < erasureOffset else { return false }
            guard record.kind == .event, record.keyDigest == deviceDigest, let value = record.value,
                value.firstRange(of: Self.aliasTypeName) != nil,
                let event = try? parser.parse(value), case .contactAliased(let aliased) = event.payload, let chatId = event.chatId
            else { return true }
            links.append((DeviceProjection.digestName(chatId), DeviceProjection.digestName(aliased.alias)))
            return true
        }
        var grew = true
        while grew {
            grew = false
            for (chat, alias) in links where subjects.contains(chat) != subjects.contains(alias) {
                subjects.insert(chat)
                subjects.insert(alias)
                grew = true
            }
        }
    }

    static let aliasTypeName = Array("\"contact.aliased\"".utf8)

    /// The fields of `record` to redact (the caller leaves out those absent or already redacted).
    package mutating func fields(_ record: RecordView) -> RedactedFields {
        if record.offset == erasureOffset { return .key }
        guard record.kind != .gap, record.keyDigest == deviceDigest else { return [] }
        // An earlier erasure of the device keeps its value (digests and the reason's ticket)
        // and reason: `verify` finds by them the erasure its own redactions name, and the
        // fold the version it set. Its key, the device id, went with its own redaction.
        if LogErasure(record) != nil { return .key }
        if erasure.scope == .device { return .all }
        let event: Event
        switch StoredRecord(record, parser: parser) {
        case .event(let parsed):
            event = parsed
        case .deadLetter, .unreadable:
            return [.value, .reason]  // whose chat cannot be told; neither is folded, so nothing is lost
        case .gap, .redacted:
            return []
        }
        guard let chatId = event.chatId else { return [] }
        let chat = DeviceProjection.digestName(chatId)
        if case .contactAliased(let aliased) = event.payload, erasure.scope == .contact {
            let alias = DeviceProjection.digestName(aliased.alias)
            if subjects.contains(chat) || subjects.contains(alias) {
                subjects.insert(chat)
                subjects.insert(alias)
                return [.value, .reason]
            }
        }
        return subjects.contains(chat) ? [.value, .reason] : []
    }
}
