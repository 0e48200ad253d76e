import ChatEvents
import ChatProjection
import EventLog
import Testing

/// Seeded random streams over every event type, folded by the projection and by
/// `ReferenceFold` (which keeps every message); every chat field must agree after every
/// event. Busy chats pass 10,000 unread, snapshots count unread messages they do not name,
/// messages arrive late, events are redelivered, and reads name every kind of message.
@Suite("Exact unread counts against a fold that keeps every message")
struct ExactUnreadPropertyTests {
    @Test("random streams over every event type: every chat field equals the reference's after every event", arguments: Array(1...10) as [UInt64])
    func randomStreams(seed: UInt64) throws {
        var stream = RandomChatStream(seed: seed)
        try Self.check((0..<4_000).flatMap { _ in stream.next() })
    }

    @Test("a busy group with more than 10,000 unread messages stays exact through reads, receipts and revokes")
    func busyGroup() throws {
        var stream = RandomChatStream(seed: 99)
        var events = (0..<300).flatMap { _ in stream.next() }
        events += stream.burst(chat: RandomChatStream.busyGroup, count: 10_500)
        events += (0..<1_500).flatMap { _ in stream.next(busy: true) }
        try Self.check(events, compareEvery: { index in index < 300 || index > 10_800 || index % 1_000 == 0 })
    }

    /// Folds `events` both ways and compares the chat each event concerns after each one
    /// (when `compareEvery` says so), and every chat at the end.
    static func check(_ events: [Event], compareEvery: (Int) -> Bool = { _ in true }) throws {
        var state = ProjectionState(eventIdWindow: 1_000_000)
        var reference: [String: ReferenceFold] = [:]
        for (index, event) in events.enumerated() {
            state.apply(event, at: LogPosition(partition: 0, offset: Int64(index)))
            reference[event.deviceId, default: ReferenceFold()].apply(event)
            guard compareEvery(index) else { continue }
            let expected = reference[event.deviceId]!
            #expect(state.version(of: event.deviceId) == expected.version, "version after event \(index)")
            if let rawChatId = event.chatId {
                let chatId = expected.resolve(rawChatId)
                let actual = state.devices[event.deviceId]?.chat(rawChatId)?.chat
                let wanted = expected.chats[chatId]
                try #require((actual == nil) == (wanted == nil), "chat \(chatId) exists after event \(index) (\(event.payload.typeName))")
                if let actual, let wanted {
                    let differences = ReferenceFold.differences(wanted, actual)
                    try #require(differences.isEmpty, "\(chatId) after event \(index) (\(event.payload.typeName)): \(differences)")
                }
            }
        }
        for (deviceId, expected) in reference {
            let device = state.devices[deviceId]
            #expect(Set(device?.chats.map(\.id) ?? []) == Set(expected.chats.keys), "chats of \(deviceId)")
            for (chatId, wanted) in expected.chats {
                let actual = try #require(device?.chats[chatId])
                #expect(ReferenceFold.differences(wanted, actual).isEmpty, "\(chatId) at the end")
            }
        }
    }
}

/// Realistic, reproducible chat traffic for `ExactUnreadPropertyTests`, biased towards
/// what makes unread counts hard: late messages, reads naming every kind of message,
/// snapshots, redeliveries and re-sent messages.
struct RandomChatStream {
    static let busyGroup = "120363000000000009@g.us"
    static let chats = [
        "491701111111@c.us", "491702222222@c.us", "140913951141911@lid", "120363000000000001@g.us",
        "491703333333-1600000000@g.us", busyGroup, "120363025246125486@newsletter", "1700000000@broadcast",
        "status@broadcast",
    ]

    private var random: SeededGenerator
    private var clock: Int64 = 1_767_225_600_000
    private var sequence = 0
    /// Messages by the chat their events fold into (a contact's other id leads to it).
    private var messagesByChat: [String: [(id: String, time: Int64)]] = [:]
    private var aliasOf: [String: String] = [:]
    private var recent: [Event] = []

    init(seed: UInt64) {
        random = SeededGenerator(seed: seed)
    }

    private func resolved(_ chatId: String) -> String { aliasOf[chatId] ?? chatId }

