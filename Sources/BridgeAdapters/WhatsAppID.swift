/// WhatsApp addresses (JIDs) in ChatLedger's one canonical form per contact.
///
/// The same person arrives as `491701234567@s.whatsapp.net` (Baileys, Evolution),
/// `491701234567@c.us` (whatsapp-web.js, WAHA, ChatLedger's examples), with a device
/// suffix (`491701234567:12@s.whatsapp.net`), bare (`491701234567`), or as a LID
/// (`140913951141911@lid`). Every adapter writes ids through `canonical(_:)`, so one
/// contact's events name one chat: the phone form is `<digits>@c.us`, a LID stays
/// `<digits>@lid` (which phone it stands for is a fact a record has to teach:
/// `contact.aliased`), groups, broadcasts and channels keep their ids.
package enum WhatsAppID {
    /// What an id names.
    package enum Domain: Sendable, Equatable {
        case phone, lid, group, statusBroadcast, broadcast, newsletter, other
    }

    /// The longest id kept (ChatLedger's address limit).
    package static let maxBytes = 256

    /// The canonical form of `raw`, nil when it is empty, too long or has no user part.
    ///
    /// Works on the UTF-8 bytes (ids are ASCII in practice): an id already canonical comes
    /// back as it is, without a copy.
    package static func canonical(_ raw: String) -> String? {
        var text = raw
        let result = text.withUTF8(canonicalForm)
        switch result {
        case .invalid: return nil
        case .unchanged: return raw
        case .changed(let id): return id
        }
    }

    /// `canonical(_:)` of the text whose UTF-8 is `bytes` (valid UTF-8, e.g. ASCII read
    /// from a record): the id made without making the raw text a `String` first.
    static func canonical(utf8 bytes: UnsafeBufferPointer<UInt8>) -> String? {
        switch canonicalForm(bytes) {
        case .invalid: return nil
        case .unchanged: return String(decoding: bytes, as: UTF8.self)
        case .changed(let id): return id
        }
    }

    private static func canonicalForm(_ bytes: UnsafeBufferPointer<UInt8>) -> Canonical {
        var start = 0
        var end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        guard start < end, end - start <= maxBytes else { return .invalid }
        var at = end - 1
        while at >= start, bytes[at] != UInt8(ascii: "@") { at -= 1 }
        guard at >= start else {
            // A bare number (Cloud API's wa_id, Evolution's participantsData fallback).
            var digits = start
            if bytes[digits] == UInt8(ascii: "+") { digits += 1 }
            guard digits < end, (digits..<end).allSatisfy({ bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9") }) else {
                if start == 0, end == bytes.count { return .unchanged }
                return .changed(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
            }
            return .changed(String(decoding: UnsafeBufferPointer(rebasing: bytes[digits..<end]), as: UTF8.self) + "@c.us")
        }
        let domain = UnsafeBufferPointer(rebasing: bytes[(at + 1)..<end])
        let canonicalDomain: StaticString?
        let isUserDomain: Bool
        if equalsIgnoringCase(domain, "s.whatsapp.net") || equalsIgnoringCase(domain, "c.us") || equalsIgnoringCase(domain, "hosted") {
            (canonicalDomain, isUserDomain) = ("c.us", true)
        } else if equalsIgnoringCase(domain, "lid") || equalsIgnoringCase(domain, "hosted.lid") {
            (canonicalDomain, isUserDomain) = ("lid", true)
        } else {
            (canonicalDomain, isUserDomain) = (nil, false)
        }
        var userStart = start
        var userEnd = at
        if isUserDomain {
            // A device suffix (`:12`) names one of the user's devices, not another chat.
            if let colon = (userStart..<userEnd).first(where: { bytes[$0] == UInt8(ascii: ":") }) { userEnd = colon }
            if userStart < userEnd, bytes[userStart] == UInt8(ascii: "+") { userStart += 1 }
        }
        guard userStart < userEnd else { return .invalid }
        if userStart == 0, end == bytes.count, userEnd == at,
            canonicalDomain.map({ equalsExactly(domain, $0) }) ?? !domain.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") })
        {
            return .unchanged
        }
        // Written straight into the new string (one allocation, none when it is short).
        let user = UnsafeBufferPointer(rebasing: bytes[userStart..<userEnd])
        let domainCount = canonicalDomain?.utf8CodeUnitCount ?? domain.count
        return .changed(String(unsafeUninitializedCapacity: user.count + 1 + domainCount) { out in
            var at = out.initialize(fromContentsOf: user)
            out[at] = UInt8(ascii: "@")
            at += 1
            if let canonicalDomain {
                for index in 0..<domainCount { out[at + index] = canonicalDomain.utf8Start[index] }
            } else {
                for index in 0..<domainCount {
                    let byte = domain[index]
                    out[at + index] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
                }
            }
            return at + domainCount
        })
    }

    private enum Canonical {
        case invalid, unchanged
        case changed(String)
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }

    private static func equalsExactly(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && (0..<bytes.count).allSatisfy { bytes[$0] == text.utf8Start[$0] }
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        for index in 0..<bytes.count {
            var byte = bytes[index]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte += 32 }
            guard byte == lowercase.utf8Start[index] else { return false }
        }
        return true
    }

    /// What a canonical id names.
    package static func domain(of id: String) -> Domain {
        var id = id
        return id.withUTF8 { bytes in
            guard let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { return .other }
            let domain = UnsafeBufferPointer(rebasing: bytes[(at + 1)...])
            if equalsExactly(domain, "c.us") { return .phone }
            if equalsExactly(domain, "lid") { return .lid }
            if equalsExactly(domain, "g.us") { return .group }
            if equalsExactly(domain, "broadcast") {
                return equalsExactly(UnsafeBufferPointer(rebasing: bytes[..<at]), "status") ? .statusBroadcast : .broadcast
            }
            if equalsExactly(domain, "newsletter") { return .newsletter }
            return .other
        }
    }

    /// The part before `@`.
    package static func user(of id: String) -> Substring {
        id.utf8.firstIndex(of: UInt8(ascii: "@")).map { id[..<$0] } ?? Substring(id)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
