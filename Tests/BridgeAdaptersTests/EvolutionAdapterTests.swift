import BridgeAdapters
import ChatEvents
import Testing

/// Every Evolution event kind of BRIDGES.md §2, from records written after the documented
/// format (Evolution 2.3.x `whatsapp.baileys.service.ts`, its Kafka controller and the
/// captures quoted there), with the canonical events expected of each.
@Suite("Evolution adapter: one record at a time")
struct EvolutionAdapterTests {
    let harness = EvolutionHarness()
    typealias H = EvolutionHarness

    // MARK: - messages.upsert

    /// The webhook capture of BRIDGES.md §2.1, as its Kafka value (`timestamp` for `destination`).
    static let capture = H.envelope("messages.upsert", #"""
        {"key":{"remoteJid":"558197088404@s.whatsapp.net","fromMe":true,"id":"3AE99D6A1DBF3F9A0578"},
         "pushName":"Nome do Remetente","status":"SERVER_ACK","message":{"conversation":"Texto da mensagem"},
         "messageType":"conversation","messageTimestamp":1763771103,"instanceId":"uuid-da-instancia","source":"ios"}
        """#)

    @Test("messages.upsert (the documented capture): message.created in the @c.us form, seconds made ms, the source named")
    func upsertCapture() throws {
        let result = harness.adapt(Self.capture)
        #expect(result.outcome == .mapped)
        #expect(result.eventName == "messages.upsert")
        let event = try #require(result.events.first?.event)
        #expect(result.events.count == 2)
        #expect(
            result.events.last?.event.payload == .messageStatus(MessageStatus(messageIds: ["3AE99D6A1DBF3F9A0578"], status: .server)),
            "an own message typed on the phone is SERVER_ACK already (Baileys sets it; Evolution passes it on): one tick, not pending")
        #expect(event.deviceId == "sales", "the device is the record's instance")
        #expect(event.chatId == "558197088404@c.us")
        #expect(event.occurredAt == 1_763_771_103_000, "messageTimestamp is in seconds")
        #expect(event.payload == .messageCreated(MessageCreated(
            messageId: "3AE99D6A1DBF3F9A0578", fromMe: true, kind: .text, preview: "Texto da mensagem", senderId: "558196349077@c.us")))
        #expect(event.source == EventSource(format: "evolution", topic: "evolution.sales.messages.upsert", partition: 0, offset: 7))
        #expect(result.secret == Array(H.secret.utf8), "kept only to scrub it")
    }

    @Test("event ids come from the record's coordinates: the same record gives the same ids, another offset others")
    func deterministicIds() throws {
        let first = harness.adapt(Self.capture, offset: 7).events.map(\.event)
        let again = harness.adapt(Self.capture, offset: 7).events.map(\.event)
        let elsewhere = harness.adapt(Self.capture, offset: 8).events.map(\.event)
        #expect(first == again)
        #expect(first.map(EventEncoder.encode) == again.map(EventEncoder.encode), "byte for byte")
        #expect(first[0].eventId != elsewhere[0].eventId)
        #expect(first[0].eventId.utf8.count == 26)
        #expect(EventIdentity.eventId(format: "evolution", topic: "t", partition: 0, offset: 1, index: 0)
            != EventIdentity.eventId(format: "evolution", topic: "t", partition: 0, offset: 1, index: 1))
    }

    @Test("an incoming group image: kind, caption, media, the sender's LID resolved to the phone id and the pair recorded")
    func groupImageWithLID() throws {
        let events = harness.events(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"120363041234567890@g.us","fromMe":false,"id":"A1B2C3",
                    "participant":"140913951141911@lid","participantAlt":"491701234567@s.whatsapp.net","addressingMode":"lid"},
             "pushName":"Ana","status":"DELIVERY_ACK",
             "message":{"imageMessage":{"url":"https://mmg.whatsapp.net/x","mimetype":"image/jpeg","caption":"look","jpegThumbnail":"/9j/4AAQ"},
                        "messageContextInfo":{"deviceListMetadata":{}}},
             "messageType":"imageMessage","messageTimestamp":"1767366770","instanceId":"i","source":"android"}
            """#))
        #expect(events.count == 2)
        #expect(events[0].payload == .contactAliased(ContactAliased(alias: "140913951141911@lid")))
        #expect(events[0].chatId == "491701234567@c.us")
        #expect(events[0].eventId == EventIdentity.aliasEventId(deviceId: "sales", chatId: "491701234567@c.us", alias: "140913951141911@lid"))
        #expect(events[1].chatId == "120363041234567890@g.us")
        #expect(events[1].occurredAt == 1_767_366_770_000, "a numeric string of seconds")
        #expect(events[1].payload == .messageCreated(MessageCreated(
            messageId: "A1B2C3", fromMe: false, kind: .image, preview: "look", senderId: "491701234567@c.us", hasMedia: true)))
    }

    @Test("a 1:1 chat under its LID with the phone id beside it (before 2.3.7 rewrote it): the phone chat, and the pair")
    func personalChatWithLID() {
        let events = harness.events(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"140913951141911@lid","remoteJidAlt":"491701234567@s.whatsapp.net","fromMe":false,"id":"M1","addressingMode":"lid"},
             "message":{"conversation":"hi"},"messageType":"conversation","messageTimestamp":{"low":1767366770,"high":0,"unsigned":true}}
            """#))
        #expect(events.map(\.chatId) == ["491701234567@c.us", "491701234567@c.us"])
        #expect(events.map(\.type) == ["contact.aliased", "message.created"])
        #expect(events[1].occurredAt == 1_767_366_770_000, "a protobuf Long")
        // 2.3.7 writes the phone id into remoteJid and leaves remoteJidAlt equal: nothing to learn.
        let rewritten = harness.events(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"491701234567@s.whatsapp.net","remoteJidAlt":"491701234567@s.whatsapp.net","fromMe":false,"id":"M2","addressingMode":"lid"},
             "message":{"conversation":"hi"},"messageType":"conversation","messageTimestamp":1767366771}
            """#))
        #expect(rewritten.map(\.type) == ["message.created"])
    }

    @Test("a LID without its phone id and an empty message id (issue #2466): kept under the LID with an id derived from the record")
    func emptyIdAndBareLID() throws {
        let result = harness.adapt(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"13718@lid","fromMe":false,"id":""},"message":{"conversation":"oi"},"messageType":"conversation","messageTimestamp":1767366770}
            """#))
        let event = try #require(result.events.first?.event)
        #expect(event.chatId == "13718@lid")
        guard case .messageCreated(let message) = event.payload else {
            Issue.record("not a message: \(event)")
            return
        }
        #expect(message.messageId.hasPrefix("x-"), "the message still counts as unread")
        #expect(message.senderId == "13718@lid")
        #expect(harness.adapt(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"13718@lid","fromMe":false,"id":""},"message":{"conversation":"oi"},"messageType":"conversation","messageTimestamp":1767366770}
            """#)).events.first?.event == event, "and the same id when read again")
    }

    @Test("content types: wrappers unwrapped, every kind, previews from text, captions, names; unknown types still messages")
    func contentKinds() {
        func created(_ message: String, type: String) -> (MessageKind, String, Bool?)? {
            let events = harness.events(H.envelope("messages.upsert", #"""
                {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"K"},"message":\#(message),"messageType":"\#(type)","messageTimestamp":1767366770}
                """#))
            guard case .messageCreated(let created)? = events.last?.payload else { return nil }
            return (created.kind, created.preview, created.hasMedia)
        }
        #expect(created(#"{"ephemeralMessage":{"message":{"extendedTextMessage":{"text":"vanishing"}}}}"#, type: "ephemeralMessage")! == (.text, "vanishing", nil))
        #expect(created(#"{"viewOnceMessageV2":{"message":{"imageMessage":{"caption":"once"}}}}"#, type: "viewOnceMessageV2")! == (.image, "once", true))
        #expect(created(#"{"videoMessage":{"caption":"clip"},"base64":"AAAA"}"#, type: "videoMessage")! == (.video, "clip", true))
        #expect(created(#"{"ptvMessage":{}}"#, type: "ptvMessage")! == (.video, "", true))
        #expect(created(#"{"audioMessage":{"ptt":true,"seconds":4}}"#, type: "audioMessage")! == (.audio, "", true))
        #expect(created(#"{"documentMessage":{"fileName":"invoice.pdf"}}"#, type: "documentMessage")! == (.document, "invoice.pdf", true))
        #expect(created(#"{"stickerMessage":{}}"#, type: "stickerMessage")! == (.sticker, "", true))
        #expect(created(#"{"locationMessage":{"degreesLatitude":1,"name":"Café"}}"#, type: "locationMessage")! == (.location, "Café", nil))
        #expect(created(#"{"contactMessage":{"displayName":"Bea"}}"#, type: "contactMessage")! == (.contact, "Bea", nil))
        #expect(created(#"{"pollCreationMessageV3":{"name":"Pizza?","options":[]}}"#, type: "pollCreationMessageV3")! == (.text, "Pizza?", nil))
        #expect(created(#"{"callLogMesssage":{}}"#, type: "callLogMesssage")! == (.call, "", nil))
        #expect(created(#"{"messageContextInfo":{},"someFutureMessage":{"x":1}}"#, type: "someFutureMessage")! == (.text, "", nil))
        let long = String(repeating: "é", count: 3000)  // 6000 bytes
        let preview = created(#"{"conversation":"\#(long)"}"#, type: "conversation")!.1
        #expect(preview.utf8.count == 4096 && long.hasPrefix(preview), "cut to the 4096-byte limit at a character")
    }

    @Test("escapes and broken text: escapes decoded, a lone surrogate becomes U+FFFD instead of losing the message")
    func tolerantText() {
        let events = harness.events(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"K"},"message":{"conversation":"a\"b\\c\n\u00e9\ud83d\ude00 \ud83d"},"messageType":"conversation","messageTimestamp":1767366770}
            """#))
        guard case .messageCreated(let message)? = events.last?.payload else {
            Issue.record("no message")
            return
        }
        #expect(message.preview == "a\"b\\c\né😀 \u{FFFD}")
    }

    @Test("reactions are message.reaction (removal is an empty emoji); poll votes and protocol messages are no messages")
    func reactionsAndNonMessages() {
        let reaction = harness.events(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"R1"},
             "message":{"reactionMessage":{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"TARGET"},"text":"👍","senderTimestampMs":"1767366770123"}},
             "messageType":"reactionMessage","messageTimestamp":1767366770}
            """#))
        #expect(reaction.map(\.payload) == [.messageReaction(MessageReaction(targetMessageId: "TARGET", senderId: "491701234567@c.us", emoji: "👍"))])
        let own = harness.events(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"120363041234567890@g.us","fromMe":true,"id":"R2"},
             "message":{"reactionMessage":{"key":{"id":"TARGET"},"text":""}},"messageType":"reactionMessage","messageTimestamp":1767366770}
            """#))
        #expect(own.map(\.payload) == [.messageReaction(MessageReaction(targetMessageId: "TARGET", senderId: "558196349077@c.us", emoji: ""))],
                "own reaction in a group: the sender is the account (the envelope's sender)")
        let vote = harness.adapt(H.envelope("messages.upsert", #"""
            {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"P"},"message":{"pollUpdateMessage":{"vote":{}}},"messageType":"pollUpdateMessage","messageTimestamp":1767366770}
            """#))
        #expect(vote.events.isEmpty)
        #expect(vote.skipReasons == ["not_a_message"])
    }

    @Test("send.message (sent through Evolution's API) is the account's own message")
    func sendMessage() {
        let events = harness.events(H.envelope("send.message", #"""
            {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"3EB0S"},"pushName":"Você","status":"PENDING",
             "message":{"conversation":"sent by the bot"},"messageType":"conversation","messageTimestamp":1767366775}
            """#), topic: "evolution.sales.send.message")
        #expect(events.map(\.payload) == [.messageCreated(MessageCreated(
            messageId: "3EB0S", fromMe: true, kind: .text, preview: "sent by the bot", senderId: "558196349077@c.us"))])
    }

    @Test("messages.set (history): each message, and incoming ones already READ are read")
    func history() {
        let events = harness.events(H.envelope("messages.set", #"""
            [{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"H1"},"status":"READ","message":{"conversation":"old"},"messageType":"conversation","messageTimestamp":1767000000},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"H2"},"status":"DELIVERY_ACK","message":{"conversation":"unread"},"messageType":"conversation","messageTimestamp":1767000001}]
            """#), topic: "evolution.sales.messages.set")
        #expect(events.map(\.type) == ["message.created", "message.status", "message.created"])
        #expect(events[1].payload == .messageStatus(MessageStatus(messageIds: ["H1"], status: .read, selfDevice: true)))
        #expect(Set(events.map(\.eventId)).count == 3, "an index per event of the record")
    }

    @Test("messages.set newest first, as Baileys sorts history and Evolution publishes it: mapped oldest first, so the own reply reads the messages before it")
    func historyNewestFirst() throws {
        let events = harness.events(H.envelope("messages.set", #"""
            [{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"S3"},"status":"READ","message":{"conversation":"reply"},"messageType":"conversation","messageTimestamp":1767000003},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"S2"},"status":"DELIVERY_ACK","message":{"conversation":"two"},"messageType":"conversation","messageTimestamp":1767000002},
             {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"S1"},"status":"DELIVERY_ACK","message":{"conversation":"one"},"messageType":"conversation","messageTimestamp":1767000001}]
            """#), topic: "evolution.sales.messages.set")
        let created = events.compactMap { event -> String? in if case .messageCreated(let message) = event.payload { message.messageId } else { nil } }
        #expect(created == ["S1", "S2", "S3"], "oldest first")
        let list = try StageTesting.rendered(StageTesting.fold(events), devices: [events[0].deviceId], withVersion: false)[events[0].deviceId] ?? ""
        #expect(list.contains(#""unreadCount":0"#), "the reply read both: \(list)")
    }

    // MARK: - messages.update

    func update(_ data: String) -> AdaptedRecord {
        harness.adapt(H.envelope("messages.update", data), topic: "evolution.sales.messages.update")
    }

    @Test("messages.update: receipts of own messages follow the ack; an incoming one READ is read on the phone")
    func receipts() throws {
        let delivered = update(#"{"keyId":"3EB0A","remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"participant":null,"status":"DELIVERY_ACK","instanceId":"i"}"#)
        let event = try #require(delivered.events.first)
        #expect(event.event.payload == .messageStatus(MessageStatus(messageIds: ["3EB0A"], status: .delivered)))
        #expect(event.event.occurredAt == 1_763_771_104_000, "the envelope's timestamp (ms), not date_time")
        #expect(event.waitsFor == "3EB0A", "placed after the message it acts on")
        #expect(!event.chatIsGuess)
        let readOnPhone = update(#"{"keyId":"IN1","remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"status":"READ","instanceId":"i","messageId":"cmfy"}"#)
        #expect(readOnPhone.events.map(\.event.payload) == [.messageStatus(MessageStatus(messageIds: ["IN1"], status: .read, selfDevice: true))])
        let numeric = update(#"{"keyId":"3EB0A","remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"status":5}"#)
        #expect(numeric.events.map(\.event.payload) == [.messageStatus(MessageStatus(messageIds: ["3EB0A"], status: .played))])
        let incomingDelivery = update(#"{"keyId":"IN1","remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"status":"DELIVERY_ACK"}"#)
        #expect(incomingDelivery.events.isEmpty)
        #expect(incomingDelivery.skipReasons == ["receipt_without_effect"])
    }

    @Test("trap: status DELETED in messages.update (≤ 2.3.6, issue #2010's record) is not a delete")
    func deletedIsNotADelete() {
        let result = update(#"{"keyId":"A5561E44C2A63682E4295B52F484C14E","remoteJid":"200000000000@s.whatsapp.net","fromMe":false,"participant":"200000000000@s.whatsapp.net","status":"DELETED","instanceId":"abb8e7b9-7586-6462-95c4","messageId":"cmfyoow42000hov4xwkdug3lv"}"#)
        #expect(result.events.isEmpty)
        #expect(result.outcome == .mapped, "skipped and counted, not a dead letter")
        #expect(result.skipReasons == ["status_deleted_is_not_a_delete"])
    }

    @Test("messages.update with message.editedMessage (2.3.7+): message.edited with the new text, in the account's view")
    func editInUpdate() {
        let result = update(#"""
            {"keyId":"3EB0E","remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"status":"SERVER_ACK",
             "message":{"editedMessage":{"message":{"protocolMessage":{"key":{"id":"3EB0E"},"type":"MESSAGE_EDIT","editedMessage":{"conversation":"fixed typo"}}}}}}
            """#)
        #expect(result.events.map(\.event.payload) == [.messageEdited(MessageEdited(messageId: "3EB0E", preview: "fixed typo"))])
        #expect(result.events.first?.waitsFor == "3EB0E")
        let plain = update(#"{"keyId":"3EB0F","remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"status":"SERVER_ACK","message":{"editedMessage":{"message":{"extendedTextMessage":{"text":"new"}}}}}"#)
        #expect(plain.events.map(\.event.payload) == [.messageEdited(MessageEdited(messageId: "3EB0F", preview: "new"))])
    }

    @Test("messages.update under a LID: the chat is a guess the stage may replace with the message's own chat")
    func updateUnderLID() throws {
        let result = update(#"{"keyId":"IN2","remoteJid":"140913951141911@lid","fromMe":false,"status":"READ"}"#)
        let adapted = try #require(result.events.first)
        #expect(adapted.event.chatId == "140913951141911@lid")
        #expect(adapted.chatIsGuess && !adapted.dropIfUnresolved)
    }

    // MARK: - messages.delete, messages.edited

    @Test("trap: messages.delete comes in two shapes; both revoke the WhatsApp message id, never the database id")
    func bothDeleteShapes() {
        let shapeA = harness.events(H.envelope("messages.delete", #"{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"WA1","status":"DELETED"}"#), topic: "evolution.sales.messages.delete")
        #expect(shapeA.map(\.payload) == [.messageRevoked(MessageRevoked(messageId: "WA1", scope: .everyone))])
        #expect(shapeA.first?.chatId == "491701234567@c.us")
        let shapeB = harness.events(H.envelope("messages.delete", #"""
            {"id":"cmfyoow42000hov4xwkdug3lv","instanceId":"i","key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"WA2"},
             "messageType":"conversation","status":"DELETED","source":"web","messageTimestamp":1767366770,"pushName":"Você","participant":null,"message":{"conversation":"x"}}
            """#), topic: "evolution.sales.messages.delete")
        #expect(shapeB.map(\.payload) == [.messageRevoked(MessageRevoked(messageId: "WA2", scope: .everyone))])
        let withAlt = harness.events(H.envelope("messages.delete", #"{"remoteJid":"140913951141911@lid","remoteJidAlt":"491701234567@s.whatsapp.net","fromMe":false,"id":"WA3"}"#))
        #expect(withAlt.map(\.type) == ["contact.aliased", "message.revoked"])
        #expect(withAlt.last?.chatId == "491701234567@c.us")
    }

    @Test("trap: messages.edited keys are in the sender's view: a contact's edit names the account as remoteJid, so its chat must come from the message")
    func editedSenderPerspective() throws {
        let fromContact = harness.adapt(H.envelope("messages.edited", #"""
            {"key":{"remoteJid":"558196349077@s.whatsapp.net","fromMe":true,"id":"3EB0C"},"type":"MESSAGE_EDIT",
             "editedMessage":{"conversation":"corrected"},"timestampMs":"1767366770998"}
            """#), topic: "evolution.sales.messages.edited")
        let edit = try #require(fromContact.events.first)
        #expect(edit.event.payload == .messageEdited(MessageEdited(messageId: "3EB0C", preview: "corrected")))
        #expect(edit.event.occurredAt == 1_767_366_770_998, "timestampMs is already ms")
        #expect(edit.chatIsGuess && edit.dropIfUnresolved, "the account's own id is no chat")
        let own = harness.adapt(H.envelope("send.message.update", #"""
            {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"3EB0D"},"type":14,"editedMessage":{"extendedTextMessage":{"text":"mine"}}}
            """#), topic: "evolution.sales.send.message.update")
        #expect(own.events.first?.event.chatId == "491701234567@c.us")
        #expect(own.events.first?.dropIfUnresolved == false)
        #expect(!own.events.contains { $0.guessMayBeOwn }, "a phone id is never the account's LID")
        let byLid = try #require(harness.adapt(H.envelope("messages.edited", #"""
            {"key":{"remoteJid":"200000000002@lid","fromMe":true,"id":"A1"},"type":"MESSAGE_EDIT","editedMessage":{"conversation":"x"}}
            """#)).events.first)
        #expect(byLid.chatIsGuess && byLid.guessMayBeOwn, "a LID in the sender's view may be the account's own: no alias of the message's chat")
    }

    @Test("messages.edited type REVOKE is a revoke: Evolution publishes no messages.delete when its database lacks the original")
    func editedRevoke() throws {
        let revoke = harness.adapt(H.envelope("messages.edited", #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"X"},"type":"REVOKE"}"#))
        let event = try #require(revoke.events.first)
        #expect(event.event.payload == .messageRevoked(MessageRevoked(messageId: "X", scope: .everyone)))
        #expect(event.waitsFor == "X" && event.event.chatId == "491701234567@c.us")
        let other = harness.adapt(H.envelope("messages.edited", #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":true,"id":"Y"},"type":"HISTORY_SYNC_NOTIFICATION"}"#))
        #expect(other.events.isEmpty && other.skipReasons == ["protocol_message"])
    }

    // MARK: - Chats, groups, contacts

    @Test("chats.upsert names a chat; its unreadMessages never counts; the {id, name} variant and chats.update carry nothing")
    func chats() {
        let named = harness.events(H.envelope("chats.upsert", #"[{"remoteJid":"491701234567@s.whatsapp.net","instanceId":"i","name":"Ana","unreadMessages":7}]"#))
        #expect(named.map(\.payload) == [.chatUpdated(ChatUpdated(name: "Ana"))])
        let zeroed = harness.adapt(H.envelope("chats.upsert", #"[{"remoteJid":"491701234567@s.whatsapp.net","instanceId":"i","unreadMessages":0}]"#))
        #expect(zeroed.events.isEmpty)
        #expect(zeroed.skipReasons == ["no_chat_list_effect"])
        #expect(harness.events(H.envelope("chats.upsert", #"[{"id":"cmfy","name":"Ana"}]"#)).isEmpty)
        let stripped = harness.adapt(H.envelope("chats.update", #"[{"remoteJid":"491701234567@s.whatsapp.net","instanceId":"i"}]"#))
        #expect(stripped.events.isEmpty && stripped.skipReasons == ["stripped_by_evolution"])
        let deleted = harness.events(H.envelope("chats.delete", #"["491701234567@s.whatsapp.net","120363041234567890@g.us"]"#))
        #expect(deleted.map(\.payload) == [.chatDeleted, .chatDeleted])
        #expect(deleted.map(\.chatId) == ["491701234567@c.us", "120363041234567890@g.us"])
        #expect(Set(deleted.map(\.eventId)).count == 2)
    }

    @Test("groups.upsert names the group; group-participants.update with participantsData uses phone ids and records the pairs")
    func groups() {
        let upsert = harness.events(H.envelope("groups.upsert", #"""
            [{"id":"120363041234567890@g.us","subject":"Family","participants":[{"id":"140913951141911@lid","phoneNumber":"491701234567@s.whatsapp.net","admin":null}]}]
            """#))
        #expect(upsert.map(\.type) == ["contact.aliased", "chat.updated"])
        #expect(upsert.last?.payload == .chatUpdated(ChatUpdated(name: "Family", isGroup: true)))
        // In a phone-addressed group Baileys 7 gives the LID beside the phone id instead.
        let byPhone = harness.events(H.envelope("groups.upsert", #"""
            [{"id":"120363041234567891@g.us","subject":"Work","participants":[{"id":"491701234567@s.whatsapp.net","lid":"140913951141911@lid","admin":null}]}]
            """#))
        #expect(byPhone.first?.payload == .contactAliased(ContactAliased(alias: "140913951141911@lid")))
        #expect(byPhone.first?.chatId == "491701234567@c.us")
        let added = harness.events(H.envelope("group-participants.update", #"""
            {"id":"120363041234567890@g.us","author":"491709999999@s.whatsapp.net","participants":["140913951141911@lid","558196349077@s.whatsapp.net"],"action":"add",
             "participantsData":[{"jid":"140913951141911@lid","phoneNumber":"491701234567@s.whatsapp.net","name":"Ana"},{"jid":"558196349077@s.whatsapp.net","phoneNumber":"558196349077"}]}
            """#))
        #expect(added.map(\.type) == ["contact.aliased", "group.participants"])
        #expect(added.last?.payload == .groupParticipants(GroupParticipants(
            action: .add, participants: ["491701234567@c.us", "558196349077@c.us"], includesMe: true)))
        // The fallback phoneNumber is the LID's own digits: no pair to learn from it.
        let fallback = harness.events(H.envelope("group-participants.update", #"""
            {"id":"120363041234567890@g.us","participants":["13718@lid"],"action":"promote","participantsData":[{"jid":"13718@lid","phoneNumber":"13718"}]}
            """#))
        #expect(fallback.map(\.type) == ["group.participants"])
        let left = harness.events(H.envelope("group-participants.update", #"{"id":"120363041234567890@g.us","author":"491701234567@s.whatsapp.net","participants":[{"id":"491701234567@s.whatsapp.net"}],"action":"remove"}"#))
        #expect(left.last?.payload == .groupParticipants(GroupParticipants(action: .leave, participants: ["491701234567@c.us"], includesMe: false)),
                "removed by themselves: left")
        let modify = harness.adapt(H.envelope("group-participants.update", #"{"id":"120363041234567890@g.us","participants":["a@s.whatsapp.net"],"action":"modify"}"#))
        #expect(modify.events.isEmpty && modify.skipReasons == ["participant_action_modify"])
    }

    @Test("trap: contacts.update is an object or an array; either way nothing for the chat list, and no dead letter")
    func contactsUpdateShapes() {
        for data in [#"{"remoteJid":"491701234567@s.whatsapp.net","pushName":"Ana","instanceId":"i"}"#,
                     #"[{"remoteJid":"491701234567@s.whatsapp.net","pushName":"Ana"},{"remoteJid":"x@s.whatsapp.net"}]"#] {
            let result = harness.adapt(H.envelope("contacts.update", data), topic: "evolution.sales.contacts.update")
            #expect(result.outcome == .mapped)
            #expect(result.events.isEmpty && result.skipReasons == ["ignored_event"])
        }
        #expect(harness.adapt(H.envelope("presence.update", #"{"id":"x@s.whatsapp.net","presences":{}}"#)).skipReasons == ["ignored_event"])
    }

    @Test("unknown event names are skipped and counted, not dead letters")
    func unknownEvent() {
        let result = harness.adapt(H.envelope("labels.rainbow", #"{"x":1}"#))
        #expect(result.outcome == .mapped)
        #expect(result.events.isEmpty)
        #expect(result.skipReasons == ["unknown_event"])
        #expect(result.eventName == nil)
    }

    @Test("seconds and milliseconds: messageTimestamp in seconds, as a string, a Long or already in ms; the envelope's timestamp in ms")
    func secondsAndMilliseconds() {
        func time(_ stamp: String) -> Int64? {
            harness.events(H.envelope("messages.upsert", #"""
                {"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":false,"id":"T"},"message":{"conversation":"t"},"messageType":"conversation","messageTimestamp":\#(stamp)}
                """#)).last?.occurredAt
        }
        #expect(time("1767366770") == 1_767_366_770_000)
        #expect(time(#""1767366770""#) == 1_767_366_770_000)
        #expect(time("1767366770123") == 1_767_366_770_123)
        #expect(time(#"{"low":1767366770,"high":0,"unsigned":false}"#) == 1_767_366_770_000)
        #expect(time("null") == 1_763_771_104_000, "absent: the envelope's time")
        #expect(time("1.767366770e9") == 1_767_366_770_000)
    }

    // MARK: - Hostile records

    @Test("hostile records are dead letters with a code naming the problem, and never carry the secret")
    func hostile() {
        let key = #""apikey":"\#(H.secret)""#
        let cases: [(String, String)] = [
            ("this is not json, \(key) nor is this", "invalid_json"),
            (#"{"event":"messages.upsert",\#(key),"instance":"sales","data":{"key":"#, "invalid_json"),
            (#"[1,2,3]"#, "wrong_type"),
            (#"{\#(key),"data":{}}"#, "missing_field"),
            (#"{"event":"messages.upsert",\#(key),"data":{}}"#, "missing_field"),
            (#"{"event":"messages.upsert","instance":42,\#(key)}"#, "wrong_type"),
            (#"{"event":"messages.upsert","instance":"","data":{}}"#, "invalid_value"),
            (#"{"event":"messages.upsert","instance":"\#(String(repeating: "i", count: 129))","data":{}}"#, "invalid_value"),
            (H.envelope("messages.upsert", #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","fromMe":"yes","id":"X"},"message":{"conversation":"x"}}"#), "wrong_type"),
            (H.envelope("messages.upsert", #"{"key":{"fromMe":false,"id":"X"},"message":{"conversation":"x"}}"#), "missing_field"),
            (H.envelope("messages.upsert", #"{"key":{"remoteJid":"491701234567@s.whatsapp.net","id":"\#(String(repeating: "7", count: 200))"},"message":{"conversation":"x"}}"#), "invalid_value"),
            (H.envelope("messages.update", #""just a string""#), "wrong_type"),
            (H.envelope("messages.update", #"{"remoteJid":"x@s.whatsapp.net","status":"READ"}"#), "missing_field"),
            (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "too_deep"),
            ("", "invalid_json"),
        ]
        for (value, code) in cases {
            let result = harness.adapt(value)
            guard case .deadLetter(let actual, let detail) = result.outcome else {
                Issue.record("not a dead letter: \(value.prefix(80))")
                continue
            }
            #expect(actual == code, "\(value.prefix(80)): \(detail)")
            #expect(result.events.isEmpty)
            let letter = DeadLetter(format: "evolution", record: harness.record(value), reason: actual, detail: detail, secret: result.secret)
            let text = String(decoding: letter.encoded(), as: UTF8.self)
            #expect(!text.contains(H.secret), "no secret in the dead letter: \(text.prefix(300))")
            #expect(!detail.contains(H.secret) || SecretScrubber.scrub(detail, secret: result.secret) != detail)
        }
        let tombstone = harness.adapter.adapt(BridgeRecord(topic: "t", partition: 0, offset: 1, value: nil), tape: harness.tape)
        #expect(tombstone.outcome == .deadLetter(code: "invalid_json", detail: "a tombstone (no value)"))
        let small = EvolutionAdapter(maxRecordBytes: 1_000)
        let huge = small.adapt(harness.record(H.envelope("messages.upsert", #"{"pad":"\#(String(repeating: "x", count: 2_000))"}"#)), tape: harness.tape)
        #expect(huge.isDeadLetter)
        #expect(huge.secret == Array(H.secret.utf8), "the secret is found without parsing, to scrub it")
    }
}
