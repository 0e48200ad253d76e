/// `ledger.erased`: an operator's erasure request (`chatledger erase`, SPEC §10). The
/// event names what it erases by digest only, so the log keeps no copy of the ids: its
/// `deviceId` is `sha256:` and the SHA-256 of the device id in lowercase hex (the Kafka key
/// is the device id itself, so the event lands on the device's partition, at one log
/// position every instance applies), and `subject` likewise for a chat or contact.
package struct LedgerErasure: Sendable, Hashable {
    /// The prefix of a digest-named id: `sha256:` then 64 lowercase hex digits.
    package static let digestPrefix = "sha256:"

    /// What the erasure names within its device.
    package var scope: ErasureScope
    /// `sha256:<hex>` of the chat id (`chat`) or the contact id (`contact`); nil for `device`.
    package var subject: String?
    /// Why (the operator's words, e.g. a request number; no personal data belongs here).
    package var reason: String

    package init(scope: ErasureScope, subject: String? = nil, reason: String) {
        self.scope = scope
        self.subject = subject
        self.reason = reason
    }

    /// Whether `text` is a digest-named id (`sha256:` and 64 lowercase hex digits).
    package static func isDigestName(_ text: some StringProtocol) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == digestPrefix.utf8.count + 64, text.hasPrefix(digestPrefix) else { return false }
        return utf8.dropFirst(digestPrefix.utf8.count).allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// What a `ledger.erased` event erases of its device.
package enum ErasureScope: String, Sendable, Hashable, CaseIterable {
    /// The whole device: its chat list and every record of it.
    case device
    /// One chat of the device.
    case chat
    /// One contact of the device: their chat, under either of its ids (phone id and LID).
    case contact
}
