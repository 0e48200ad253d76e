import ChatEvents

/// Realistic Evolution API Kafka traffic, reproducible from a seed: the source of
/// `chatledger produce --simulate --format evolution`, of `run --demo --demo-format
/// evolution`, of `bench adapt` and of the end-to-end tests.
///
/// Several instances (one per device), each with 1:1 chats (some contacts addressed by
/// their LID) and groups (members with LIDs), publish on one topic per event
/// (`<prefix>.<instance>.<event>`, key the instance; or `<prefix>.global.<event>`, key
/// `<instance>-<event>`) what Evolution 2.3.x publishes: incoming and own messages of every
/// kind, messages sent through the API, receipts, reads on the phone, deletes in both
/// shapes, edits (2.3.7's `messages.update` and the sender-view `messages.edited`; some
/// instances behave as ≤ 2.3.6 and write `status: "DELETED"` for edits), reactions, poll
/// votes, group changes, chat names and deletes, and the noise around them (presence,
/// contacts as objects or arrays, stripped `chats.update`, `chats.upsert` with
/// `unreadMessages: 0` after receipts, status posts, unknown events). Every record carries
/// an `apikey`.
///
/// Each record comes with the canonical events it *means* (`Record.meaning`: chat ids in
/// the phone form, times as the adapter computes them), so a test can fold them into the
/// state the whole path must reach.
package struct EvolutionTraffic: Sendable {
    package struct Configuration: Sendable, Hashable {
        package var instances: Int
        package var chatsPerInstance: Int
        package var seed: UInt64
        /// Epoch ms of the first record.
        package var startTime: Int64
        /// Mean simulated milliseconds between two records (at least 1: times strictly increase).
        package var meanGapMilliseconds: Int64
        package var topicPrefix: String
        /// Publish on `<prefix>.global.<event>` instead of per-instance topics.
        package var global: Bool
        /// Share of 1:1 contacts WhatsApp addresses by LID (upserts carry the phone id,
        /// receipts and deletes the LID: only a stage that tracks messages joins them).
        package var lidShare: Double
        /// Share of records that are messages sent through Evolution's API (`send.message`).
        package var sendMessageShare: Double
        /// Share of records that delete a chat (`chats.delete`).
        package var chatDeleteShare: Double
        /// Share of instances behaving as Evolution ≤ 2.3.6 (edits as `status: "DELETED"`).
        package var legacyShare: Double
        /// Records that carry nothing for the chat list (presence, contacts, ...).
        package var noise: Bool

        package init(
            instances: Int = 3, chatsPerInstance: Int = 20, seed: UInt64 = 1, startTime: Int64 = 1_767_225_600_000,
            meanGapMilliseconds: Int64 = 400, topicPrefix: String = "evolution", global: Bool = false, lidShare: Double = 0.3,
            sendMessageShare: Double = 0.04, chatDeleteShare: Double = 0.003, legacyShare: Double = 0.3, noise: Bool = true
        ) {
            self.instances = max(1, instances)
            self.chatsPerInstance = max(2, chatsPerInstance)
            self.seed = seed
            self.startTime = startTime
            self.meanGapMilliseconds = max(1, meanGapMilliseconds)
            self.topicPrefix = topicPrefix
            self.global = global
            self.lidShare = lidShare
            self.sendMessageShare = sendMessageShare
            self.chatDeleteShare = chatDeleteShare
            self.legacyShare = legacyShare
            self.noise = noise
        }
    }

    /// One Kafka record as Evolution publishes it.
    package struct Record: Sendable {
        package var topic: String
        package var key: [UInt8]
        package var value: [UInt8]
        /// The envelope's `timestamp` (ms).
        package var timestamp: Int64
        /// The device (instance) it belongs to.
        package var deviceId: String
        /// The canonical events the record means, with placeholder ids.
        package var meaning: [Event]
    }

    /// The events Evolution publishes that the simulation uses (for topic creation).
    package static let eventNames = [
        "messages.upsert", "messages.update", "messages.delete", "messages.edited", "send.message", "chats.upsert",
        "chats.update", "chats.delete", "groups.upsert", "group-participants.update", "contacts.update", "presence.update",
        "connection.update",
    ]

    /// The secret every simulated record carries (`apikey`), for tests that look for it.
    package let apiKey: String

    private struct Member: Sendable {
        var phone: String  // digits
        var lid: String?  // digits
    }

    private struct Chat: Sendable {
        var id: String  // canonical: <digits>@c.us or <digits>@g.us
        var contact: Member?  // 1:1
        var members: [Member]  // groups
        var name: String
        var recentIncoming: [String] = []
        var recentOwn: [String] = []
        var deleted = false
        var isGroup: Bool { contact == nil }
    }

    private struct Instance: Sendable {
        var name: String
        var phone: String
        var legacy: Bool
        var chats: [Chat]
    }

    package let configuration: Configuration
    private var random: SeededGenerator
    private var instances: [Instance]
    private var clock: Int64
    private var sequence = 0
    private var pending: [Record] = []

    package init(_ configuration: Configuration) {
        self.configuration = configuration
        var random = SeededGenerator(seed: configuration.seed)
        func digits(_ prefix: String, _ count: Int) -> String {
            var text = prefix
            while text.count < count { text += String(random.next() % 10) }
            return text
        }
        var instances: [Instance] = []
        for index in 0..<configuration.instances {
            var chats: [Chat] = []
            for chatIndex in 0..<configuration.chatsPerInstance {
                if chatIndex % 5 == 4 {
                    let members = (0..<(3 + Int(random.next() % 6))).map { _ in
                        Member(phone: digits("55119", 13), lid: random.chance(0.5) ? digits("1409", 15) : nil)
                    }
                    chats.append(Chat(id: digits("120363", 18) + "@g.us", contact: nil, members: members, name: "Grupo \(chatIndex)"))
                } else {
                    let contact = Member(phone: digits("4917", 12), lid: random.chance(configuration.lidShare) ? digits("1409", 15) : nil)
                    chats.append(Chat(id: contact.phone + "@c.us", contact: contact, members: [], name: "Contato \(chatIndex)"))
                }
            }
            instances.append(Instance(
                name: "inst-\(index + 1)", phone: digits("5511", 13), legacy: random.chance(configuration.legacyShare), chats: chats))
        }
        self.random = random
        self.instances = instances
        self.clock = configuration.startTime
        self.apiKey = "B6D711FC-" + String(configuration.seed, radix: 16, uppercase: true) + "-4FD5-9365-44120E713976"
    }

    /// The topics the simulation publishes on (create them before producing: Evolution
    /// relies on the broker creating them).
    package var topics: [String] {
        if configuration.global { return Self.eventNames.map { "\(configuration.topicPrefix).global.\($0)" } }
        return instances.flatMap { instance in Self.eventNames.map { "\(configuration.topicPrefix).\(instance.name).\($0)" } }
    }

    /// The device ids (instance names).
    package var deviceIds: [String] { instances.map(\.name) }

    /// The next record.
    package mutating func next() -> Record {
        while pending.isEmpty { generate() }
        return pending.removeFirst()
    }

    // MARK: - Generation

    private mutating func generate() {
        let instanceIndex = Int(random.next() % UInt64(instances.count))
        if configuration.noise, random.chance(0.14) {
            noise(instanceIndex)
            return
        }
        var chatIndex = Int(random.next() % UInt64(instances[instanceIndex].chats.count))
        if random.chance(0.5) { chatIndex = chatIndex / 3 }  // some chats are busier
        let roll = Double(random.next() >> 11) * 0x1.0p-53
        var chat = instances[instanceIndex].chats[chatIndex]
        defer { instances[instanceIndex].chats[chatIndex] = chat }
        let send = configuration.sendMessageShare
        let delete = configuration.chatDeleteShare
        switch roll {
        case ..<0.42: incoming(instanceIndex, &chat)
        case ..<0.50: own(instanceIndex, &chat, throughAPI: false)
        case ..<(0.50 + send): own(instanceIndex, &chat, throughAPI: true)
        case ..<(0.63 + send): ack(instanceIndex, &chat)
        case ..<(0.68 + send): readOnPhone(instanceIndex, &chat)
        case ..<(0.70 + send): revoke(instanceIndex, &chat)
        case ..<(0.73 + send): edit(instanceIndex, &chat)
        case ..<(0.77 + send): reaction(instanceIndex, &chat)
        case ..<(0.78 + send): pollVote(instanceIndex, &chat)
        case ..<(0.80 + send): participants(instanceIndex, &chat)
        case ..<(0.82 + send): chatName(instanceIndex, &chat)
        case ..<(0.82 + send + delete): deleteChat(instanceIndex, &chat)
        default: incoming(instanceIndex, &chat)
        }
    }

    private mutating func tick() -> Int64 {
        clock += 1 + Int64(random.next() % UInt64(2 * configuration.meanGapMilliseconds))
        return clock
    }

    private mutating func messageId() -> String {
        sequence += 1
        var text = random.chance(0.5) ? "3EB0" : "BAE5"
        var value = random.next()
        for _ in 0..<16 {
            text.append(Character(Unicode.Scalar(UInt8(ascii: "0") + UInt8(value & 15) + (value & 15 >= 10 ? 7 : 0))))
            value >>= 4
        }
        return text
    }

    private static let phrases = [
        "Bom dia!", "ok", "chego em 10 min", "Você viu isso?", "kkkk 😂", "obrigado!", "pode me ligar?", "see you at 8",
        "ele disse \"talvez\"", "linha um\nlinha dois", "👍", "caminho C:\\temp", "reunião às 15:30", "feliz aniversário 🎉🎂",
        "ñandú ¿dónde?", "こんにちは",
    ]

    private mutating func phrase() -> String { Self.phrases[Int(random.next() % UInt64(Self.phrases.count))] }

    private func topic(_ instance: Instance, _ event: String) -> String {
        configuration.global ? "\(configuration.topicPrefix).global.\(event)" : "\(configuration.topicPrefix).\(instance.name).\(event)"
    }

    private mutating func publish(_ instanceIndex: Int, _ event: String, _ data: String, meaning: [Event] = [], at time: Int64? = nil) {
        let instance = instances[instanceIndex]
        let timestamp = time ?? tick()
        var value = #"{"event":"\#(event)","instance":"\#(instance.name)","data":\#(data),"#
        value += #""server_url":"http://evolution:8080","date_time":"2026-01-01T00:00:00.000Z","#
        value += #""sender":"\#(instance.phone)@s.whatsapp.net","apikey":"\#(apiKey)","timestamp":\#(timestamp)}"#
        pending.append(Record(
            topic: topic(instance, event), key: Array((configuration.global ? "\(instance.name)-\(event)" : instance.name).utf8),
            value: Array(value.utf8), timestamp: timestamp, deviceId: instance.name, meaning: meaning))
    }

    private func meaning(_ instanceIndex: Int, _ chatId: String, _ time: Int64, _ payload: EventPayload) -> Event {
        Event(eventId: "meaning", deviceId: instances[instanceIndex].name, occurredAt: time, chatId: chatId, payload: payload)
    }

    private static func json(_ text: String) -> String {
        var writer = JSONWriter()
        writer.string(text)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    // MARK: - Messages

    private mutating func content() -> (json: String, type: String, kind: MessageKind, preview: String, media: Bool) {
        let roll = random.next() % 100
        let text = phrase()
        switch roll {
        case ..<62: return (#"{"conversation":\#(Self.json(text)),"messageContextInfo":{"deviceListMetadata":{}}}"#, "conversation", .text, text, false)
        case ..<66: return (#"{"ephemeralMessage":{"message":{"extendedTextMessage":{"text":\#(Self.json(text))}}}}"#, "ephemeralMessage", .text, text, false)
        case ..<78: return (#"{"imageMessage":{"url":"https://mmg.whatsapp.net/v/t62","mimetype":"image/jpeg","caption":\#(Self.json(text)),"jpegThumbnail":"/9j/4AAQSkZJRgABAQAAAQABAAD"}}"#, "imageMessage", .image, text, true)
        case ..<82: return (#"{"videoMessage":{"mimetype":"video/mp4","seconds":12}}"#, "videoMessage", .video, "", true)
        case ..<89: return (#"{"audioMessage":{"mimetype":"audio/ogg; codecs=opus","ptt":true,"seconds":7}}"#, "audioMessage", .audio, "", true)
        case ..<92: return (#"{"documentMessage":{"fileName":"boleto.pdf","mimetype":"application/pdf"}}"#, "documentMessage", .document, "boleto.pdf", true)
        case ..<95: return (#"{"stickerMessage":{"mimetype":"image/webp"}}"#, "stickerMessage", .sticker, "", true)
        case ..<97: return (#"{"locationMessage":{"degreesLatitude":-23.55,"degreesLongitude":-46.63,"name":"Padaria"}}"#, "locationMessage", .location, "Padaria", false)
        case ..<98: return (#"{"contactMessage":{"displayName":"Bia","vcard":"BEGIN:VCARD"}}"#, "contactMessage", .contact, "Bia", false)
        default: return (#"{"pollCreationMessageV3":{"name":"Pizza hoje?","options":[{"optionName":"sim"}]}}"#, "pollCreationMessageV3", .text, "Pizza hoje?", false)
        }
    }

    private mutating func incoming(_ instanceIndex: Int, _ chat: inout Chat) {
        let id = messageId()
        let time = tick()
        let seconds = time / 1000
        let body = content()
        var key: String
        var sender: String
        if let contact = chat.contact {
            sender = chat.id
            if let lid = contact.lid {
                // Before 2.3.7 the LID stays with its phone id beside it; 2.3.7 rewrites remoteJid.
                key = instances[instanceIndex].legacy
                    ? #"{"remoteJid":"\#(lid)@lid","remoteJidAlt":"\#(contact.phone)@s.whatsapp.net","fromMe":false,"id":"\#(id)","addressingMode":"lid"}"#
                    : #"{"remoteJid":"\#(contact.phone)@s.whatsapp.net","remoteJidAlt":"\#(contact.phone)@s.whatsapp.net","fromMe":false,"id":"\#(id)","addressingMode":"lid"}"#
            } else {
                key = #"{"remoteJid":"\#(contact.phone)@s.whatsapp.net","fromMe":false,"id":"\#(id)"}"#
            }
        } else {
            let member = chat.members[Int(random.next() % UInt64(chat.members.count))]
            sender = member.phone + "@c.us"
            if let lid = member.lid {
                key = #"{"remoteJid":"\#(groupJid(chat))","fromMe":false,"id":"\#(id)","participant":"\#(lid)@lid","participantAlt":"\#(member.phone)@s.whatsapp.net","addressingMode":"lid"}"#
            } else {
                key = #"{"remoteJid":"\#(groupJid(chat))","fromMe":false,"id":"\#(id)","participant":"\#(member.phone)@s.whatsapp.net"}"#
            }
        }
        let statusPost = random.chance(0.02)
        let chatId = statusPost ? "status@broadcast" : chat.id
        if statusPost {
            key = #"{"remoteJid":"status@broadcast","fromMe":false,"id":"\#(id)","participant":"\#(sender.replacingOccurrences(of: "@c.us", with: "@s.whatsapp.net"))"}"#
        } else {
            remember(id, &chat.recentIncoming)
            chat.deleted = false
        }
        let timestampJSON = random.chance(0.1) ? #""\#(seconds)""# : String(seconds)
        let data = #"{"key":\#(key),"pushName":"Ana","status":"DELIVERY_ACK","message":\#(body.json),"contextInfo":null,"messageType":"\#(body.type)","messageTimestamp":\#(timestampJSON),"instanceId":"0b3f8f4e","source":"android"}"#
        publish(instanceIndex, "messages.upsert", data, meaning: [meaning(instanceIndex, chatId, seconds * 1000, .messageCreated(MessageCreated(
            messageId: id, fromMe: false, kind: body.kind, preview: body.preview, senderId: sender, hasMedia: body.media ? true : nil)))], at: time)
    }

    private func groupJid(_ chat: Chat) -> String { chat.id }

    private mutating func own(_ instanceIndex: Int, _ chat: inout Chat, throughAPI: Bool) {
        let id = messageId()
        let time = tick()
        let seconds = time / 1000
        let body = content()
        let remote = chat.isGroup ? chat.id : (chat.contact!.phone + "@s.whatsapp.net")
        remember(id, &chat.recentOwn)
        chat.recentIncoming.removeAll()
        chat.deleted = false
        let status = throughAPI ? "PENDING" : "SERVER_ACK"
        let data = #"{"key":{"remoteJid":"\#(remote)","fromMe":true,"id":"\#(id)"},"pushName":"Você","status":"\#(status)","message":\#(body.json),"messageType":"\#(body.type)","messageTimestamp":\#(seconds),"instanceId":"0b3f8f4e","source":"\#(throughAPI ? "unknown" : "ios")"}"#
        // A message typed on the phone is SERVER_ACK already: its status.
        let acked = throughAPI ? [] : [meaning(instanceIndex, chat.id, seconds * 1000, .messageStatus(MessageStatus(messageIds: [id], status: .server)))]
        publish(instanceIndex, throughAPI ? "send.message" : "messages.upsert", data, meaning: [meaning(instanceIndex, chat.id, seconds * 1000, .messageCreated(MessageCreated(
            messageId: id, fromMe: true, kind: body.kind, preview: body.preview, senderId: instances[instanceIndex].phone + "@c.us",
            hasMedia: body.media ? true : nil)))] + acked, at: time)
    }

    /// The id a receipt or delete names the chat by: Evolution passes the raw key, so a
    /// LID contact's chat is named by the LID there.
    private func rawChatJid(_ chat: Chat) -> String {
        if let contact = chat.contact {
            return contact.lid.map { $0 + "@lid" } ?? (contact.phone + "@s.whatsapp.net")
        }
        return chat.id
    }

    private mutating func ack(_ instanceIndex: Int, _ chat: inout Chat) {
        guard let id = chat.recentOwn.last else { return incoming(instanceIndex, &chat) }
        let statuses: [(String, AckStatus)] = [("SERVER_ACK", .server), ("DELIVERY_ACK", .delivered), ("READ", .read)]
        let (name, status) = statuses[Int(random.next() % 3)]
        let time = tick()
        let participant = chat.isGroup ? #""\#(chat.members[0].phone)@s.whatsapp.net""# : "null"
        let data = #"{"keyId":"\#(id)","remoteJid":"\#(rawChatJid(chat))","fromMe":true,"participant":\#(participant),"status":"\#(name)","instanceId":"0b3f8f4e","messageId":"cm\#(id.lowercased())"}"#
        publish(instanceIndex, "messages.update", data, meaning: [meaning(instanceIndex, chat.id, time, .messageStatus(MessageStatus(messageIds: [id], status: status)))], at: time)
        if configuration.noise, random.chance(0.5) {
            // Evolution follows a receipt with a chats.upsert that zeroes its unread count: never trusted.
            publish(instanceIndex, "chats.upsert", #"[{"remoteJid":"\#(rawChatJid(chat))","instanceId":"0b3f8f4e","unreadMessages":0}]"#)
        }
    }

    private mutating func readOnPhone(_ instanceIndex: Int, _ chat: inout Chat) {
        // Evolution publishes read-on-phone receipts for 1:1 chats only.
        guard !chat.isGroup, let id = chat.recentIncoming.last else { return incoming(instanceIndex, &chat) }
        let time = tick()
        chat.recentIncoming.removeAll()
        let data = #"{"keyId":"\#(id)","remoteJid":"\#(rawChatJid(chat))","fromMe":false,"participant":null,"status":"READ","instanceId":"0b3f8f4e"}"#
        publish(instanceIndex, "messages.update", data, meaning: [meaning(instanceIndex, chat.id, time, .messageStatus(MessageStatus(messageIds: [id], status: .read, selfDevice: true)))], at: time)
    }

    private mutating func revoke(_ instanceIndex: Int, _ chat: inout Chat) {
        guard let id = chat.recentIncoming.popLast() ?? chat.recentOwn.last else { return incoming(instanceIndex, &chat) }
        let time = tick()
        let data: String
        if random.chance(0.2) {
            // Deleted through Evolution's API: the database id in `id`, the key nested.
            data = #"{"id":"cm\#(id.lowercased())","instanceId":"0b3f8f4e","key":{"remoteJid":"\#(rawChatJid(chat))","fromMe":false,"id":"\#(id)"},"messageType":"conversation","status":"DELETED","source":"android","messageTimestamp":\#(time / 1000),"pushName":"Ana","participant":null,"message":{"conversation":"x"}}"#
        } else if let lid = chat.contact?.lid, let phone = chat.contact?.phone, random.chance(0.5) {
            data = #"{"remoteJid":"\#(lid)@lid","remoteJidAlt":"\#(phone)@s.whatsapp.net","fromMe":false,"id":"\#(id)","status":"DELETED"}"#
        } else {
            data = #"{"remoteJid":"\#(rawChatJid(chat))","fromMe":false,"id":"\#(id)","status":"DELETED"}"#
        }
        publish(instanceIndex, "messages.delete", data, meaning: [meaning(instanceIndex, chat.id, time, .messageRevoked(MessageRevoked(messageId: id, scope: .everyone)))], at: time)
    }

    private mutating func edit(_ instanceIndex: Int, _ chat: inout Chat) {
        let mine = random.chance(0.4)
        guard let id = mine ? chat.recentOwn.last : chat.recentIncoming.last else { return incoming(instanceIndex, &chat) }
        let text = phrase() + " (editado)"
        let time = tick()
        let instance = instances[instanceIndex]
        let meaningEvent = meaning(instanceIndex, chat.id, time, .messageEdited(MessageEdited(messageId: id, preview: text)))
        // The protocol message, key in the sender's view: a contact's edit names the account.
        let senderView = mine ? (chat.isGroup ? chat.id : chat.contact!.phone + "@s.whatsapp.net") : (chat.isGroup ? chat.id : instance.phone + "@s.whatsapp.net")
        let protocolMessage = #"{"key":{"remoteJid":"\#(senderView)","fromMe":true,"id":"\#(id)"},"type":"MESSAGE_EDIT","editedMessage":{"conversation":\#(Self.json(text))},"timestampMs":"\#(time)"}"#
        if instance.legacy {
            // ≤ 2.3.6: the update says DELETED (not a delete) and carries no text.
            publish(instanceIndex, "messages.update", #"{"keyId":"\#(id)","remoteJid":"\#(rawChatJid(chat))","fromMe":\#(mine),"participant":null,"status":"DELETED","instanceId":"0b3f8f4e"}"#)
            publish(instanceIndex, "messages.edited", protocolMessage, meaning: [meaningEvent], at: time)
        } else {
            publish(instanceIndex, "messages.edited", protocolMessage, meaning: [meaningEvent], at: time)
            publish(instanceIndex, "messages.update", #"{"keyId":"\#(id)","remoteJid":"\#(rawChatJid(chat))","fromMe":\#(mine),"participant":null,"status":"SERVER_ACK","instanceId":"0b3f8f4e","message":{"editedMessage":{"message":{"protocolMessage":{"key":{"id":"\#(id)"},"type":"MESSAGE_EDIT","editedMessage":{"conversation":\#(Self.json(text))}}}}}}"#, meaning: [meaningEvent])
        }
    }

    private mutating func reaction(_ instanceIndex: Int, _ chat: inout Chat) {
        guard let target = (chat.recentIncoming + chat.recentOwn).randomElement(using: &random) else { return incoming(instanceIndex, &chat) }
        let emoji = ["👍", "❤️", "😂", "🙏", ""][Int(random.next() % 5)]
        let time = tick()
        let id = messageId()
        let (key, sender): (String, String)
        if let contact = chat.contact {
            key = #"{"remoteJid":"\#(contact.phone)@s.whatsapp.net","fromMe":false,"id":"\#(id)"}"#
            sender = chat.id
        } else {
            let member = chat.members[0]
            key = #"{"remoteJid":"\#(chat.id)","fromMe":false,"id":"\#(id)","participant":"\#(member.phone)@s.whatsapp.net"}"#
            sender = member.phone + "@c.us"
        }
        let data = #"{"key":\#(key),"pushName":"Ana","status":"DELIVERY_ACK","message":{"reactionMessage":{"key":{"remoteJid":"\#(chat.id)","fromMe":true,"id":"\#(target)"},"text":"\#(emoji)","senderTimestampMs":"\#(time)"}},"messageType":"reactionMessage","messageTimestamp":\#(time / 1000),"instanceId":"0b3f8f4e","source":"android"}"#
        publish(instanceIndex, "messages.upsert", data, meaning: [meaning(instanceIndex, chat.id, time / 1000 * 1000, .messageReaction(MessageReaction(targetMessageId: target, senderId: sender, emoji: emoji)))], at: time)
    }

    private mutating func pollVote(_ instanceIndex: Int, _ chat: inout Chat) {
        let remote = chat.contact.map { $0.phone + "@s.whatsapp.net" } ?? chat.id
        let data = #"{"key":{"remoteJid":"\#(remote)","fromMe":false,"id":"\#(messageId())"},"message":{"pollUpdateMessage":{"pollCreationMessageKey":{"id":"X"},"vote":{"selectedOptions":["sim"]}}},"messageType":"pollUpdateMessage","messageTimestamp":\#(clock / 1000),"instanceId":"0b3f8f4e"}"#
        publish(instanceIndex, "messages.upsert", data)
    }

    private mutating func participants(_ instanceIndex: Int, _ chat: inout Chat) {
        guard chat.isGroup else { return chatName(instanceIndex, &chat) }
        let member = chat.members[Int(random.next() % UInt64(chat.members.count))]
        let actions: [(String, ParticipantAction)] = [("add", .add), ("remove", .remove), ("promote", .promote), ("demote", .demote)]
        let (name, action) = actions[Int(random.next() % 4)]
        let time = tick()
        let raw = member.lid.map { $0 + "@lid" } ?? member.phone + "@s.whatsapp.net"
        let data = #"{"id":"\#(chat.id)","author":"\#(instances[instanceIndex].phone)@s.whatsapp.net","participants":["\#(raw)"],"action":"\#(name)","participantsData":[{"jid":"\#(raw)","phoneNumber":"\#(member.phone)@s.whatsapp.net","name":"Ana"}]}"#
        publish(instanceIndex, "group-participants.update", data, meaning: [meaning(instanceIndex, chat.id, time, .groupParticipants(GroupParticipants(
            action: action, participants: [member.phone + "@c.us"], includesMe: false)))], at: time)
    }

    private mutating func chatName(_ instanceIndex: Int, _ chat: inout Chat) {
        let time = tick()
        if chat.isGroup {
            let data = #"[{"id":"\#(chat.id)","subject":\#(Self.json(chat.name)),"creation":1700000000,"participants":[]}]"#
            publish(instanceIndex, "groups.upsert", data, meaning: [meaning(instanceIndex, chat.id, time, .chatUpdated(ChatUpdated(name: chat.name, isGroup: true)))], at: time)
        } else {
            let data = #"[{"remoteJid":"\#(chat.contact!.phone)@s.whatsapp.net","instanceId":"0b3f8f4e","name":\#(Self.json(chat.name)),"unreadMessages":\#(random.next() % 9)}]"#
            publish(instanceIndex, "chats.upsert", data, meaning: [meaning(instanceIndex, chat.id, time, .chatUpdated(ChatUpdated(name: chat.name)))], at: time)
        }
    }

    private mutating func deleteChat(_ instanceIndex: Int, _ chat: inout Chat) {
        let time = tick()
        chat.recentIncoming.removeAll()
        chat.recentOwn.removeAll()
        chat.deleted = true
        let raw = chat.contact.map { $0.phone + "@s.whatsapp.net" } ?? chat.id
        publish(instanceIndex, "chats.delete", #"["\#(raw)"]"#, meaning: [meaning(instanceIndex, chat.id, time, .chatDeleted)], at: time)
    }

    private mutating func noise(_ instanceIndex: Int) {
        let chat = instances[instanceIndex].chats[Int(random.next() % UInt64(instances[instanceIndex].chats.count))]
        let remote = chat.contact.map { $0.phone + "@s.whatsapp.net" } ?? chat.id
        switch random.next() % 6 {
        case 0, 1:
            publish(instanceIndex, "presence.update", #"{"id":"\#(remote)","presences":{"\#(remote)":{"lastKnownPresence":"composing"}}}"#)
        case 2:
            publish(instanceIndex, "contacts.update", #"{"remoteJid":"\#(remote)","pushName":"Ana","profilePicUrl":null,"instanceId":"0b3f8f4e"}"#)
        case 3:
            publish(instanceIndex, "contacts.update", #"[{"remoteJid":"\#(remote)","pushName":"Ana","instanceId":"0b3f8f4e"}]"#)
        case 4:
            publish(instanceIndex, "chats.update", #"[{"remoteJid":"\#(remote)","instanceId":"0b3f8f4e"}]"#)
        default:
            publish(instanceIndex, random.chance(0.5) ? "connection.update" : "presence.update", #"{"instance":"\#(instances[instanceIndex].name)","state":"open","statusReason":200}"#)
        }
    }

    private func remember(_ id: String, _ list: inout [String]) {
        list.append(id)
        if list.count > 8 { list.removeFirst() }
    }
}
