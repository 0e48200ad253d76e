import BridgeAdapters
import ChatEvents
import Foundation
import Testing

/// Every Baileys event of issue 17, from records written after Baileys' documented shapes
/// (`src/Types/Events.ts`, `process-message.ts`, `chat-utils.ts`, BRIDGES.md §3), in
/// ChatLedger's envelope, with the canonical events expected of each, traps included.
@Suite("Baileys adapter: one record at a time")
struct BaileysAdapterTests {
    let harness = BridgeHarness(adapter: BaileysAdapter(), topic: "wa.baileys")
    typealias H = BridgeHarness
    static let time = BridgeHarness.time

    // MARK: - messages.upsert

    @Test("messages.upsert notify: an incoming 1:1 text under a LID with its phone id beside it: the pair, then the message in the phone chat; seconds as a Long")
    func upsertLID() throws {
        let result = harness.adapt(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[{"key":{"remoteJid":"140913951141911@lid","remoteJidAlt":"491701234567@s.whatsapp.net","fromMe":false,"id":"3A1","addressingMode":"lid"},
              "messageTimestamp":{"low":1767366770,"high":0,"unsigned":true},"pushName":"Ana",
              "message":{"conversation":"hi","messageContextInfo":{"deviceListMetadata":{}}}}]}
            """#))
        #expect(result.eventName == "messages.upsert")
        let events = result.events.map(\.event)
        #expect(events.map(\.chatId) == ["491701234567@c.us", "491701234567@c.us"])
        #expect(events[0].payload == .contactAliased(ContactAliased(alias: "140913951141911@lid")))
        #expect(events[1].deviceId == H.deviceId, "the device is the envelope's deviceId")
        #expect(events[1].occurredAt == 1_767_366_770_000)
        #expect(events[1].payload == .messageCreated(MessageCreated(
            messageId: "3A1", fromMe: false, kind: .text, preview: "hi", senderId: "491701234567@c.us")))
    }

    @Test("messages.upsert append: an own group message from another device (ephemeral wrapper, numeric-string time) is the account's, sender from the envelope's me; its SERVER_ACK follows it")
    func upsertAppendOwn() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"append","messages":[{"key":{"remoteJid":"120363041234567890@g.us","fromMe":true,"id":"3EB0OWN"},"messageTimestamp":"1767366771","status":2,
              "message":{"ephemeralMessage":{"message":{"extendedTextMessage":{"text":"on my way"}}}}}]}
            """#))
        #expect(events.map(\.payload) == [
            .messageCreated(MessageCreated(messageId: "3EB0OWN", fromMe: true, kind: .text, preview: "on my way", senderId: "5511999990000@c.us")),
            .messageStatus(MessageStatus(messageIds: ["3EB0OWN"], status: .server)),
        ])
        #expect(events.first?.occurredAt == 1_767_366_771_000)
    }

    @Test("messages.upsert: an own message's status (SERVER_ACK by number, a receipt a buffered batch merged in by name) follows it as message.status, so its ack is not pending; PENDING and an incoming delivery state nothing more")
    func upsertOwnStatus() throws {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"append","messages":[
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"O1"},"messageTimestamp":1767366770,"status":2,"message":{"conversation":"a"}},
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"O2"},"messageTimestamp":1767366771,"status":"READ","message":{"conversation":"b"}},
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"O3"},"messageTimestamp":1767366772,"status":1,"message":{"conversation":"c"}},
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"I1"},"messageTimestamp":1767366773,"status":3,"message":{"conversation":"d"}}]}
            """#))
        #expect(events.map(\.type) == ["message.created", "message.status", "message.created", "message.status", "message.created", "message.created"])
        #expect(events[1].payload == .messageStatus(MessageStatus(messageIds: ["O1"], status: .server)))
        #expect(events[3].payload == .messageStatus(MessageStatus(messageIds: ["O2"], status: .read)))
        #expect(events[3].occurredAt == 1_767_366_771_000, "stated with the message")
        let list = try Self.chatList([SameConversationTests.baileysUpsert(
            0, #"{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"O4"}"#, #"{"conversation":"sent from the phone, read by Anna"}"#
        ).replacingOccurrences(of: #""pushName":"x","#, with: #""status":4,"#)])
        #expect(list.contains(#""unreadCount":0"#) && list.contains(#""ack":"read""#), "\(list)")
    }

    @Test("messages.upsert: a group image from a member under a LID resolved by participantAlt; a read history message is read on the phone")
    func upsertGroupAndRead() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"append","messages":[
              {"key":{"remoteJid":"120363041234567890@g.us","participant":"140913951141911@lid","participantAlt":"491701234567@s.whatsapp.net","fromMe":false,"id":"G1"},
               "messageTimestamp":1767366772,"message":{"imageMessage":{"caption":"look","jpegThumbnail":"/9j/"}}},
              {"key":{"remoteJid":"491709999999@s.whatsapp.net","fromMe":false,"id":"R1"},"messageTimestamp":1767366773,"status":"READ",
               "message":{"conversation":"seen on the phone"}}]}
            """#))
        #expect(events.map(\.type) == ["contact.aliased", "message.created", "message.created", "message.status"])
        #expect(events[1].payload == .messageCreated(MessageCreated(
            messageId: "G1", fromMe: false, kind: .image, preview: "look", senderId: "491701234567@c.us", hasMedia: true)))
        #expect(events[3].payload == .messageStatus(MessageStatus(messageIds: ["R1"], status: .read, selfDevice: true)))
    }

    @Test("messages.upsert: reactions (said again by messages.reaction), protocol messages, poll votes and decryption placeholders make no event, each counted")
    func upsertNonMessages() {
        let result = harness.adapt(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"X1"},"messageTimestamp":1767366770,
               "message":{"reactionMessage":{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"T"},"text":"👍"}}},
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"X2"},"messageTimestamp":1767366770,
               "message":{"protocolMessage":{"type":0,"key":{"id":"T"}}}},
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"X3"},"messageTimestamp":1767366770,
               "message":{"senderKeyDistributionMessage":{},"pollUpdateMessage":{"vote":{}}}},
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"X4"},"messageTimestamp":1767366770,"messageStubType":2}]}
            """#))
        #expect(result.events.isEmpty)
        #expect(result.skipReasons == ["reaction_also_in_messages_reaction", "not_a_message", "not_a_message", "not_a_message"])
    }

    @Test("messages.upsert: a secretEncryptedMessage (an encrypted MESSAGE_EDIT of another message) is no new message: skipped, counted, no unread")
    func upsertSecretEncryptedEdit() {
        let result = harness.adapt(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"S2"},"messageTimestamp":1767366802,
              "message":{"secretEncryptedMessage":{"targetMessageKey":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"S1"},
                "encPayload":"AAAA","encIv":"BBBB","secretEncType":"MESSAGE_EDIT"},"messageContextInfo":{}}}]}
            """#))
        #expect(result.events.isEmpty)
        #expect(result.skipReasons == ["not_a_message"])
    }

    @Test("messages.upsert content types (WAProto): albumMessage and eventCoverImage are no messages of their own, nor a pollResultSnapshotMessageV3; stickerPackMessage is a sticker; pollCreationMessageV5 and V4 (a wrapper) are the poll's name")
    func upsertNewerContentTypes() {
        let message = { (id: String, content: String) in
            #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"\#(id)"},"messageTimestamp":1767366770,"message":\#(content)}"#
        }
        let result = harness.adapt(H.envelope("messages.upsert", data: #"{"type":"notify","messages":["# + [
            message("C1", #"{"albumMessage":{"expectedImageCount":3,"expectedVideoCount":0},"messageContextInfo":{}}"#),
            message("C2", #"{"eventCoverImage":{"message":{"imageMessage":{"mimetype":"image/jpeg"}}}}"#),
            message("C3", #"{"pollResultSnapshotMessageV3":{"name":"Pizza?","pollVotes":[]}}"#),
            message("C4", #"{"stickerPackMessage":{"stickerPackId":"p","name":"Cats","stickers":[]}}"#),
            message("C5", #"{"pollCreationMessageV5":{"name":"Lunch?","options":[{"optionName":"yes"}]}}"#),
            message("C6", #"{"pollCreationMessageV4":{"message":{"pollCreationMessage":{"name":"Dinner?","options":[]}}}}"#),
        ].joined(separator: ",") + "]}"))
        #expect(result.skipReasons == ["not_a_message", "not_a_message", "not_a_message"])
        #expect(result.events.map(\.event.payload) == [
            .messageCreated(MessageCreated(messageId: "C4", fromMe: false, kind: .sticker, preview: "", senderId: "491701234567@c.us", hasMedia: true)),
            .messageCreated(MessageCreated(messageId: "C5", fromMe: false, kind: .text, preview: "Lunch?", senderId: "491701234567@c.us")),
            .messageCreated(MessageCreated(messageId: "C6", fromMe: false, kind: .text, preview: "Dinner?", senderId: "491701234567@c.us")),
        ])
    }

    @Test("messages.upsert: an incoming broadcast-list message is filed under its sender's chat; an own one stays under the list, never a chat with its participant (the account)")
    func upsertBroadcastList() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"append","messages":[
              {"key":{"remoteJid":"1767366000@broadcast","fromMe":false,"id":"BL0","participant":"491701234567@s.whatsapp.net"},"messageTimestamp":1767366780,
               "broadcast":true,"message":{"conversation":"to everyone on Anna's list"}},
              {"key":{"remoteJid":"1767366000@broadcast","fromMe":true,"id":"BL1","participant":"5511999990000@s.whatsapp.net"},"messageTimestamp":1767366790,
               "broadcast":true,"message":{"conversation":"to my broadcast list"}}]}
            """#))
        #expect(events.filter { $0.type == "message.created" }.map(\.chatId) == ["491701234567@c.us", "1767366000@broadcast"])
        #expect(!events.contains { $0.chatId == "5511999990000@c.us" }, "no chat with the account itself")
    }

    @Test("messages.upsert: Baileys 7 group notices carry participants as JSON text: the preview names the phone number, else the id, never the JSON; the pair is learnt")
    func upsertStubJSONParticipants() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"J1","participant":"140913951141999@lid"},"messageTimestamp":1767366770,
               "messageStubType":"GROUP_PARTICIPANT_ADD","messageStubParameters":[
                 "{\"id\":\"140913951141911@lid\",\"phoneNumber\":\"491701234567@s.whatsapp.net\",\"admin\":null}",
                 "{\"id\":\"140913951141922@lid\",\"admin\":null}"]},
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"J2","participant":"491703333333@s.whatsapp.net"},"messageTimestamp":1767366771,
               "messageStubType":32,"messageStubParameters":["{\"id\":\"491703333333@s.whatsapp.net\",\"lid\":\"140913951141933@lid\",\"admin\":null}"]}]}
            """#))
        let previews = events.compactMap { event -> String? in
            guard case .messageCreated(let message) = event.payload else { return nil }
            return message.preview
        }
        #expect(previews == ["participant add: 491701234567@s.whatsapp.net, 140913951141922@lid", "participant leave: 491703333333@s.whatsapp.net"])
        #expect(events.filter { $0.type == "contact.aliased" }.map(\.chatId) == ["491701234567@c.us", "491703333333@c.us"])
        #expect(!events.contains { "\($0.payload)".contains("admin") })
    }

    @Test("a subject or description that looks like participant JSON is typed text: shown as it is, and it teaches no LID-phone pair (one member could merge two contacts' chats)")
    func stubSubjectLookingLikeJSON() {
        let planted = #"{\"id\":\"491701234567@s.whatsapp.net\",\"lid\":\"1234567@lid\"}"#
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"S1","participant":"491703333333@s.whatsapp.net"},"messageTimestamp":1767366770,
               "messageStubType":"GROUP_CHANGE_SUBJECT","messageStubParameters":["\#(planted)"]},
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"S2","participant":"491703333333@s.whatsapp.net"},"messageTimestamp":1767366771,
               "messageStubType":24,"messageStubParameters":["\#(planted)"]}]}
            """#))
        #expect(!events.contains { $0.type == "contact.aliased" }, "\(events.map(\.type))")
        let previews = events.compactMap { event -> String? in
            guard case .messageCreated(let message) = event.payload else { return nil }
            return message.preview
        }
        let typed = #"{"id":"491701234567@s.whatsapp.net","lid":"1234567@lid"}"#
        #expect(previews == ["changed the subject to \"\(typed)\"", "change description: \(typed)"])
    }

    @Test("group-participants.update: participants given as Baileys 7's JSON text (as in messageStubParameters) are read like objects: the phone id, the pair learnt")
    func participantsAsJSONText() {
        let events = harness.events(H.envelope("group-participants.update", data: #"""
            {"id":"120363041234567890@g.us","author":"5511999990000@s.whatsapp.net","action":"add",
             "participants":["{\"id\":\"140913951141911@lid\",\"phoneNumber\":\"491701234567@s.whatsapp.net\",\"admin\":null}","491702222222@s.whatsapp.net"]}
            """#))
        #expect(events.map(\.payload) == [
            .contactAliased(ContactAliased(alias: "140913951141911@lid")),
            .groupParticipants(GroupParticipants(action: .add, participants: ["491701234567@c.us", "491702222222@c.us"], includesMe: false)),
        ])
    }

    @Test("messages.upsert: group notices (stub type as number or name) are system messages; a missed call is a call")
    func upsertStubs() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"S1","participant":"491701234567@s.whatsapp.net"},"messageTimestamp":1767366770,
               "messageStubType":27,"messageStubParameters":["491702222222@s.whatsapp.net"]},
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"S2","participant":"491701234567@s.whatsapp.net"},"messageTimestamp":1767366771,
               "messageStubType":"GROUP_CHANGE_SUBJECT","messageStubParameters":["Trip"]},
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"S3"},"messageTimestamp":1767366772,"messageStubType":40}]}
            """#))
        #expect(events.map(\.payload) == [
            .messageCreated(MessageCreated(
                messageId: "S1", fromMe: false, kind: .system, preview: "participant add: 491702222222@s.whatsapp.net", senderId: "491701234567@c.us")),
            .messageCreated(MessageCreated(
                messageId: "S2", fromMe: false, kind: .system, preview: "changed the subject to \"Trip\"", senderId: "491701234567@c.us")),
            .messageCreated(MessageCreated(messageId: "S3", fromMe: false, kind: .call, preview: "", senderId: "491701234567@c.us")),
        ])
    }

    // MARK: - Keys of Baileys 6.7.19 – 6.7.21

    /// The chat list after `records` (Baileys envelopes of `SameConversationTests.device`).
    static func chatList(_ records: [String]) throws -> String {
        try SameConversationTests.chatList(SameConversationTests.adapt(records, BaileysAdapter()))
    }

    @Test("Baileys 6.7.21 keys: senderPn beside a LID remoteJid teaches the pair as remoteJidAlt does: the message and an own reply under the phone id are one chat, read")
    func senderPnTeachesThePair() throws {
        typealias S = SameConversationTests
        let records = [
            S.baileysUpsert(0, #"{"remoteJid":"140913951141911@lid","fromMe":false,"id":"P1","senderPn":"491701234567@s.whatsapp.net"}"#, #"{"conversation":"hi (6.7.21 key)"}"#),
            S.baileysUpsert(5, #"{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"P2"}"#, #"{"conversation":"reply from the phone"}"#),
        ]
        let events = S.adapt(records, BaileysAdapter())
        #expect(events.map(\.type) == ["contact.aliased", "message.created", "message.created"])
        #expect(events.map(\.chatId) == ["491701234567@c.us", "491701234567@c.us", "491701234567@c.us"])
        #expect(events[0].payload == .contactAliased(ContactAliased(alias: "140913951141911@lid")))
        let list = try Self.chatList(records)
        #expect(list.contains(#"{"id":"491701234567@c.us","name":null,"isGroup":false,"unreadCount":0,"#), "\(list)")
        #expect(!list.contains("@lid"), "one chat, not a LID chat beside it: \(list)")
    }

    @Test("Baileys 6.7.21 keys: senderLid beside a phone remoteJid, participantPn / participantLid beside a group participant are pairs; an own message's senderPn (the account) teaches nothing")
    func senderAndParticipantFields() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[
              {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"K1","senderLid":"140913951141911@lid"},"messageTimestamp":1767366770,"message":{"conversation":"a"}},
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"K2","participant":"140913951141922@lid","participantPn":"491702222222@s.whatsapp.net"},"messageTimestamp":1767366771,"message":{"conversation":"b"}},
              {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"K3","participant":"491703333333@s.whatsapp.net","participantLid":"140913951141933@lid"},"messageTimestamp":1767366772,"message":{"conversation":"c"}},
              {"key":{"remoteJid":"140913951141944@lid","fromMe":true,"id":"K4","senderPn":"5511999990000@s.whatsapp.net"},"messageTimestamp":1767366773,"message":{"conversation":"d"}}]}
            """#))
        let aliases = events.filter { $0.type == "contact.aliased" }.map { "\($0.chatId ?? "") \($0.payload)" }
        #expect(aliases == [
            "491701234567@c.us \(EventPayload.contactAliased(ContactAliased(alias: "140913951141911@lid")))",
            "491702222222@c.us \(EventPayload.contactAliased(ContactAliased(alias: "140913951141922@lid")))",
            "491703333333@c.us \(EventPayload.contactAliased(ContactAliased(alias: "140913951141933@lid")))",
        ])
        let created = events.compactMap { event -> String? in
            guard case .messageCreated(let message) = event.payload else { return nil }
            return "\(event.chatId ?? "") \(message.senderId ?? "")"
        }
        #expect(created == [
            "491701234567@c.us 491701234567@c.us", "120363041234567890@g.us 491702222222@c.us",
            "120363041234567890@g.us 491703333333@c.us", "140913951141944@lid 5511999990000@c.us",
        ])
    }

    // MARK: - messages.update

    @Test("messages.update: own receipts by number or name; an incoming message READ is read on another device; an incoming delivery changes nothing")
    func updateStatus() throws {
        let result = harness.adapt(H.envelope("messages.update", data: #"""
            [{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"O1"},"update":{"status":3}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"O2"},"update":{"status":"READ"}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"I1"},"update":{"status":4,"messageTimestamp":1767366790}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"I2"},"update":{"status":3}}]
            """#))
        #expect(result.events.map(\.event.payload) == [
            .messageStatus(MessageStatus(messageIds: ["O1"], status: .delivered)),
            .messageStatus(MessageStatus(messageIds: ["O2"], status: .read)),
            .messageStatus(MessageStatus(messageIds: ["I1"], status: .read, selfDevice: true)),
        ])
        #expect(result.events.map(\.waitsFor) == ["O1", "O2", "I1"], "placed after the messages they act on")
        #expect(result.skipReasons == ["receipt_without_effect"])
        #expect(result.events[0].event.occurredAt == Self.time, "a receipt's time is the envelope's")
    }

    @Test("messages.update: the REVOKE stub (number or name) is a revoke for everyone; an edit carries the new text; a LID key is a guess the stage resolves; stars change nothing")
    func updateRevokeEdit() throws {
        let result = harness.adapt(H.envelope("messages.update", data: #"""
            [{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"V1"},"update":{"message":null,"messageStubType":1,"key":{"id":"PROTO"}}},
             {"key":{"remoteJid":"140913951141911@lid","fromMe":false,"id":"V2"},"update":{"message":null,"messageStubType":"REVOKE"}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"E1"},
              "update":{"message":{"editedMessage":{"message":{"protocolMessage":{"type":14,"editedMessage":{"conversation":"fixed typo"}}}}},"messageTimestamp":"1767366795"}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"E2"},"update":{"message":{"editedMessage":{"message":{"extendedTextMessage":{"text":"mine, edited"}}}}}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"S"},"update":{"starred":true}}]
            """#))
        #expect(result.events.map(\.event.payload) == [
            .messageRevoked(MessageRevoked(messageId: "V1", scope: .everyone)),
            .messageRevoked(MessageRevoked(messageId: "V2", scope: .everyone)),
            .messageEdited(MessageEdited(messageId: "E1", preview: "fixed typo")),
            .messageEdited(MessageEdited(messageId: "E2", preview: "mine, edited")),
        ])
        #expect(result.events.map(\.chatIsGuess) == [false, true, false, false])
        #expect(result.events[1].event.chatId == "140913951141911@lid")
        #expect(result.events[2].event.occurredAt == 1_767_366_795_000)
        #expect(result.skipReasons == ["no_chat_list_update"])
    }

    // MARK: - messages.delete, messages.reaction, message-receipt.update

    @Test("messages.delete: keys deleted for me are revokes for me; {jid, all} clears the chat")
    func delete() {
        #expect(harness.payloads(H.envelope("messages.delete", data: #"""
            {"keys":[{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"D1"},{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"D2"}]}
            """#)) == [
                .messageRevoked(MessageRevoked(messageId: "D1", scope: .me)), .messageRevoked(MessageRevoked(messageId: "D2", scope: .me)),
            ])
        let cleared = harness.events(H.envelope("messages.delete", data: #"{"jid":"491701234567@s.whatsapp.net","all":true}"#))
        #expect(cleared.map(\.payload) == [.chatCleared])
        #expect(cleared.first?.chatId == "491701234567@c.us")
    }

    @Test("messages.reaction: the target's key, who reacted (a member, the account, the contact), removal as an empty emoji, senderTimestampMs as a string")
    func reaction() {
        let events = harness.events(H.envelope("messages.reaction", data: #"""
            [{"key":{"remoteJid":"120363041234567890@g.us","fromMe":true,"id":"T1"},
              "reaction":{"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"RX1","participant":"491701234567@s.whatsapp.net"},"text":"❤️","senderTimestampMs":"1767366780123"}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"T2"},
              "reaction":{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"RX2"},"text":"👍","senderTimestampMs":1767366781000}},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"T3"},
              "reaction":{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"RX3"},"text":null}}]
            """#))
        #expect(events.map(\.payload) == [
            .messageReaction(MessageReaction(targetMessageId: "T1", senderId: "491701234567@c.us", emoji: "❤️")),
            .messageReaction(MessageReaction(targetMessageId: "T2", senderId: "5511999990000@c.us", emoji: "👍")),
            .messageReaction(MessageReaction(targetMessageId: "T3", senderId: "491701234567@c.us", emoji: "")),
        ])
        #expect(events[0].occurredAt == 1_767_366_780_123)
    }

    @Test("message-receipt.update: the account's own read (its LID with a device suffix) is a read on its device; other members' receipts change nothing")
    func groupReceipts() {
        let result = harness.adapt(H.envelope("message-receipt.update", data: #"""
            [{"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"GM1","participant":"491701234567@s.whatsapp.net"},
              "receipt":{"userJid":"99887766554433:3@lid","readTimestamp":1767366790}},
             {"key":{"remoteJid":"120363041234567890@g.us","fromMe":true,"id":"GM2"},
              "receipt":{"userJid":"491701234567@s.whatsapp.net","readTimestamp":1767366791}},
             {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"GM3"},
              "receipt":{"userJid":"5511999990000@s.whatsapp.net","receiptTimestamp":1767366792}}]
            """#))
        #expect(result.events.map(\.event.payload) == [.messageStatus(MessageStatus(messageIds: ["GM1"], status: .read, selfDevice: true))])
        #expect(result.events.first?.event.occurredAt == 1_767_366_790_000)
        #expect(result.skipReasons == ["receipt_of_another_member", "receipt_without_effect"])
    }

    // MARK: - chats

    @Test("chats.update unreadCount, the trap: a positive number is an increment (ignored, the messages count), 0 is read, -1 marked unread, null nothing")
    func unreadCountSemantics() {
        let result = harness.adapt(H.envelope("chats.update", data: #"""
            [{"id":"491701234567@s.whatsapp.net","conversationTimestamp":1767366770,"unreadCount":1},
             {"id":"491701234567@s.whatsapp.net","unreadCount":3},
             {"id":"491701234567@s.whatsapp.net","unreadCount":0},
             {"id":"491701234567@s.whatsapp.net","unreadCount":-1},
             {"id":"491701234567@s.whatsapp.net","unreadCount":null}]
            """#))
        #expect(result.events.map(\.event.payload) == [.chatRead(ChatRead()), .chatMarkedUnread])
        #expect(result.skipReasons == ["unread_increment", "unread_increment", "no_chat_list_update"])
    }

    @Test("chats.update app-state actions: archive, pin (at the pin's ms) and unpin, mute until ms / forever / Long / unmute; pin and archive in one update are two events")
    func chatActions() {
        let events = harness.events(H.envelope("chats.update", data: #"""
            [{"id":"491701234567@s.whatsapp.net","archived":true},
             {"id":"120363041234567890@g.us","pinned":1767366700000},
             {"id":"120363041234567890@g.us","pinned":null},
             {"id":"491701234567@s.whatsapp.net","muteEndTime":1767999999000},
             {"id":"491701234567@s.whatsapp.net","muteEndTime":-1},
             {"id":"491701234567@s.whatsapp.net","muteEndTime":{"low":-1,"high":-1,"unsigned":false}},
             {"id":"491701234567@s.whatsapp.net","muteEndTime":null},
             {"id":"491702222222@s.whatsapp.net","archived":false,"pinned":"1767366710000"}]
            """#))
        #expect(events.map(\.payload) == [
            .chatArchived(archived: true), .chatPinned(pinned: true), .chatPinned(pinned: false), .chatMuted(muteUntil: 1_767_999_999_000),
            .chatMuted(muteUntil: -1), .chatMuted(muteUntil: -1), .chatMuted(muteUntil: 0), .chatArchived(archived: false), .chatPinned(pinned: true),
        ])
        #expect(events[1].occurredAt == 1_767_366_700_000, "pinnedAt is when it was pinned")
        #expect(events[2].occurredAt == Self.time)
        #expect(events.last?.chatId == "491702222222@c.us")
    }

    @Test("chats.upsert names a chat (a group's as a group); chats.delete deletes each chat once")
    func upsertAndDelete() {
        #expect(harness.payloads(H.envelope("chats.upsert", data: #"[{"id":"120363041234567890@g.us","name":"Trip","conversationTimestamp":1767366770,"unreadCount":1}]"#))
            == [.chatUpdated(ChatUpdated(name: "Trip", isGroup: true))])
        let deleted = harness.events(H.envelope("chats.delete", data: #"["491701234567@s.whatsapp.net","140913951141911@lid"]"#))
        #expect(deleted.map(\.payload) == [.chatDeleted, .chatDeleted])
        #expect(deleted.map(\.chatId) == ["491701234567@c.us", "140913951141911@lid"])
        // One chat named many times (in either form) is one deletion, not one per mention.
        let repeated = Array(repeating: #""491701234567@s.whatsapp.net""#, count: 5_000).joined(separator: ",") + #","491701234567@c.us""#
        #expect(harness.events(H.envelope("chats.delete", data: "[" + repeated + "]")).map(\.chatId) == ["491701234567@c.us"])
    }

    // MARK: - messaging-history.set

    static let history = #"""
        {"syncType":0,"isLatest":true,"progress":100,
         "lidPnMappings":[{"lid":"140913951141911@lid","pn":"491701234567@s.whatsapp.net"}],
         "chats":[
           {"id":"140913951141911@lid","pnJid":"491701234567@s.whatsapp.net","name":"Ana","unreadCount":{"low":2,"high":0,"unsigned":true},
            "conversationTimestamp":"1767366760","archived":false,"pinned":1767366000,"muteEndTime":-1},
           {"id":"120363041234567890@g.us","name":"Trip","unreadCount":-1,"markedAsUnread":true,"archived":true,"conversationTimestamp":1767366750},
           {"id":"491709999999@s.whatsapp.net","conversationTimestamp":1767366700}],
         "contacts":[],
         "messages":[
           {"key":{"remoteJid":"140913951141911@lid","remoteJidAlt":"491701234567@s.whatsapp.net","fromMe":false,"id":"H1"},"messageTimestamp":1767366755,"message":{"conversation":"older"}},
           {"key":{"remoteJid":"140913951141911@lid","remoteJidAlt":"491701234567@s.whatsapp.net","fromMe":false,"id":"H2"},"messageTimestamp":1767366760,"message":{"conversation":"newest"}},
           {"key":{"remoteJid":"140913951141911@lid","fromMe":false,"id":"H3"},"messageTimestamp":1767366761,"message":{"protocolMessage":{"type":3}}},
           {"key":{"remoteJid":"120363041234567890@g.us","fromMe":true,"id":"H4"},"messageTimestamp":1767366750,"status":4,"message":{"imageMessage":{"caption":"beach"}}}]}
        """#

    @Test("messaging-history.set (bootstrap): lidPnMappings become contact.aliased, each chat an absolute chat.snapshot under its phone id with its newest message")
    func historySnapshot() throws {
        let events = harness.events(H.envelope("messaging-history.set", data: Self.history))
        #expect(events.map(\.type) == ["contact.aliased", "chat.snapshot", "chat.snapshot", "chat.snapshot"])
        #expect(events[0].chatId == "491701234567@c.us")
        #expect(events[0].payload == .contactAliased(ContactAliased(alias: "140913951141911@lid")))
        #expect(events[1].chatId == "491701234567@c.us", "a chat held under its LID is snapshotted under its phone id")
        #expect(events[1].payload == .chatSnapshot(ChatSnapshot(
            name: "Ana", isGroup: false, unreadCount: 2, markedUnread: false, archived: false, pinned: true, muteUntil: -1,
            timestamp: 1_767_366_760_000,
            lastMessage: SnapshotMessage(id: "H2", fromMe: false, kind: .text, preview: "newest", timestamp: 1_767_366_760_000))))
        #expect(events[2].payload == .chatSnapshot(ChatSnapshot(
            name: "Trip", isGroup: true, unreadCount: 0, markedUnread: true, archived: true, pinned: false, muteUntil: 0,
            timestamp: 1_767_366_750_000,
            lastMessage: SnapshotMessage(id: "H4", fromMe: true, kind: .image, preview: "beach", timestamp: 1_767_366_750_000, ack: .read))))
        #expect(events[3].payload == .chatSnapshot(ChatSnapshot(
            name: "", isGroup: false, unreadCount: 0, markedUnread: false, archived: false, pinned: false, muteUntil: 0,
            timestamp: 1_767_366_700_000, lastMessage: nil)))
    }

    @Test("messaging-history.set: a chat's name is displayName || name || username, as Baileys reads it (a 1:1 chat often has only a displayName)")
    func historyChatName() {
        let events = harness.events(H.envelope("messaging-history.set", data: #"""
            {"chats":[{"id":"491701234567@s.whatsapp.net","displayName":"Anna Schmidt","unreadCount":1,"conversationTimestamp":"1767366800"},
                      {"id":"120363099999999999@g.us","name":"Old club","unreadCount":0,"conversationTimestamp":"1767300000"},
                      {"id":"491709999999@s.whatsapp.net","displayName":"","name":"Ben","unreadCount":0,"conversationTimestamp":"1767366000"},
                      {"id":"491708888888@s.whatsapp.net","username":"cy.shop","unreadCount":0,"conversationTimestamp":"1767366000"}],
             "contacts":[],"messages":[],"syncType":0}
            """#))
        let names = events.compactMap { event -> String? in
            guard case .chatSnapshot(let snapshot) = event.payload else { return nil }
            return snapshot.name
        }
        #expect(names == ["Anna Schmidt", "Old club", "Ben", "cy.shop"])
    }

    @Test("messaging-history.set chunks older than the live state (FULL, ON_DEMAND) are no snapshot; their mappings still count")
    func historyLateChunks() {
        for syncType in ["2", "6", #""ON_DEMAND""#] {
            let result = harness.adapt(H.envelope("messaging-history.set", data: Self.history.replacingOccurrences(of: #""syncType":0"#, with: #""syncType":\#(syncType)"#)))
            #expect(result.events.map(\.event.type) == ["contact.aliased"], "syncType \(syncType)")
            #expect(result.skipReasons == ["history_not_a_snapshot"])
        }
    }

    // MARK: - groups, LIDs, settings

    @Test("groups.upsert and groups.update: the subject names the group; participants with phone numbers teach their LIDs")
    func groups() {
        let upsert = harness.events(H.envelope("groups.upsert", data: #"""
            [{"id":"120363041234567890@g.us","subject":"Trip","owner":"491701234567@s.whatsapp.net",
              "participants":[{"id":"140913951141911@lid","phoneNumber":"491701234567@s.whatsapp.net","admin":"superadmin"},{"id":"491702222222@s.whatsapp.net","admin":null}]}]
            """#))
        #expect(upsert.map(\.payload) == [
            .contactAliased(ContactAliased(alias: "140913951141911@lid")), .chatUpdated(ChatUpdated(name: "Trip", isGroup: true)),
        ])
        #expect(harness.payloads(H.envelope("groups.update", data: #"[{"id":"120363041234567890@g.us","subject":"Trip 2026"}]"#))
            == [.chatUpdated(ChatUpdated(name: "Trip 2026", isGroup: true))])
        #expect(harness.adapt(H.envelope("groups.update", data: #"[{"id":"120363041234567890@g.us","announce":true}]"#)).skipReasons == ["no_chat_list_effect"])
    }

    @Test("group-participants.update: Baileys 7 objects and Baileys 6 strings; removing oneself is leaving; the account named by its LID is includesMe")
    func participants() {
        let added = harness.events(H.envelope("group-participants.update", data: #"""
            {"id":"120363041234567890@g.us","author":"491701234567@s.whatsapp.net","action":"add",
             "participants":[{"id":"140913951141912@lid","phoneNumber":"491703333333@s.whatsapp.net"},{"id":"99887766554433@lid"}]}
            """#))
        #expect(added.map(\.payload) == [
            .contactAliased(ContactAliased(alias: "140913951141912@lid")),
            .groupParticipants(GroupParticipants(action: .add, participants: ["491703333333@c.us", "99887766554433@lid"], includesMe: true)),
        ])
        #expect(harness.payloads(H.envelope("group-participants.update", data: #"""
            {"id":"120363041234567890@g.us","author":"491702222222@s.whatsapp.net","action":"remove","participants":["491702222222@s.whatsapp.net"]}
            """#)) == [.groupParticipants(GroupParticipants(action: .leave, participants: ["491702222222@c.us"], includesMe: false))])
        #expect(harness.adapt(H.envelope("group-participants.update", data: #"""
            {"id":"120363041234567890@g.us","author":"x@s.whatsapp.net","action":"modify","participants":["491702222222@s.whatsapp.net"]}
            """#)).skipReasons == ["participant_action_modify"])
    }

    @Test("lid-mapping.update (an object, or an array in newer releases) is contact.aliased, its id derived from the pair")
    func lidMapping() throws {
        let events = harness.events(H.envelope("lid-mapping.update", data: #"{"lid":"140913951141911@lid","pn":"491701234567@s.whatsapp.net"}"#))
        let event = try #require(events.first)
        #expect(events.count == 1)
        #expect(event.chatId == "491701234567@c.us")
        #expect(event.eventId == EventIdentity.aliasEventId(deviceId: H.deviceId, chatId: "491701234567@c.us", alias: "140913951141911@lid"))
        #expect(harness.adapt(H.envelope("lid-mapping.update", data: #"{"lid":"491701234567@s.whatsapp.net","pn":"491701234567@s.whatsapp.net"}"#)).isDeadLetter)
        let array = harness.events(H.envelope("lid-mapping.update", data: #"[{"lid":"140913951141911@lid","pn":"491701234567@s.whatsapp.net"},{"lid":"140913951141912@lid","pn":"491702222222@s.whatsapp.net"}]"#))
        #expect(array.map(\.payload) == [
            .contactAliased(ContactAliased(alias: "140913951141911@lid")), .contactAliased(ContactAliased(alias: "140913951141912@lid")),
        ], "newer releases emit an array")
    }

    @Test("creds.update: the unarchiveChats account setting is account.settings (keep archived = !unarchive); the rest of creds.update is never read")
    func accountSetting() {
        let events = harness.events(H.envelope("creds.update", data: #"{"accountSettings":{"unarchiveChats":false}}"#))
        #expect(events.map(\.payload) == [.accountSettings(keepChatsArchived: true)])
        #expect(events.first?.chatId == nil)
        #expect(harness.adapt(H.envelope("creds.update", data: #"{"me":{"id":"x"},"signedIdentityKey":{"private":"c2VjcmV0"}}"#)).skipReasons == ["ignored_event"])
    }

    // MARK: - The rest

    @Test("presence, contacts, calls are counted as ignored; an unknown event as unknown; nothing is emitted")
    func ignored() {
        for event in ["presence.update", "contacts.upsert", "call", "connection.update", "labels.edit"] {
            let result = harness.adapt(H.envelope(event, data: "[]"))
            #expect(result.events.isEmpty && result.skipReasons == ["ignored_event"], "\(event)")
        }
        #expect(harness.adapt(H.envelope("messages.teleport", data: "{}")).skipReasons == ["unknown_event"])
    }

    @Test("bad records are dead letters naming the field: no deviceId, data of the wrong type, a key without id, not JSON, an unreadCount that is no number")
    func deadLetters() {
        func code(_ json: String) -> String? {
            if case .deadLetter(let code, _) = harness.adapt(json).outcome { return code }
            return nil
        }
        #expect(code(#"{"event":"messages.upsert","data":{"messages":[]}}"#) == "missing_field")
        #expect(code(H.envelope("messages.upsert", data: #""nope""#)) == "wrong_type")
        #expect(code(H.envelope("messages.update", data: #"[{"key":{"remoteJid":"1@s.whatsapp.net"},"update":{"status":3}}]"#)) == "missing_field")
        #expect(code(#"{"event":"messages.upsert""#) != nil)
        #expect(code(H.envelope("chats.update", data: #"[{"id":"1@s.whatsapp.net","unreadCount":"many"}]"#)) == "wrong_type")
        #expect(code(H.envelope("messages.upsert", data: #"{"messages":[]}"#, me: "42")) == "wrong_type", "me is an object or a string")
    }

    // MARK: - Session 13 audit: real shapes the adapter mapped wrongly

    @Test("message-receipt.update: the account's own receipt on an own group message (its other device got it: Baileys gives a `sender` receipt a readTimestamp) says nothing of the members: no event")
    func ownReceiptOnOwnMessage() {
        let result = harness.adapt(H.envelope("message-receipt.update", data: #"""
            [{"key":{"remoteJid":"120363041234567890@g.us","id":"3EB0OWN","fromMe":true,"participant":"5511999990000:0@s.whatsapp.net"},
              "receipt":{"userJid":"5511999990000@s.whatsapp.net","readTimestamp":1767366801}}]
            """#))
        #expect(result.events.isEmpty)
        #expect(result.skipReasons == ["own_receipt_on_own_message"])
    }

    @Test("muteEndTime 'muted forever' as protobufjs writes a uint64 -1 (\"18446744073709551615\") or as a JS number is -1, and the rest of the history chunk still maps")
    func muteForeverAsUnsigned() {
        let events = harness.events(H.envelope("chats.update", data: #"""
            [{"id":"491701234567@s.whatsapp.net","muteEndTime":"18446744073709551615"},
             {"id":"491701234567@s.whatsapp.net","muteEndTime":18446744073709551615}]
            """#))
        #expect(events.map(\.payload) == [.chatMuted(muteUntil: -1), .chatMuted(muteUntil: -1)])
        let history = harness.events(H.envelope("messaging-history.set", data: #"""
            {"chats":[{"id":"491701234567@s.whatsapp.net","unreadCount":1,"muteEndTime":"18446744073709551615","conversationTimestamp":1767366000},
                      {"id":"491702222222@s.whatsapp.net","unreadCount":2,"conversationTimestamp":1767366001}],
             "contacts":[],"messages":[],"syncType":0}
            """#))
        let snapshots = history.compactMap { event -> ChatSnapshot? in if case .chatSnapshot(let snapshot) = event.payload { snapshot } else { nil } }
        #expect(snapshots.map(\.muteUntil) == [-1, 0], "both chats' snapshots, the first muted forever")
    }

    @Test("a group call nobody answers (Baileys upserts the offer, then a missed-call notice under the same id) is one unread message, the missed call")
    func missedGroupCallCountsOnce() throws {
        typealias S = SameConversationTests
        let key = #"{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"CALL1","participant":"491701234567@s.whatsapp.net"}"#
        let offer = S.baileysUpsert(0, key, #"{"call":{"callKey":"Q0FMTDE="}}"#)
        let missed = S.baileys(40, "messages.upsert", #"{"type":"notify","messages":[{"key":\#(key),"messageTimestamp":\#(S.t0 + 40),"messageStubType":"CALL_MISSED_GROUP_VOICE"}]}"#)
        let list = try Self.chatList([offer, missed])
        #expect(list.contains(#""unreadCount":1"#), "\(list)")
    }

    @Test("messages.upsert: an edit as Baileys 6.7.0–6.7.12 upserts it (editedMessage around a protocolMessage MESSAGE_EDIT) edits the original, in the record's own chat")
    func upsertedEdit() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"EDIT1"},"messageTimestamp":1767366800,
              "message":{"editedMessage":{"message":{"protocolMessage":{"key":{"remoteJid":"5511999990000@s.whatsapp.net","fromMe":true,"id":"ORIG1"},
                "type":"MESSAGE_EDIT","editedMessage":{"conversation":"hello"},"timestampMs":"1767366800123"}}}}}]}
            """#))
        #expect(events.map(\.payload) == [.messageEdited(MessageEdited(messageId: "ORIG1", preview: "hello"))])
        #expect(events.first?.chatId == "491701234567@c.us", "the chat of the record's key, not the sender's view in the protocol message")
    }

    @Test("messages.upsert: a group status message (groupStatusMessageV2 around an image) is the image with its caption")
    func groupStatusWrapper() {
        let events = harness.events(H.envelope("messages.upsert", data: #"""
            {"type":"notify","messages":[{"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"GS1","participant":"491701234567@s.whatsapp.net"},
              "messageTimestamp":1767366800,"message":{"groupStatusMessageV2":{"message":{"imageMessage":{"caption":"beach"}}}}}]}
            """#))
        #expect(events.map(\.payload) == [.messageCreated(MessageCreated(
            messageId: "GS1", fromMe: false, kind: .image, preview: "beach", senderId: "491701234567@c.us", hasMedia: true))])
    }
}
