import BridgeAdapters
import ChatEvents
import Foundation
import Testing

/// One scripted conversation written in every form ChatLedger reads: canonical events,
/// Evolution API's Kafka records, Baileys events and whatsapp-web.js events (each as the
/// library or bridge emits it, by hand). Messages in and out, receipts, a read on the
/// phone, an edit and a revoke, archive, pin, mute, marked unread, a group renamed with
/// participants changing, one contact under her LID and her phone id. Through its adapter
/// each gives the same chat list as the canonical script, except for the facts a format
/// cannot carry: those are named per format, and the test shows each named fact changes
/// the list (it is a real loss, not a slack).
@Suite("The same conversation in every format")
struct SameConversationTests {
    static let device = "phone-1"
    static let t0: Int64 = 1_767_366_000  // seconds
    static let ana = "491701234567", anaLID = "140913951141911", bo = "491702222222", cy = "491703333333"
    static let group = "120363041234567890@g.us"

    // MARK: - Canonical

    /// The conversation: (seconds after t0, chat, payload).
    static let script: [(Int64, String?, EventPayload)] = [
        (-100, group, .chatUpdated(ChatUpdated(name: "Trip", isGroup: true))),
        (-90, "\(ana)@c.us", .chatUpdated(ChatUpdated(name: "Ana"))),
        (-80, "\(bo)@c.us", .chatUpdated(ChatUpdated(name: "Bo"))),
        (0, "\(ana)@c.us", .messageCreated(MessageCreated(messageId: "A1", fromMe: false, kind: .text, preview: "hi"))),
        (10, "\(ana)@c.us", .messageCreated(MessageCreated(messageId: "A2", fromMe: false, kind: .text, preview: "are you there?"))),
        (20, "\(ana)@c.us", .messageStatus(MessageStatus(messageIds: ["A2"], status: .read, selfDevice: true))),
        (30, "\(ana)@c.us", .messageCreated(MessageCreated(messageId: "O1", fromMe: true, kind: .text, preview: "yes!"))),
        (31, "\(ana)@c.us", .messageStatus(MessageStatus(messageIds: ["O1"], status: .delivered))),
        (40, "\(ana)@c.us", .messageStatus(MessageStatus(messageIds: ["O1"], status: .read))),
        (50, "\(ana)@c.us", .messageCreated(MessageCreated(messageId: "A3", fromMe: false, kind: .text, preview: "lunch?"))),
        (55, "\(ana)@c.us", .messageEdited(MessageEdited(messageId: "A3", preview: "lunch at 1?"))),
        (60, "\(ana)@c.us", .messageCreated(MessageCreated(messageId: "A4", fromMe: false, kind: .text, preview: "oops"))),
        (65, "\(ana)@c.us", .messageRevoked(MessageRevoked(messageId: "A4", scope: .everyone))),
        (70, "\(bo)@c.us", .messageCreated(MessageCreated(messageId: "B1", fromMe: false, kind: .image, preview: "", hasMedia: true))),
        (80, "\(bo)@c.us", .chatArchived(archived: true)),
        (90, "\(ana)@c.us", .chatPinned(pinned: true)),
        (95, "\(bo)@c.us", .chatMuted(muteUntil: -1)),
        (100, group, .groupParticipants(GroupParticipants(action: .add, participants: ["\(cy)@c.us"], includesMe: false))),
        (105, group, .chatUpdated(ChatUpdated(name: "Trip 2026", isGroup: true))),
        (110, group, .groupParticipants(GroupParticipants(action: .leave, participants: ["\(bo)@c.us"], includesMe: false))),
        (120, group, .messageCreated(MessageCreated(messageId: "G1", fromMe: false, kind: .text, preview: "hello all"))),
        (125, group, .messageCreated(MessageCreated(messageId: "G2", fromMe: false, kind: .text, preview: "count me in"))),
        (130, group, .messageStatus(MessageStatus(messageIds: ["G2"], status: .read, selfDevice: true))),
        (140, "\(bo)@c.us", .chatMarkedUnread),
    ]

    static var canonical: [Event] {
        script.enumerated().map { index, step in
            Event(eventId: "c\(index)", deviceId: device, occurredAt: (t0 + step.0) * 1000, chatId: step.1, payload: step.2)
        }
    }

    // MARK: - Evolution API (2.3.7)

