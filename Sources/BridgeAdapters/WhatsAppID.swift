/// WhatsApp addresses (JIDs) in ChatLedger's one canonical form per contact.
///
/// The same person arrives as `491701234567@s.whatsapp.net` (Baileys, Evolution),
/// `491701234567@c.us` (whatsapp-web.js, WAHA, ChatLedger's examples), with a device
/// suffix (`491701234567:12@s.whatsapp.net`), bare (`491701234567`), or as a LID
/// (`140913951141911@lid`). Every adapter writes ids through `canonical(_:)`, so one
/// contact's events name one chat: the phone form is `<digits>@c.us`, a LID stays
/// `<digits>@lid` (which phone it stands for is a fact a record has to teach:
/// `contact.aliased`), groups, broadcasts and channels keep their ids.
public enum WhatsAppID {
    /// What an id names.
    public enum Domain: Sendable, Equatable {
        case phone, lid, group, statusBroadcast, broadcast, newsletter, other
    }

    /// The longest id kept (ChatLedger's address limit).
    public static let maxBytes = 256

    /// The canonical form of `raw`, nil when it is empty, too long or has no user part.
    public static func canonical(_ raw: String) -> String? {
        var text = Substring(raw)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        guard !text.isEmpty, text.utf8.count <= maxBytes else { return nil }
        guard let at = text.lastIndex(of: "@") else {
            // A bare number (Cloud API's wa_id, Evolution's participantsData fallback).
            var digits = text
            if digits.first == "+" { digits.removeFirst() }
            guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { return String(text) }
            return digits + "@c.us"
        }
        var user = text[..<at]
        let domain = text[text.index(after: at)...].lowercased()
        switch domain {
        case "s.whatsapp.net", "c.us", "lid", "hosted", "hosted.lid":
            // A device suffix (`:12`) names one of the user's devices, not another chat.
            if let colon = user.firstIndex(of: ":") { user = user[..<colon] }
            if user.first == "+" { user.removeFirst() }
        default:
            break
        }
        guard !user.isEmpty else { return nil }
        switch domain {
        case "s.whatsapp.net", "c.us": return user + "@c.us"
        case "hosted.lid": return user + "@lid"
        case "hosted": return user + "@c.us"
        default: return user + "@" + domain
        }
    }

    /// What a canonical id names.
    public static func domain(of id: String) -> Domain {
        if id == "status@broadcast" { return .statusBroadcast }
        if id.hasSuffix("@c.us") { return .phone }
        if id.hasSuffix("@lid") { return .lid }
        if id.hasSuffix("@g.us") { return .group }
        if id.hasSuffix("@broadcast") { return .broadcast }
        if id.hasSuffix("@newsletter") { return .newsletter }
        return .other
    }

    /// The part before `@`.
    public static func user(of id: String) -> Substring {
        id.firstIndex(of: "@").map { id[..<$0] } ?? Substring(id)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
