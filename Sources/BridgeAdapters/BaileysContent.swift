import ChatEvents

/// What a Baileys message content object (`WAMessage.message`, which Evolution publishes
/// as `data.message`) is for the chat list: a message of some kind with its preview, a
/// reaction, or no message at all. Shared by every adapter whose bridge wraps Baileys.
///
/// Content is a union keyed by type (`conversation`, `imageMessage`, ...). Keys that are
/// not content (`messageContextInfo`, `senderKeyDistributionMessage`, Evolution's `base64`
/// and `mediaUrl`) are skipped; wrappers (`ephemeralMessage`, `viewOnceMessage*`,
/// `documentWithCaptionMessage`, `editedMessage`, ...) are unwrapped to what they hold.
public enum BaileysContent: Equatable, Sendable {
    /// A message for the chat list.
    case message(kind: MessageKind, preview: String, hasMedia: Bool)
    /// A reaction to `targetMessageId` (`emoji` empty: removed).
    case reaction(targetMessageId: String, emoji: String)
    /// Not a message (poll votes, protocol messages, key distribution...): `type` names it.
    case notAMessage(type: String)

    /// Keys of a content object that never are its type.
    static let notContent: Set<String> = [
        "messageContextInfo", "senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage",
        "base64", "mediaUrl", "contextInfo",
    ]

    /// Content types that hold another message in `.message`.
    static let wrappers: Set<String> = [
        "ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension",
        "documentWithCaptionMessage", "editedMessage", "groupMentionedMessage", "botInvokeMessage",
        "lottieStickerMessage", "associatedChildMessage", "statusMentionMessage", "questionMessage",
    ]

    /// Types that are not messages of the chat list.
    static let nonMessages: Set<String> = [
        "protocolMessage", "pollUpdateMessage", "encReactionMessage", "keepInChatMessage", "pinInChatMessage",
        "encEventResponseMessage", "pollResultSnapshotMessage", "messageHistoryBundle", "peerDataOperationRequestMessage",
        "peerDataOperationRequestResponseMessage", "appStateSyncKeyShareMessage", "appStateSyncKeyRequestMessage",
        "initialSecurityNotificationSettingSync", "appStateFatalExceptionNotification", "placeholderMessage",
    ]

    /// The longest preview kept (ChatLedger's text limit, in bytes of UTF-8).
    public static let maxPreviewBytes = 4096

    /// Describes a content object. `typeHint` is the bridge's own name for the type
    /// (Evolution's `messageType`), tried first.
    public static func describe(_ content: JSONValue?, typeHint: String? = nil) -> BaileysContent {
        guard var content, content.kind == .object else { return .notAMessage(type: typeHint ?? "empty") }
        var type: String
        var body: JSONValue
        if let typeHint, typeHint != "unknown", let hinted = content.member(named: typeHint) {
            (type, body) = (typeHint, hinted)
        } else if let first = content.firstKey(skipping: notContent) {
            (type, body) = first
        } else {
            return .notAMessage(type: "empty")
        }
        // Unwrap wrappers (bounded: a hostile record may nest them).
        var unwraps = 0
        while wrappers.contains(type), unwraps < 8, let inner = body["message"], inner.kind == .object,
            let next = inner.firstKey(skipping: notContent)
        {
            content = inner
            (type, body) = next
            unwraps += 1
        }
        return describe(type: type, body: body)
    }

    static func describe(type: String, body: JSONValue) -> BaileysContent {
        func text(_ names: StaticString...) -> String {
            for name in names {
                if let value = body[name]?.string, !value.isEmpty { return value }
            }
            return ""
        }
        switch type {
        case "conversation":
            return .message(kind: .text, preview: truncated(body.string ?? ""), hasMedia: false)
        case "extendedTextMessage":
            return .message(kind: .text, preview: truncated(text("text")), hasMedia: false)
        case "imageMessage":
            return .message(kind: .image, preview: truncated(text("caption")), hasMedia: true)
        case "videoMessage", "ptvMessage":
            return .message(kind: .video, preview: truncated(text("caption")), hasMedia: true)
        case "audioMessage":
            return .message(kind: .audio, preview: "", hasMedia: true)
        case "documentMessage":
            return .message(kind: .document, preview: truncated(text("caption", "fileName", "title")), hasMedia: true)
        case "stickerMessage":
            return .message(kind: .sticker, preview: "", hasMedia: true)
        case "locationMessage", "liveLocationMessage":
            return .message(kind: .location, preview: truncated(text("name", "address", "caption")), hasMedia: false)
        case "contactMessage", "contactsArrayMessage":
            return .message(kind: .contact, preview: truncated(text("displayName")), hasMedia: false)
        case "callLogMesssage", "callLogMessage", "bcallMessage", "scheduledCallCreationMessage", "call":
            return .message(kind: .call, preview: "", hasMedia: false)
        case "pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3", "pollCreationMessageV4":
            return .message(kind: .text, preview: truncated(text("name")), hasMedia: false)
        case "eventMessage":
            return .message(kind: .text, preview: truncated(text("name")), hasMedia: false)
        case "buttonsMessage":
            return .message(kind: .text, preview: truncated(text("contentText", "text")), hasMedia: false)
        case "listMessage":
            return .message(kind: .text, preview: truncated(text("description", "title")), hasMedia: false)
        case "buttonsResponseMessage", "templateButtonReplyMessage":
            return .message(kind: .text, preview: truncated(text("selectedDisplayText")), hasMedia: false)
        case "listResponseMessage":
            return .message(kind: .text, preview: truncated(text("title")), hasMedia: false)
        case "interactiveMessage", "interactiveResponseMessage":
            return .message(kind: .text, preview: truncated(body["body"]?["text"]?.string ?? ""), hasMedia: false)
        case "templateMessage":
            let template = body["hydratedTemplate"] ?? body["hydratedFourRowTemplate"]
            return .message(kind: .text, preview: truncated(template?["hydratedContentText"]?.string ?? ""), hasMedia: false)
        case "groupInviteMessage":
            return .message(kind: .text, preview: truncated(text("caption", "groupName")), hasMedia: false)
        case "reactionMessage":
            guard let target = body["key"]?["id"]?.string, !target.isEmpty else { return .notAMessage(type: type) }
            return .reaction(targetMessageId: target, emoji: body["text"]?.string ?? "")
        default:
            if nonMessages.contains(type) { return .notAMessage(type: type) }
            // A type this build does not know is still a message the user sees.
            return .message(kind: .text, preview: "", hasMedia: false)
        }
    }

    /// `text` cut to at most `maxBytes` of UTF-8, at a Unicode scalar boundary.
    public static func truncated(_ text: String, maxBytes: Int = maxPreviewBytes) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var result = String.UnicodeScalarView()
        var count = 0
        for scalar in text.unicodeScalars {
            let width = UTF8.width(scalar)
            guard count + width <= maxBytes else { break }
            result.append(scalar)
            count += width
        }
        return String(result)
    }
}