    private mutating func roll(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
    private mutating func chance(_ percent: Int) -> Bool { roll(100) < percent }

    private mutating func event(_ chatId: String?, _ payload: EventPayload, at time: Int64? = nil, device: String = "dev-1") -> Event {
        sequence += 1
        let event = Event(eventId: "E\(sequence)", deviceId: device, occurredAt: time ?? clock, chatId: chatId, payload: payload)
        recent.append(event)
        if recent.count > 50 { recent.removeFirst() }
        return event
    }

    private mutating func newMessage(_ chatId: String, fromMe: Bool, late: Bool, kind: MessageKind = .text) -> Event {
        clock += Int64(roll(1_000))
        let time = late ? clock - Int64(1 + roll(20_000)) : clock
        sequence += 1
        let id = "3EB0\(String(sequence, radix: 16, uppercase: true))"
        messagesByChat[resolved(chatId), default: []].append((id, time))
        let message = MessageCreated(messageId: id, fromMe: fromMe, kind: kind, preview: "m\(sequence)", senderId: fromMe ? nil : chatId)
        return event(chatId, .messageCreated(message), at: time)
    }

    /// Some message of the chat: any kind (incoming, own, read, revoked, a snapshot's last).
    private mutating func someMessage(_ chatId: String) -> String {
        guard let known = messagesByChat[resolved(chatId)], !known.isEmpty else { return "NEVERSEEN\(roll(5))" }
        // Mostly recent ones, sometimes any.
        let index = chance(70) ? known.count - 1 - roll(min(known.count, 12)) : roll(known.count)
        return known[index].id
    }

    /// `count` incoming messages in one chat, in order.
    mutating func burst(chat: String, count: Int) -> [Event] {
        (0..<count).map { _ in newMessage(chat, fromMe: false, late: false) }
    }

    /// One or two events (a redelivery or a re-sent message come as an extra one).
    mutating func next(busy: Bool = false) -> [Event] {
        let chatId = busy && chance(60) ? Self.busyGroup : Self.chats[roll(Self.chats.count)]
        if chance(3), let again = recent.randomElement(using: &random) { return [again] }  // Kafka redelivery: same eventId
        clock += Int64(roll(200))
        let pick = roll(100)
        switch pick {
        case 0..<30:
            let kind: MessageKind = chance(8) ? .system : chance(20) ? .image : .text
            return [newMessage(chatId, fromMe: false, late: chance(15), kind: kind)]
        case 30..<37:
            return [newMessage(chatId, fromMe: true, late: chance(10))]
        case 37..<39:
            // The same message again under a new event id (same id, same time).
            guard let last = messagesByChat[resolved(chatId)]?.max(by: { $0.time < $1.time }) else { return [] }
            let message = MessageCreated(messageId: last.id, fromMe: false, kind: .text, preview: "again")
            return [event(chatId, .messageCreated(message), at: last.time)]
        case 39..<48:
            return [event(chatId, .chatRead(ChatRead(upToMessageId: someMessage(chatId))))]
        case 48..<50:
            return [event(chatId, .chatRead(ChatRead(upToMessageId: chance(50) ? nil : "NEVERSEEN")))]
        case 50..<57:
            let ids = (0..<(1 + roll(3))).map { _ in someMessage(chatId) }
            let status: AckStatus = [.read, .played, .delivered, .server, .error, .pending][roll(6)]
            return [event(chatId, .messageStatus(MessageStatus(messageIds: ids, status: status, selfDevice: chance(60) ? true : nil)))]
        case 57..<63:
            return [event(chatId, .messageRevoked(MessageRevoked(messageId: someMessage(chatId), scope: chance(50) ? .everyone : .me)))]
        case 63..<65:
            return [event(chatId, .messageEdited(MessageEdited(messageId: someMessage(chatId), preview: "edited \(sequence)")))]
        case 65..<67:
            return [event(chatId, .messageReaction(MessageReaction(targetMessageId: someMessage(chatId), senderId: chatId, emoji: "👍")))]
        case 67..<70:
            return [event(chatId, .chatMarkedUnread)]
        case 70..<73:
            return [event(chatId, .chatArchived(archived: chance(60)))]
        case 73..<76:
            return [event(chatId, .chatPinned(pinned: chance(60)))]
        case 76..<78:
            return [event(chatId, .chatMuted(muteUntil: [0, -1, clock + 60_000][roll(3)]))]
        case 78..<80:
            let update = ChatUpdated(name: chance(50) ? "Name \(sequence)" : nil, isGroup: chance(30) ? chance(50) : nil, readOnly: chance(20) ? chance(50) : nil)
            return [event(chatId, .chatUpdated(update))]
        case 80..<81:
            return [event(chatId, .chatCleared)]
        case 81..<82:
            messagesByChat[resolved(chatId)] = nil
            return [event(chatId, .chatDeleted)]
        case 82..<88:
            return [snapshot(chatId)]
        case 88..<90:
            let action: ParticipantAction = [.add, .remove, .leave, .promote, .demote][roll(5)]
            return [event(chatId, .groupParticipants(GroupParticipants(action: action, participants: [chatId], includesMe: chance(50))))]
        case 90..<92:
            return [event(nil, .accountSettings(keepChatsArchived: chance(50)))]
        case 92..<93:
            return [event(chatId, .unknown(type: "chat.labelled"))]
        case 93..<95:
            // The phone id and the LID of one contact turn out to be the same (or, rarely,
            // two other chats are declared one).
            let pair = chance(80) ? ("491701111111@c.us", "140913951141911@lid") : (Self.chats[roll(3)], Self.chats[roll(3)])
            let canonical = resolved(pair.0)
            if pair.1 != canonical {
                aliasOf[pair.1] = canonical
                for (other, target) in aliasOf where target == pair.1 { aliasOf[other] = canonical }
                messagesByChat[canonical, default: []] += messagesByChat.removeValue(forKey: pair.1) ?? []
            }
            return [event(pair.0, .contactAliased(ContactAliased(alias: pair.1)))]
        default:
            return [newMessage(chatId, fromMe: false, late: false)]
        }
    }

    private mutating func snapshot(_ chatId: String) -> Event {
        clock += Int64(roll(1_000))
        sequence += 1
        var last: SnapshotMessage?
        if chance(85) {
            let id = "SNAP\(sequence)"
            let fromMe = chance(25)
            last = SnapshotMessage(
                id: id, fromMe: fromMe, kind: chance(10) ? .system : .text, preview: "s\(sequence)", timestamp: clock - Int64(roll(5_000)),
                ack: fromMe ? .delivered : nil, revoked: chance(10) ? true : nil)
            messagesByChat[resolved(chatId)] = [(id, last!.timestamp)]
        } else {
            messagesByChat[resolved(chatId)] = []
        }
        let snapshot = ChatSnapshot(
            name: "Snap \(sequence)", isGroup: chance(50), unreadCount: Int64(chance(30) ? 0 : roll(6)), markedUnread: chance(15),
            archived: chance(20), pinned: chance(20), muteUntil: chance(80) ? 0 : -1, timestamp: clock, lastMessage: last)
        return event(chatId, .chatSnapshot(snapshot))
    }
}
