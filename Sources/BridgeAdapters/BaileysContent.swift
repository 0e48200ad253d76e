import ChatEvents

/// What a Baileys message content object (`WAMessage.message`, which Evolution publishes
/// as `data.message`) is for the chat list: a message of some kind with its preview, a
/// reaction, or no message at all. Shared by every adapter whose bridge wraps Baileys.
///
/// Content is a union keyed by type (`conversation`, `imageMessage`, ...). Keys that are
/// not content (`messageContextInfo`, `senderKeyDistributionMessage`, Evolution's `base64`
/// and `mediaUrl`) are skipped; wrappers (`ephemeralMessage`, `viewOnceMessage*`,
/// `documentWithCaptionMessage`, `editedMessage`, ...) are unwrapped to what they hold.
package enum BaileysContent: Equatable, Sendable {
    /// A message for the chat list.
    case message(kind: MessageKind, preview: String, hasMedia: Bool)
    /// A reaction to `targetMessageId` (`emoji` empty: removed).
    case reaction(targetMessageId: String, emoji: String)
    /// An edit of `targetMessageId` (a `protocolMessage` of type `MESSAGE_EDIT`, as Baileys
    /// 6.7.0–6.7.12 upserts it) with the new text.
    case edit(targetMessageId: String, preview: String)
    /// Not a message (poll votes, other protocol messages, key distribution...): `type` names it.
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
        "pollCreationMessageV4",  // a FutureProofMessage around the poll (WAProto `Message` field 93)
        "groupStatusMessage", "groupStatusMessageV2",  // FutureProof wrappers (fields 96, 103) Baileys 7 unwraps
    ]

    /// Types that are not messages of the chat list. `secretEncryptedMessage` is an encrypted
    /// edit of another message (`targetMessageKey`, `secretEncType` `MESSAGE_EDIT` /
    /// `EVENT_EDIT`, WAProto `Message.SecretEncryptedMessage`); `albumMessage` announces an
    /// album whose images and videos come as messages of their own; `eventCoverImage` is an
    /// event's cover; `pollResultSnapshotMessage(V3)` a poll's results.
    static let nonMessages: Set<String> = [
        "protocolMessage", "pollUpdateMessage", "encReactionMessage", "keepInChatMessage", "pinInChatMessage",
        "encEventResponseMessage", "pollResultSnapshotMessage", "pollResultSnapshotMessageV3", "messageHistoryBundle",
        "peerDataOperationRequestMessage", "peerDataOperationRequestResponseMessage", "appStateSyncKeyShareMessage",
        "appStateSyncKeyRequestMessage", "initialSecurityNotificationSettingSync", "appStateFatalExceptionNotification",
        "placeholderMessage", "secretEncryptedMessage", "albumMessage", "eventCoverImage",
    ]

    /// The longest preview kept (ChatLedger's text limit, in bytes of UTF-8).
    package static let maxPreviewBytes = 4096

    /// Describes a content object. `typeHint` is the bridge's own name for the type
    /// (Evolution's `messageType`), tried first.
    package static func describe(_ content: JSONValue?, typeHint: String? = nil) -> BaileysContent {
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
        case "stickerMessage", "stickerPackMessage":
            return .message(kind: .sticker, preview: "", hasMedia: true)
        case "locationMessage", "liveLocationMessage":
            return .message(kind: .location, preview: truncated(text("name", "address", "caption")), hasMedia: false)
        case "contactMessage", "contactsArrayMessage":
            return .message(kind: .contact, preview: truncated(text("displayName")), hasMedia: false)
        case "callLogMesssage", "callLogMessage", "bcallMessage", "scheduledCallCreationMessage":
            return .message(kind: .call, preview: "", hasMedia: false)
        case "call":
            // Baileys' notice of a group call being offered (`{call: {callKey}}`, the call's id):
            // not one to read. If nobody answers, a missed-call notice under the same id follows
            // and counts (src/Socket/messages-recv.ts, `ev.on('call')`).
            return .message(kind: .system, preview: "", hasMedia: false)
        case "pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3", "pollCreationMessageV5":
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
        case "protocolMessage":
            let editType = body["type"]
            guard editType?.string == "MESSAGE_EDIT" || editType?.int64 == 14, let target = body["key"]?["id"]?.string, !target.isEmpty
            else { return .notAMessage(type: type) }
            if case .message(_, let preview, _) = describe(body["editedMessage"]) { return .edit(targetMessageId: target, preview: preview) }
            return .edit(targetMessageId: target, preview: "")
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
    package static func truncated(_ text: String, maxBytes: Int = maxPreviewBytes) -> String {
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

// MARK: - Values

/// Baileys' serialisation quirks: numbers as JS numbers, numeric strings (protobuf
/// `toJSON`) or Longs `{low, high, unsigned}`; enums as numbers or names.
extension BaileysContent {
    /// An integer from a number, a numeric string or a protobuf Long; nil otherwise.
    static func integer(_ value: JSONValue?) -> Int64? {
        guard let value else { return nil }
        switch value.kind {
        case .number: return value.int64
        case .string: return value.string.flatMap { Int64($0) }
        case .object:
            guard let low = value["low"]?.int64, let high = value["high"]?.int64 else { return nil }
            return Int64(UInt32(truncatingIfNeeded: low)) | (high << 32)
        default: return nil
        }
    }

    /// Epoch ms from a WhatsApp time: a number, a numeric string, or a protobuf Long
    /// `{low, high, unsigned}`; seconds (anything below 10^11) become ms. Nil if absent or
    /// not a time.
    static func epochMillis(_ value: JSONValue?) -> Int64? {
        guard let value else { return nil }
        guard let number = integer(value), number >= 0 else { return nil }
        if number < 100_000_000_000 {
            let (milliseconds, overflow) = number.multipliedReportingOverflow(by: 1000)
            return overflow ? nil : milliseconds
        }
        return number
    }

    /// Evolution's status names (`ERROR` ... `PLAYED`) or Baileys' numbers (0...5).
    static func ackStatus(_ value: JSONValue?) -> AckStatus? {
        guard let value else { return nil }
        if let number = value.int64 {
            switch number {
            case 0: return .error
            case 1: return .pending
            case 2: return .server
            case 3: return .delivered
            case 4: return .read
            case 5: return .played
            default: return nil
            }
        }
        switch value.string {
        case "ERROR": return .error
        case "PENDING": return .pending
        case "SERVER_ACK": return .server
        case "DELIVERY_ACK": return .delivered
        case "READ": return .read
        case "PLAYED": return .played
        default: return nil
        }
    }}

// MARK: - Notices

extension BaileysContent {
    /// A message without content that is a notice (`messageStubType`, a number or its
    /// `WAMessageStubType` name): group changes are `system` messages with a preview made
    /// from the type and its parameters, missed calls are `call`s; decryption placeholders
    /// (`CIPHERTEXT`, replaced when the message arrives), revokes (also in `messages.update`)
    /// and security notices are not messages of the chat list.
    static func stub(_ type: JSONValue, parameters: JSONValue?) -> BaileysContent {
        let name: String
        switch stubName(type) {
        case .known(let known): name = known
        case .unknown(let number): return .notAMessage(type: "stub_\(number)")
        case nil: return .notAMessage(type: "stub")
        }
        let first = parameters?.elements.first?.string ?? ""
        // Baileys 7 writes a participant notice's members as JSON text: named by phone number,
        // else id; never raw JSON. Other notices' parameters (a subject, a description) are
        // the text a member typed, shown as it is.
        let names = (parameters?.elements ?? []).compactMap { parameter -> String? in
            guard let text = parameter.string else { return nil }
            guard namesParticipants(name), text.first == "{" else { return text }
            return participantJSON(text)?.name
        }
        switch name {
        case "CALL_MISSED_VOICE", "CALL_MISSED_VIDEO", "CALL_MISSED_GROUP_VOICE", "CALL_MISSED_GROUP_VIDEO":
            return .message(kind: .call, preview: "", hasMedia: false)
        case "GROUP_CHANGE_SUBJECT":
            return .message(kind: .system, preview: truncated("changed the subject to \"\(first)\""), hasMedia: false)
        case "GROUP_CREATE":
            return .message(kind: .system, preview: truncated("created group \"\(first)\""), hasMedia: false)
        default:
            guard name.hasPrefix("GROUP_") else { return .notAMessage(type: name) }
            let what = name.dropFirst("GROUP_".count).lowercased().split(separator: "_").joined(separator: " ")
            let ids = names.prefix(8).joined(separator: ", ")
            return .message(kind: .system, preview: truncated(ids.isEmpty ? what : what + ": " + ids), hasMedia: false)
        }
    }

    /// A notice's `WAMessageStubType`: its name (from the number, or as given), a number
    /// this build does not know, or nil when it is neither.
    enum StubName: Equatable {
        case known(String)
        case unknown(Int64)
    }

    static func stubName(_ type: JSONValue) -> StubName? {
        if let number = integer(type) { return stubNames[number].map(StubName.known) ?? .unknown(number) }
        return type.string.map(StubName.known)
    }

    /// Whether a notice's parameters are its members (participant JSON in Baileys 7), the
    /// only notices whose parameters may teach a LID–phone pair: a subject or a description
    /// is text any member can type, JSON-looking or not.
    static func namesParticipants(_ name: String) -> Bool {
        name.hasPrefix("GROUP_PARTICIPANT_") || name.hasPrefix("GROUP_MEMBERSHIP_JOIN_APPROVAL")
    }

    /// A participant Baileys 7 writes as JSON text in `messageStubParameters`
    /// (src/Socket/messages-recv.ts: `{"id","phoneNumber","lid","username","admin"}`; a join
    /// request's `{"lid","pn"}`): `id` as given, the other id of its LID–phone pair if named,
    /// and the name a notice shows (the phone number, else the id). Nil when `text` is not
    /// such an object.
    static func participantJSON(_ text: String) -> (id: String, other: String?, name: String)? {
        guard text.first == "{", text.utf8.count <= 4096 else { return nil }
        let tape = JSONTape(maxDepth: 4)
        do { try tape.parse(Array(text.utf8)) } catch { return nil }
        let object = tape.root
        guard object.kind == .object else { return nil }
        func field(_ name: StaticString) -> String? {
            guard let value = object[name]?.string, !value.isEmpty else { return nil }
            return value
        }
        guard let id = field("id") ?? field("lid") ?? field("pn") else { return nil }
        let phone = field("phoneNumber") ?? field("pn")
        let other = [phone, field("lid")].compactMap { $0 }.first { $0 != id }
        return (id, other, phone ?? id)
    }

    /// `WAMessageStubType` numbers that are chat-list notices (WAProto).
    static let stubNames: [Int64: String] = [
        20: "GROUP_CREATE", 21: "GROUP_CHANGE_SUBJECT", 22: "GROUP_CHANGE_ICON", 23: "GROUP_CHANGE_INVITE_LINK",
        24: "GROUP_CHANGE_DESCRIPTION", 25: "GROUP_CHANGE_RESTRICT", 26: "GROUP_CHANGE_ANNOUNCE", 27: "GROUP_PARTICIPANT_ADD",
        28: "GROUP_PARTICIPANT_REMOVE", 29: "GROUP_PARTICIPANT_PROMOTE", 30: "GROUP_PARTICIPANT_DEMOTE",
        31: "GROUP_PARTICIPANT_INVITE", 32: "GROUP_PARTICIPANT_LEAVE", 33: "GROUP_PARTICIPANT_CHANGE_NUMBER",
        40: "CALL_MISSED_VOICE", 41: "CALL_MISSED_VIDEO", 43: "GROUP_DELETE", 45: "CALL_MISSED_GROUP_VOICE",
        46: "CALL_MISSED_GROUP_VIDEO",
    ]
}
