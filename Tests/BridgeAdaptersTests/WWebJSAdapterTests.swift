import BridgeAdapters
import ChatEvents
import Testing

/// Every whatsapp-web.js event of issue 17, from records written after the serialised
/// `Message`, `Chat`, `Reaction` and `GroupNotification` fields (`src/structures/*.js`,
/// `src/Client.js`, BRIDGES.md §4), in ChatLedger's envelope, with the canonical events
/// expected of each.
@Suite("whatsapp-web.js adapter: one record at a time")
struct WWebJSAdapterTests {
    let harness = BridgeHarness(adapter: WWebJSAdapter(), topic: "wa.wwebjs")
    typealias H = BridgeHarness
    static let me = #""5511999990000@c.us""#

    static func envelope(_ event: String, _ args: String) -> String { H.envelope(event, args: args, me: me) }

    /// A serialised `Message`.
    static func message(
        id: String, chat: String = "491701234567@c.us", fromMe: Bool = false, type: String = "chat", body: String = "hi",
        author: String? = nil, extra: String = "", remoteAsObject: Bool = false
    ) -> String {
        let remote = remoteAsObject
            ? #"{"server":"\#(chat.split(separator: "@").last ?? "")","user":"\#(chat.split(separator: "@").first ?? "")","_serialized":"\#(chat)"}"#
            : #""\#(chat)""#
        let authorField = author.map { #","author":"\#($0)""# } ?? ""
        return #"{"id":{"fromMe":\#(fromMe),"remote":\#(remote),"id":"\#(id)","_serialized":"\#(fromMe)_\#(chat)_\#(id)"},"ack":\#(fromMe ? 1 : 0),"hasMedia":\#(type == "image"),"body":"\#(body)","type":"\#(type)","timestamp":1767366770,"from":"\#(fromMe ? "5511999990000@c.us" : (author ?? chat))","to":"\#(fromMe ? chat : "5511999990000@c.us")"\#(authorField),"fromMe":\#(fromMe),"isStatus":false,"deviceType":"android","_data":{"id":{"id":"\#(id)"},"t":1767366770}\#(extra)}"#
    }

    // MARK: - Messages

    @Test("message_create: incoming and own messages (the sender is the contact, the group member, the account), seconds made ms, a remote serialised as an object")
    func messageCreate() {
        let incoming = harness.events(Self.envelope("message_create", "[\(Self.message(id: "3A1", remoteAsObject: true))]"))
        #expect(incoming.map(\.payload) == [.messageCreated(MessageCreated(
            messageId: "3A1", fromMe: false, kind: .text, preview: "hi", senderId: "491701234567@c.us"))])
        #expect(incoming.first?.chatId == "491701234567@c.us")
        #expect(incoming.first?.occurredAt == 1_767_366_770_000)
        #expect(incoming.first?.deviceId == H.deviceId)
        let own = harness.payloads(Self.envelope("message_create", "[\(Self.message(id: "3EB0", chat: "120363041234567890@g.us", fromMe: true, body: "on my way"))]"))
        #expect(own == [
            .messageCreated(MessageCreated(messageId: "3EB0", fromMe: true, kind: .text, preview: "on my way", senderId: "5511999990000@c.us")),
            .messageStatus(MessageStatus(messageIds: ["3EB0"], status: .server)),
        ])
        let member = harness.payloads(Self.envelope("message_create", "[\(Self.message(id: "G1", chat: "120363041234567890@g.us", type: "image", body: "look", author: "491702222222@c.us"))]"))
        #expect(member == [.messageCreated(MessageCreated(
            messageId: "G1", fromMe: false, kind: .image, preview: "look", senderId: "491702222222@c.us", hasMedia: true))])
    }

    @Test("message_create types: ptt is audio, vcard a contact named by FN, a location by its description (its body is a thumbnail), poll_creation its name; revoked, ciphertext, notifications and status posts are no messages")
    func messageTypes() {
        func created(_ type: String, body: String = "", extra: String = "") -> (MessageKind, String)? {
            guard case .messageCreated(let created)? = harness.payloads(Self.envelope("message_create", "[\(Self.message(id: "K", type: type, body: body, extra: extra))]")).first
            else { return nil }
            return (created.kind, created.preview)
        }
        #expect(created("ptt")! == (.audio, ""))
        #expect(created("vcard", body: #"BEGIN:VCARD\nVERSION:3.0\nFN:Bea Lima\nEND:VCARD"#)! == (.contact, "Bea Lima"))
        #expect(created("location", body: "/9j/4AAQSkZJRg", extra: #","location":{"latitude":1,"longitude":2,"description":"Café"}"#)! == (.location, "Café"))
        #expect(created("poll_creation", extra: #","pollName":"Pizza?""#)! == (.text, "Pizza?"))
        #expect(created("call_log")! == (.call, ""))
        #expect(created("sticker")! == (.sticker, ""))
        #expect(created("some_future_type", body: "x")! == (.text, "x"))
        for type in ["revoked", "ciphertext", "e2e_notification", "notification_template", "gp2", "protocol"] {
            let result = harness.adapt(Self.envelope("message_create", "[\(Self.message(id: "K", type: type))]"))
            #expect(result.events.isEmpty && result.skipReasons == ["not_a_message"], "\(type)")
        }
        let status = harness.adapt(Self.envelope("message_create", "[\(Self.message(id: "K", chat: "status@broadcast"))]"))
        #expect(status.events.isEmpty && status.skipReasons == ["status_broadcast"])
    }

    @Test("message repeats message_create's incoming messages: skipped, counted, so no message is created twice")
    func messageEventSkipped() {
        let result = harness.adapt(Self.envelope("message", "[\(Self.message(id: "3A1"))]"))
        #expect(result.events.isEmpty)
        #expect(result.skipReasons == ["also_in_message_create"])
    }

    @Test("message_ack: an own message's ack -1…4 (the second argument) is its status; an incoming one read is read on the phone; delivered incoming changes nothing")
    func messageAck() {
        let statuses: [(Int, AckStatus)] = [(-1, .error), (0, .pending), (1, .server), (2, .delivered), (3, .read), (4, .played)]
        for (ack, status) in statuses {
            let result = harness.adapt(Self.envelope("message_ack", "[\(Self.message(id: "O1", fromMe: true)),\(ack)]"))
            #expect(result.events.map(\.event.payload) == [.messageStatus(MessageStatus(messageIds: ["O1"], status: status))], "ack \(ack)")
            #expect(result.events.first?.waitsFor == "O1")
        }
        #expect(harness.payloads(Self.envelope("message_ack", "[\(Self.message(id: "I1")),3]"))
            == [.messageStatus(MessageStatus(messageIds: ["I1"], status: .read, selfDevice: true))])
        #expect(harness.adapt(Self.envelope("message_ack", "[\(Self.message(id: "I1")),2]")).skipReasons == ["receipt_without_effect"])
    }

    @Test("message_revoke_everyone (the message turned `revoked`, its id the target's), message_revoke_me, message_edit (newBody)")
    func revokeAndEdit() {
        #expect(harness.payloads(Self.envelope("message_revoke_everyone", "[\(Self.message(id: "V1", type: "revoked", body: "")),\(Self.message(id: "V1"))]"))
            == [.messageRevoked(MessageRevoked(messageId: "V1", scope: .everyone))])
        #expect(harness.payloads(Self.envelope("message_revoke_everyone", "[\(Self.message(id: "V2", type: "revoked", body: "")),null]"))
            == [.messageRevoked(MessageRevoked(messageId: "V2", scope: .everyone))], "revoked_msg may be absent")
        #expect(harness.payloads(Self.envelope("message_revoke_me", "[\(Self.message(id: "V3"))]"))
            == [.messageRevoked(MessageRevoked(messageId: "V3", scope: .me))])
        #expect(harness.payloads(Self.envelope("message_edit", #"[\#(Self.message(id: "E1", body: "fixed")),"fixed","fxied"]"#))
            == [.messageEdited(MessageEdited(messageId: "E1", preview: "fixed"))])
    }

    @Test("message_create: an own message's ack (1 server ... 3 read) follows it as message.status, so its ack is not pending; ack 0 (pending) and an incoming message's ack state nothing more")
    func messageCreateOwnAck() {
        let ack = { (value: Int, fromMe: Bool) in
            Self.envelope("message_create", "[\(Self.message(id: "A\(value)", fromMe: fromMe).replacingOccurrences(of: #""ack":\#(fromMe ? 1 : 0)"#, with: #""ack":\#(value)"#))]")
        }
        let created = { (id: String, fromMe: Bool) in
            EventPayload.messageCreated(MessageCreated(
                messageId: id, fromMe: fromMe, kind: .text, preview: "hi", senderId: fromMe ? "5511999990000@c.us" : "491701234567@c.us"))
        }
        #expect(harness.payloads(ack(1, true)) == [created("A1", true), .messageStatus(MessageStatus(messageIds: ["A1"], status: .server))])
        #expect(harness.payloads(ack(3, true)) == [created("A3", true), .messageStatus(MessageStatus(messageIds: ["A3"], status: .read))])
        #expect(harness.payloads(ack(0, true)) == [created("A0", true)])
        #expect(harness.payloads(ack(2, false)) == [created("A2", false)])
    }

    @Test("message_revoke_everyone: args[0] is the revoke notice under a new id; the revoked message is its protocolMessageKey, else args[1].id (Client.js copies the key there)")
    func revokeNamesTheOriginalMessage() {
        let key = #"{"fromMe":true,"remote":"491701234567@c.us","id":"ORIG1","_serialized":"true_491701234567@c.us_ORIG1"}"#
        let notice = Self.message(id: "NEWREV9", fromMe: true, type: "revoked", body: "", extra: #","protocolMessageKey":\#(key)"#)
        let revokedMessage = Self.message(id: "ORIG1", fromMe: true, body: "secret text")
        #expect(harness.payloads(Self.envelope("message_revoke_everyone", "[\(notice),\(revokedMessage)]"))
            == [.messageRevoked(MessageRevoked(messageId: "ORIG1", scope: .everyone))])
        #expect(harness.payloads(Self.envelope("message_revoke_everyone", "[\(notice),null]"))
            == [.messageRevoked(MessageRevoked(messageId: "ORIG1", scope: .everyone))], "protocolMessageKey alone")
        let serialisedKey = Self.message(id: "NEWREV9", type: "revoked", body: "", extra: #","protocolMessageKey":"false_491701234567@c.us_ORIG2""#)
        #expect(harness.payloads(Self.envelope("message_revoke_everyone", "[\(serialisedKey),null]"))
            == [.messageRevoked(MessageRevoked(messageId: "ORIG2", scope: .everyone))], "a key serialised as a string")
        let withoutKey = Self.message(id: "NEWREV9", type: "revoked", body: "")
        #expect(harness.payloads(Self.envelope("message_revoke_everyone", "[\(withoutKey),\(Self.message(id: "ORIG3"))]"))
            == [.messageRevoked(MessageRevoked(messageId: "ORIG3", scope: .everyone))], "no protocolMessageKey: revoked_msg's id")
    }

    @Test("message_reaction: target from msgId, sender, emoji (empty: removed), seconds")
    func reaction() {
        let events = harness.events(Self.envelope("message_reaction", #"""
            [{"id":{"fromMe":false,"remote":"491701234567@c.us","id":"RX1","_serialized":"false_491701234567@c.us_RX1"},
              "orphan":0,"reaction":"👍","timestamp":1767366780,"read":false,"ack":0,
              "msgId":{"fromMe":true,"remote":"491701234567@c.us","id":"T1","_serialized":"true_491701234567@c.us_T1"},"senderId":"491701234567@c.us"}]
            """#))
        #expect(events.map(\.payload) == [.messageReaction(MessageReaction(targetMessageId: "T1", senderId: "491701234567@c.us", emoji: "👍"))])
        #expect(events.first?.occurredAt == 1_767_366_780_000)
    }

    // MARK: - Chats

    static func chat(_ id: String = "491701234567@c.us", unread: Int, extra: String = "") -> String {
        // `extra` first: the adapter reads the first of repeated keys.
        #"{"id":{"server":"c.us","user":"\#(id.split(separator: "@").first ?? "")","_serialized":"\#(id)"}\#(extra),"name":"Ana","isGroup":\#(id.hasSuffix("@g.us")),"isReadOnly":false,"unreadCount":\#(unread),"timestamp":1767366770,"archived":false,"pinned":false,"isMuted":false,"muteExpiration":0}"#
    }

    @Test("unread_count, an absolute count: 0 is chat.read, -1 chat.markedUnread, a positive count the whole chat as chat.snapshot (count, flags, mute, last message)")
    func unreadCount() {
        #expect(harness.payloads(Self.envelope("unread_count", "[\(Self.chat(unread: 0))]")) == [.chatRead(ChatRead())])
        #expect(harness.payloads(Self.envelope("unread_count", "[\(Self.chat(unread: -1))]")) == [.chatMarkedUnread])
        let snapshot = harness.events(Self.envelope("unread_count", "[\(Self.chat(unread: 3, extra: #","pinned":true,"isMuted":true,"muteExpiration":-1,"lastMessage":\#(Self.message(id: "L3", body: "third"))"#))]"))
        #expect(snapshot.map(\.payload) == [.chatSnapshot(ChatSnapshot(
            name: "Ana", isGroup: false, unreadCount: 3, markedUnread: false, archived: false, pinned: true, muteUntil: -1,
            timestamp: 1_767_366_770_000,
            lastMessage: SnapshotMessage(id: "L3", fromMe: false, kind: .text, preview: "third", timestamp: 1_767_366_770_000)))])
        let muted = harness.payloads(Self.envelope("unread_count", "[\(Self.chat("120363041234567890@g.us", unread: 1, extra: #","isMuted":true,"muteExpiration":1767999999"#))]"))
        guard case .chatSnapshot(let group)? = muted.first else {
            Issue.record("no snapshot: \(muted)")
            return
        }
        #expect(group.isGroup && group.muteUntil == 1_767_999_999_000 && group.lastMessage == nil, "muteExpiration is seconds")
    }

    @Test("chat_archived (currState), chat_removed")
    func chatEvents() {
        #expect(harness.payloads(Self.envelope("chat_archived", "[\(Self.chat(unread: 0)),true,false]")) == [.chatArchived(archived: true)])
        #expect(harness.payloads(Self.envelope("chat_archived", "[\(Self.chat(unread: 0)),false,true]")) == [.chatArchived(archived: false)])
        let removed = harness.events(Self.envelope("chat_removed", "[\(Self.chat(unread: 0))]"))
        #expect(removed.map(\.payload) == [.chatDeleted])
        #expect(removed.first?.chatId == "491701234567@c.us")
    }

    // MARK: - Groups

    static func notification(type: String, body: String = "", recipients: [String], author: String = "491701234567@c.us") -> String {
        let ids = recipients.map { #""\#($0)""# }.joined(separator: ",")
        return #"{"id":{"fromMe":false,"remote":"120363041234567890@g.us","id":"N1","participant":"\#(author)","_serialized":"false_120363041234567890@g.us_N1_\#(author)"},"body":"\#(body)","type":"\#(type)","timestamp":1767366790,"chatId":"120363041234567890@g.us","author":"\#(author)","recipientIds":[\#(ids)]}"#
    }

    @Test("group_join / group_leave / group_admin_changed are group.participants (includesMe when the account is named); group_update's subject names the group")
    func groups() {
        #expect(harness.payloads(Self.envelope("group_join", "[\(Self.notification(type: "add", recipients: ["491703333333@c.us", "5511999990000@c.us"]))]"))
            == [.groupParticipants(GroupParticipants(action: .add, participants: ["491703333333@c.us", "5511999990000@c.us"], includesMe: true))])
        #expect(harness.payloads(Self.envelope("group_leave", "[\(Self.notification(type: "leave", recipients: ["491702222222@c.us"]))]"))
            == [.groupParticipants(GroupParticipants(action: .leave, participants: ["491702222222@c.us"], includesMe: false))])
        #expect(harness.payloads(Self.envelope("group_leave", "[\(Self.notification(type: "remove", recipients: ["5511999990000@c.us"]))]"))
            == [.groupParticipants(GroupParticipants(action: .remove, participants: ["5511999990000@c.us"], includesMe: true))])
        #expect(harness.payloads(Self.envelope("group_admin_changed", "[\(Self.notification(type: "promote", recipients: ["491702222222@c.us"]))]"))
            == [.groupParticipants(GroupParticipants(action: .promote, participants: ["491702222222@c.us"], includesMe: false))])
        let renamed = harness.events(Self.envelope("group_update", "[\(Self.notification(type: "subject", body: "Trip 2026", recipients: []))]"))
        #expect(renamed.map(\.payload) == [.chatUpdated(ChatUpdated(name: "Trip 2026", isGroup: true))])
        #expect(renamed.first?.occurredAt == 1_767_366_790_000)
        #expect(harness.adapt(Self.envelope("group_update", "[\(Self.notification(type: "picture", recipients: []))]")).skipReasons == ["group_notification_picture"])
    }

    // MARK: - The rest

    @Test("session events are ignored, unknown events unknown, both counted")
    func ignored() {
        for event in ["ready", "qr", "change_state", "incoming_call", "vote_update"] {
            let result = harness.adapt(Self.envelope(event, "[]"))
            #expect(result.events.isEmpty && result.skipReasons == ["ignored_event"], "\(event)")
        }
        #expect(harness.adapt(Self.envelope("message_teleported", "[]")).skipReasons == ["unknown_event"])
    }

    @Test("bad records are dead letters: no args, args not an array, a message without id, an ack on nothing, unread_count without a count")
    func deadLetters() {
        func code(_ json: String) -> String? {
            if case .deadLetter(let code, _) = harness.adapt(json).outcome { return code }
            return nil
        }
        #expect(code(#"{"event":"message_create","deviceId":"bot-1"}"#) == "missing_field")
        #expect(code(#"{"event":"message_create","deviceId":"bot-1","args":{}}"#) == "wrong_type")
        #expect(code(Self.envelope("message_create", #"[{"body":"x"}]"#)) == "missing_field")
        #expect(code(Self.envelope("message_ack", "[]")) == "missing_field")
        #expect(code(Self.envelope("message_create", "[42]")) == "wrong_type")
        #expect(code(Self.envelope("unread_count", #"[{"id":{"_serialized":"491701234567@c.us"}}]"#)) == "missing_field")
    }
}