    static func evolution(_ seconds: Int64, _ event: String, _ data: String) -> String {
        #"{"event":"\#(event)","instance":"\#(device)","data":\#(data),"server_url":"http://evolution:8080","date_time":"2026-01-02T15:00:00.000Z","sender":"5511999990000@s.whatsapp.net","apikey":"K3Y","timestamp":\#((t0 + seconds) * 1000)}"#
    }

    static func evolutionUpsert(_ seconds: Int64, _ jid: String, _ id: String, fromMe: Bool = false, participant: String = "", _ message: String, type: String = "conversation") -> String {
        evolution(seconds, "messages.upsert", #"{"key":{"remoteJid":"\#(jid)","fromMe":\#(fromMe),"id":"\#(id)"\#(participant)},"pushName":"x","status":"\#(fromMe ? "SERVER_ACK" : "DELIVERY_ACK")","message":\#(message),"messageType":"\#(type)","messageTimestamp":\#(t0 + seconds),"instanceId":"i","source":"android"}"#)
    }

    static var evolutionRecords: [String] {
        let anaPN = "\(ana)@s.whatsapp.net", anaLIDJid = "\(anaLID)@lid", boPN = "\(bo)@s.whatsapp.net"
        return [
            evolution(-100, "groups.upsert", #"[{"id":"\#(group)","subject":"Trip","participants":[{"id":"\#(anaLIDJid)","phoneNumber":"\#(anaPN)"},{"id":"\#(boPN)"}]}]"#),
            evolution(-90, "chats.upsert", #"[{"remoteJid":"\#(anaPN)","instanceId":"i","name":"Ana","unreadMessages":0}]"#),
            evolution(-80, "chats.upsert", #"[{"remoteJid":"\#(boPN)","instanceId":"i","name":"Bo","unreadMessages":0}]"#),
            // 2.3.7 rewrites an upsert's LID to the phone id; other events keep the LID.
            evolutionUpsert(0, anaPN, "A1", #"{"conversation":"hi"}"#),
            evolutionUpsert(10, anaPN, "A2", #"{"conversation":"are you there?"}"#),
            evolution(20, "messages.update", #"{"keyId":"A2","remoteJid":"\#(anaLIDJid)","fromMe":false,"participant":null,"status":"READ","instanceId":"i"}"#),
            evolution(21, "chats.upsert", #"[{"remoteJid":"\#(anaLIDJid)","instanceId":"i","unreadMessages":0}]"#),
            evolutionUpsert(30, anaPN, "O1", fromMe: true, #"{"conversation":"yes!"}"#),
            evolution(31, "messages.update", #"{"keyId":"O1","remoteJid":"\#(anaLIDJid)","fromMe":true,"status":"DELIVERY_ACK","instanceId":"i"}"#),
            evolution(40, "messages.update", #"{"keyId":"O1","remoteJid":"\#(anaLIDJid)","fromMe":true,"status":"READ","instanceId":"i"}"#),
            evolutionUpsert(50, anaPN, "A3", #"{"conversation":"lunch?"}"#),
            evolution(55, "messages.update", #"{"keyId":"A3","remoteJid":"\#(anaLIDJid)","fromMe":false,"status":"SERVER_ACK","instanceId":"i","message":{"editedMessage":{"message":{"protocolMessage":{"type":"MESSAGE_EDIT","editedMessage":{"conversation":"lunch at 1?"}}}}}}"#),
            evolutionUpsert(60, anaPN, "A4", #"{"conversation":"oops"}"#),
            evolution(65, "messages.delete", #"{"remoteJid":"\#(anaLIDJid)","fromMe":false,"id":"A4","status":"DELETED"}"#),
            evolutionUpsert(70, boPN, "B1", #"{"imageMessage":{"mimetype":"image/jpeg","caption":""}}"#, type: "imageMessage"),
            // Archive, pin and mute reach Kafka stripped to the chat id.
            evolution(80, "chats.update", #"[{"remoteJid":"\#(boPN)","instanceId":"i"}]"#),
            evolution(90, "chats.update", #"[{"remoteJid":"\#(anaLIDJid)","instanceId":"i"}]"#),
            evolution(95, "chats.update", #"[{"remoteJid":"\#(boPN)","instanceId":"i"}]"#),
            evolution(100, "group-participants.update", #"{"id":"\#(group)","author":"5511999990000@s.whatsapp.net","participants":["\#(cy)@s.whatsapp.net"],"action":"add","participantsData":[]}"#),
            // groups.update (the rename) is never published; nor the group read on the phone.
            evolution(110, "group-participants.update", #"{"id":"\#(group)","author":"\#(boPN)","participants":["\#(boPN)"],"action":"remove"}"#),
            evolutionUpsert(120, group, "G1", participant: #","participant":"\#(cy)@s.whatsapp.net""#, #"{"conversation":"hello all"}"#),
            evolutionUpsert(125, group, "G2", participant: #","participant":"\#(anaLIDJid)","participantAlt":"\#(anaPN)""#, #"{"conversation":"count me in"}"#),
            evolution(140, "chats.update", #"[{"remoteJid":"\#(boPN)","instanceId":"i"}]"#),
        ]
    }

    // MARK: - Baileys 7

    static func baileys(_ seconds: Int64, _ event: String, _ data: String) -> String {
        #"{"event":"\#(event)","deviceId":"\#(device)","me":{"id":"5511999990000:3@s.whatsapp.net","lid":"99887766554433:3@lid"},"timestamp":\#((t0 + seconds) * 1000),"data":\#(data)}"#
    }

    static func baileysUpsert(_ seconds: Int64, _ key: String, _ message: String, time: String? = nil) -> String {
        baileys(seconds, "messages.upsert", #"{"type":"notify","messages":[{"key":\#(key),"messageTimestamp":\#(time ?? String(t0 + seconds)),"pushName":"x","message":\#(message)}]}"#)
    }

    static var baileysRecords: [String] {
        let anaPN = "\(ana)@s.whatsapp.net", anaLIDJid = "\(anaLID)@lid", boPN = "\(bo)@s.whatsapp.net"
        let anaKey = { (id: String, fromMe: Bool) in #"{"remoteJid":"\#(anaLIDJid)","remoteJidAlt":"\#(anaPN)","fromMe":\#(fromMe),"id":"\#(id)","addressingMode":"lid"}"# }
        return [
            baileys(-100, "groups.upsert", #"[{"id":"\#(group)","subject":"Trip","participants":[{"id":"\#(anaLIDJid)","phoneNumber":"\#(anaPN)","admin":null},{"id":"\#(boPN)","admin":null}]}]"#),
            baileys(-90, "chats.upsert", #"[{"id":"\#(anaLIDJid)","pnJid":"\#(anaPN)","name":"Ana"}]"#),
            baileys(-80, "chats.upsert", #"[{"id":"\#(boPN)","name":"Bo"}]"#),
            baileysUpsert(0, anaKey("A1", false), #"{"conversation":"hi","messageContextInfo":{}}"#),
            baileys(0, "chats.update", #"[{"id":"\#(anaLIDJid)","conversationTimestamp":\#(t0),"unreadCount":1}]"#),
            baileysUpsert(10, anaKey("A2", false), #"{"extendedTextMessage":{"text":"are you there?"}}"#, time: #""\#(t0 + 10)""#),
            baileys(10, "chats.update", #"[{"id":"\#(anaLIDJid)","unreadCount":1}]"#),
            baileys(20, "messages.update", #"[{"key":{"remoteJid":"\#(anaLIDJid)","fromMe":false,"id":"A2"},"update":{"status":4}}]"#),
            baileysUpsert(30, anaKey("O1", true), #"{"conversation":"yes!"}"#),
            baileys(31, "messages.update", #"[{"key":{"remoteJid":"\#(anaLIDJid)","fromMe":true,"id":"O1"},"update":{"status":"DELIVERY_ACK"}}]"#),
            baileys(40, "messages.update", #"[{"key":{"remoteJid":"\#(anaLIDJid)","fromMe":true,"id":"O1"},"update":{"status":4}}]"#),
            baileysUpsert(50, anaKey("A3", false), #"{"conversation":"lunch?"}"#, time: #"{"low":\#(t0 + 50),"high":0,"unsigned":true}"#),
            baileys(55, "messages.update", #"[{"key":{"remoteJid":"\#(anaLIDJid)","fromMe":false,"id":"A3"},"update":{"message":{"editedMessage":{"message":{"conversation":"lunch at 1?"}}},"messageTimestamp":\#(t0 + 55)}}]"#),
            baileysUpsert(60, anaKey("A4", false), #"{"conversation":"oops"}"#),
            baileys(65, "messages.update", #"[{"key":{"remoteJid":"\#(anaLIDJid)","fromMe":false,"id":"A4"},"update":{"message":null,"messageStubType":1}}]"#),
            baileysUpsert(70, #"{"remoteJid":"\#(boPN)","fromMe":false,"id":"B1"}"#, #"{"imageMessage":{"mimetype":"image/jpeg","jpegThumbnail":"/9j/"}}"#),
            baileys(80, "chats.update", #"[{"id":"\#(boPN)","archived":true}]"#),
            baileys(90, "chats.update", #"[{"id":"\#(anaLIDJid)","pinned":\#((t0 + 90) * 1000)}]"#),
            baileys(95, "chats.update", #"[{"id":"\#(boPN)","muteEndTime":-1}]"#),
            baileys(100, "group-participants.update", #"{"id":"\#(group)","author":"5511999990000@s.whatsapp.net","action":"add","participants":[{"id":"\#(cy)@s.whatsapp.net"}]}"#),
            baileysUpsert(100, #"{"remoteJid":"\#(group)","fromMe":true,"id":"S1"}"#, "null").replacingStub(27, ["\(cy)@s.whatsapp.net"]),
            baileys(105, "groups.update", #"[{"id":"\#(group)","subject":"Trip 2026"}]"#),
            baileys(110, "group-participants.update", #"{"id":"\#(group)","author":"\#(boPN)","action":"remove","participants":["\#(boPN)"]}"#),
            baileysUpsert(120, #"{"remoteJid":"\#(group)","fromMe":false,"id":"G1","participant":"\#(cy)@s.whatsapp.net"}"#, #"{"conversation":"hello all"}"#),
            baileysUpsert(125, #"{"remoteJid":"\#(group)","fromMe":false,"id":"G2","participant":"\#(anaLIDJid)","participantAlt":"\#(anaPN)"}"#, #"{"conversation":"count me in"}"#),
            baileys(125, "presence.update", #"{"id":"\#(group)","presences":{}}"#),
            baileys(130, "message-receipt.update", #"[{"key":{"remoteJid":"\#(group)","fromMe":false,"id":"G2","participant":"\#(anaLIDJid)"},"receipt":{"userJid":"99887766554433:5@lid","readTimestamp":\#(t0 + 130)}}]"#),
            baileys(140, "chats.update", #"[{"id":"\#(boPN)","unreadCount":-1}]"#),
        ]
    }

    // MARK: - whatsapp-web.js

    static func wwebjs(_ seconds: Int64, _ event: String, _ args: String) -> String {
        #"{"event":"\#(event)","deviceId":"\#(device)","me":"5511999990000@c.us","timestamp":\#((t0 + seconds) * 1000),"args":\#(args)}"#
    }

    static func message(_ seconds: Int64, _ chat: String, _ id: String, fromMe: Bool = false, type: String = "chat", body: String, author: String? = nil) -> String {
        let authorField = author.map { #","author":"\#($0)""# } ?? ""
        return #"{"id":{"fromMe":\#(fromMe),"remote":"\#(chat)","id":"\#(id)","_serialized":"\#(fromMe)_\#(chat)_\#(id)"},"ack":\#(fromMe ? 1 : 0),"hasMedia":\#(type == "image"),"body":"\#(body)","type":"\#(type)","timestamp":\#(t0 + seconds),"from":"\#(fromMe ? "5511999990000@c.us" : (author ?? chat))","to":"\#(fromMe ? chat : "5511999990000@c.us")"\#(authorField),"fromMe":\#(fromMe),"isStatus":false}"#
    }

    static func chat(_ id: String, name: String, unread: Int, seconds: Int64, archived: Bool = false, last: String? = nil) -> String {
        #"{"id":{"server":"\#(id.hasSuffix("g.us") ? "g.us" : "c.us")","user":"\#(id.split(separator: "@")[0])","_serialized":"\#(id)"},"name":"\#(name)","isGroup":\#(id.hasSuffix("g.us")),"isReadOnly":false,"unreadCount":\#(unread),"timestamp":\#(t0 + seconds),"archived":\#(archived),"pinned":false,"isMuted":false,"muteExpiration":0\#(last.map { #","lastMessage":\#($0)"# } ?? "")}"#
    }

    static func notification(_ seconds: Int64, type: String, body: String = "", recipients: [String], author: String) -> String {
        #"{"id":{"fromMe":false,"remote":"\#(group)","id":"N\#(seconds)","participant":"\#(author)"},"body":"\#(body)","type":"\#(type)","timestamp":\#(t0 + seconds),"chatId":"\#(group)","author":"\#(author)","recipientIds":[\#(recipients.map { #""\#($0)""# }.joined(separator: ","))]}"#
    }

    static var wwebjsRecords: [String] {
        let anaC = "\(ana)@c.us", boC = "\(bo)@c.us"
        let a2 = message(10, anaC, "A2", body: "are you there?"), a3 = message(50, anaC, "A3", body: "lunch?")
        return [
            wwebjs(0, "message_create", "[\(message(0, anaC, "A1", body: "hi"))]"),
            wwebjs(0, "message", "[\(message(0, anaC, "A1", body: "hi"))]"),
            wwebjs(10, "message_create", "[\(a2)]"),
            wwebjs(10, "unread_count", "[\(chat(anaC, name: "Ana", unread: 2, seconds: 10, last: a2))]"),
            wwebjs(20, "unread_count", "[\(chat(anaC, name: "Ana", unread: 0, seconds: 10, last: a2))]"),
            wwebjs(30, "message_create", "[\(message(30, anaC, "O1", fromMe: true, body: "yes!"))]"),
            wwebjs(31, "message_ack", "[\(message(30, anaC, "O1", fromMe: true, body: "yes!")),2]"),
            wwebjs(40, "message_ack", "[\(message(30, anaC, "O1", fromMe: true, body: "yes!")),3]"),
            wwebjs(50, "message_create", "[\(a3)]"),
            wwebjs(50, "unread_count", "[\(chat(anaC, name: "Ana", unread: 1, seconds: 50, last: a3))]"),
            wwebjs(55, "message_edit", #"[\#(message(50, anaC, "A3", body: "lunch at 1?")),"lunch at 1?","lunch?"]"#),
            wwebjs(60, "message_create", "[\(message(60, anaC, "A4", body: "oops"))]"),
            wwebjs(65, "message_revoke_everyone", "[\(message(60, anaC, "A4", type: "revoked", body: "")),\(message(60, anaC, "A4", body: "oops"))]"),
            wwebjs(65, "unread_count", "[\(chat(anaC, name: "Ana", unread: 1, seconds: 60, last: message(60, anaC, "A4", type: "revoked", body: "")))]"),
            wwebjs(70, "message_create", "[\(message(70, boC, "B1", type: "image", body: ""))]"),
            wwebjs(70, "unread_count", "[\(chat(boC, name: "Bo", unread: 1, seconds: 70, last: message(70, boC, "B1", type: "image", body: "")))]"),
            wwebjs(80, "chat_archived", "[\(chat(boC, name: "Bo", unread: 1, seconds: 70, archived: true)),true,false]"),
            wwebjs(100, "group_join", "[\(notification(100, type: "add", recipients: ["\(cy)@c.us"], author: "5511999990000@c.us"))]"),
            wwebjs(105, "group_update", "[\(notification(105, type: "subject", body: "Trip 2026", recipients: [], author: "5511999990000@c.us"))]"),
            wwebjs(110, "group_leave", "[\(notification(110, type: "leave", recipients: [boC], author: boC))]"),
            wwebjs(120, "message_create", "[\(message(120, group, "G1", body: "hello all", author: "\(cy)@c.us"))]"),
            wwebjs(125, "message_create", "[\(message(125, group, "G2", body: "count me in", author: anaC))]"),
            wwebjs(125, "unread_count", "[\(chat(group, name: "Trip 2026", unread: 2, seconds: 125, last: message(125, group, "G2", body: "count me in", author: anaC)))]"),
            wwebjs(130, "unread_count", "[\(chat(group, name: "Trip 2026", unread: 0, seconds: 125))]"),
            wwebjs(140, "unread_count", "[\(chat(boC, name: "Bo", unread: -1, seconds: 70, archived: true))]"),
        ]
    }

    // MARK: - The comparison

    /// Facts a format cannot carry, by name: the canonical events stating them.
    static let cannotCarry: [String: [(fact: String, isFact: @Sendable (Event) -> Bool)]] = [
        "evolution": [
            ("archive (chats.update is stripped)", { $0.type == "chat.archived" }),
            ("pin (chats.update is stripped)", { $0.type == "chat.pinned" }),
            ("mute (chats.update is stripped)", { $0.type == "chat.muted" }),
            ("marked unread (chats.update is stripped)", { $0.type == "chat.markedUnread" }),
            ("group rename (groups.update is never published)", { $0.type == "chat.updated" && $0.occurredAt == (t0 + 105) * 1000 }),
            ("group read on the phone (message-receipt.update is not published)", { $0.type == "message.status" && $0.chatId == group }),
        ],
        "baileys": [],
        "wwebjs": [
            ("pin (no event)", { $0.type == "chat.pinned" }),
            ("mute (no event)", { $0.type == "chat.muted" }),
        ],
    ]

    /// The records through `adapter` as the stage makes them: event ids from the records,
    /// and an event whose chat is a guess (a LID key) placed in its message's chat.
    static func adapt(_ records: [String], _ adapter: any BridgeAdapter) -> [Event] {
        let tape = JSONTape()
        var chatOfMessage: [String: String] = [:]
        var events: [Event] = []
        for (offset, json) in records.enumerated() {
            let result = adapter.adapt(
                BridgeRecord(topic: "conversation", partition: 0, offset: Int64(offset), timestamp: 0, value: Array(json.utf8)), tape: tape)
            #expect(!result.isDeadLetter, "\(adapter.format) record \(offset): \(result.outcome)")
            for adapted in result.events {
                var event = adapted.event
                if case .messageCreated(let message) = event.payload, let chat = event.chatId { chatOfMessage[message.messageId] = chat }
                if adapted.chatIsGuess, let target = adapted.waitsFor, let chat = chatOfMessage[target] { event.chatId = chat }
                events.append(event)
            }
        }
        return events
    }

    /// The device's chat list and archived chats (without `version`) after `events`.
    static func chatList(_ events: [Event]) throws -> String {
        try StageTesting.rendered(StageTesting.fold(events), devices: [device], withVersion: false)[device] ?? ""
    }

    @Test("the canonical script itself: Ana 1 unread (her last message revoked), pinned; Bo archived, muted, marked unread; the group renamed, read")
    func canonicalList() throws {
        let list = try Self.chatList(Self.canonical)
        #expect(list.contains(#""id":"491701234567@c.us","name":"Ana","isGroup":false,"unreadCount":1,"#), "\(list)")
        #expect(list.contains(#""revoked":true"#))
        #expect(list.contains(#""name":"Trip 2026","isGroup":true,"unreadCount":0"#))
        #expect(list.contains(#""id":"491702222222@c.us","name":"Bo","isGroup":false,"unreadCount":1,"markedUnread":true"#))
    }

    @Test("each format through its adapter gives the canonical chat list, except the facts it cannot carry; each named fact does change the list", arguments: ["evolution", "baileys", "wwebjs"])
    func sameChatList(format: String) throws {
        let adapter = try #require(BridgeFormats.adapter(named: format))
        let records = format == "evolution" ? Self.evolutionRecords : format == "baileys" ? Self.baileysRecords : Self.wwebjsRecords
        let losses = Self.cannotCarry[format] ?? []
        let carried = Self.canonical.filter { event in !losses.contains { $0.isFact(event) } }
        let expected = try Self.chatList(carried)
        let actual = try Self.chatList(Self.adapt(records, adapter))
        #expect(actual == expected, "\(format):\n expected \(expected)\n actual   \(actual)")
        for loss in losses {
            let without = Self.canonical.filter { !loss.isFact($0) }
            #expect(try Self.chatList(without) != Self.chatList(Self.canonical), "\(format) cannot carry \(loss.fact): a fact the list shows")
        }
    }
}

extension String {
    /// A Baileys upsert whose message is a notice (`messageStubType`) instead of content.
    fileprivate func replacingStub(_ type: Int, _ parameters: [String]) -> String {
        let stub = #""messageStubType":\#(type),"messageStubParameters":[\#(parameters.map { #""\#($0)""# }.joined(separator: ","))]"#
        guard let range = range(of: #""message":null"#) else { return self }
        return replacingCharacters(in: range, with: stub)
    }
}
