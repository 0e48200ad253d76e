/// A reproducible model of what WhatsApp bridges publish: the source of
/// `chatledger produce --simulate`, of demo traffic and of generated test and bench data.
///
/// Each device has `chatsPerDevice` chats whose activity follows a Zipf law (most chats
/// quiet, a few busy). The mix: incoming and own messages, receipts for own messages,
/// reads on the phone, `chat.read`, edits, revokes, reactions, archive/pin/mute, group
/// membership, metadata, history-sync snapshots, the odd `status@broadcast` post and a
/// small share of redelivered duplicates (same `eventId`, same bytes). Events refer to
/// messages that exist, so projections see realistic sequences. Time is simulated from
/// `startTime`, so the same configuration always yields the same events.
package struct TrafficModel: Sendable {
    /// What to simulate.
    package struct Configuration: Sendable, Hashable {
        package var devices: Int
        package var chatsPerDevice: Int
        package var seed: UInt64
        /// Epoch ms of the first event.
        package var startTime: Int64
        /// Mean simulated milliseconds between two events.
        package var meanGapMilliseconds: Int64
        /// Share of events that are redeliveries of a recent event.
        package var duplicateRate: Double

        /// Creates a configuration; `startTime` defaults to 2026-01-01T00:00:00Z.
        package init(
            devices: Int = 10, chatsPerDevice: Int = 50, seed: UInt64 = 1,
            startTime: Int64 = 1_767_225_600_000, meanGapMilliseconds: Int64 = 250, duplicateRate: Double = 0.005
        ) {
            self.devices = max(1, devices)
            self.chatsPerDevice = max(1, chatsPerDevice)
            self.seed = seed
            self.startTime = startTime
            self.meanGapMilliseconds = max(1, meanGapMilliseconds)
            self.duplicateRate = duplicateRate
        }
    }

    /// One generated event.
    package struct Generated: Sendable {
        package var event: Event
        /// `true` when this is a redelivery of an event generated before.
        package var isDuplicate: Bool
    }

    private struct SimulatedChat: Sendable {
        var chatId: String
        var isGroup: Bool
        var members: [String]
        var recentIncoming: [String] = []
        var recentOwn: [String] = []
        var archived = false
        var pinned = false
        var muted = false
        var left = false
    }

    private struct SimulatedDevice: Sendable {
        var deviceId: String
        var chats: [SimulatedChat]
        var keepChatsArchived = false
    }

    package let configuration: Configuration
    private var random: SeededGenerator
    private var devices: [SimulatedDevice]
    private var cumulativeChatWeights: [Double]
    private var clock: Int64
    private var sequence: UInt64 = 0
    private var recentEvents: [Event] = []

    /// Creates the model; nothing is generated until `next()`.
    package init(_ configuration: Configuration) {
        self.configuration = configuration
        var random = SeededGenerator(seed: configuration.seed)
        var devices: [SimulatedDevice] = []
        for deviceIndex in 0..<configuration.devices {
            var chats: [SimulatedChat] = []
            for _ in 0..<configuration.chatsPerDevice {
                let isGroup = random.chance(0.2)
                let chatId =
                    isGroup
                    ? "120363\(random.next() % 1_000_000_000_000)@g.us"
                    : "49\(150 + random.next() % 30)\(1_000_000 + random.next() % 9_000_000)@c.us"
                let memberCount = isGroup ? 3 + Int(random.next() % 12) : 1
                let members = (0..<memberCount).map { _ in "49\(150 + random.next() % 30)\(1_000_000 + random.next() % 9_000_000)@c.us" }
                chats.append(SimulatedChat(chatId: chatId, isGroup: isGroup, members: isGroup ? members : [chatId]))
            }
            devices.append(SimulatedDevice(deviceId: "dev-\(deviceIndex + 1)", chats: chats))
        }
        var total = 0.0
        var cumulative: [Double] = []
        for rank in 0..<configuration.chatsPerDevice {
            total += 1.0 / Double(rank + 1) * 1.0 / Double(rank + 1).squareRoot()  // Zipf, s = 1.5
            cumulative.append(total)
        }
        self.cumulativeChatWeights = cumulative.map { $0 / total }
        self.random = random
        self.devices = devices
        self.clock = configuration.startTime
    }

    /// A history sync of one device (0-based `deviceIndex`): a `chat.snapshot` of each of
    /// its chats, as a bridge publishes when the device connects. Fills a projection with
    /// every chat `next()` will touch afterwards.
    package mutating func historySync(deviceIndex: Int) -> [Event] {
        guard devices.indices.contains(deviceIndex) else { return [] }
        return devices[deviceIndex].chats.indices.map { chatIndex in
            clock += 1
            return makeEvent(deviceIndex, chatId: devices[deviceIndex].chats[chatIndex].chatId, snapshot(devices[deviceIndex].chats[chatIndex]))
        }
    }

    /// The next event.
    package mutating func next() -> Generated {
        if !recentEvents.isEmpty, random.chance(configuration.duplicateRate) {
            let event = recentEvents[Int(random.next() % UInt64(recentEvents.count))]
            return Generated(event: event, isDuplicate: true)
        }
        clock += Int64(random.next() % UInt64(2 * configuration.meanGapMilliseconds + 1))
        let deviceIndex = Int(random.next() % UInt64(devices.count))
        let event: Event
        if random.chance(0.01) {
            event = statusBroadcast(deviceIndex)
        } else if random.chance(0.002) {
            devices[deviceIndex].keepChatsArchived.toggle()
            event = makeEvent(
                deviceIndex, chatId: nil,
                .accountSettings(keepChatsArchived: devices[deviceIndex].keepChatsArchived))
        } else {
            event = chatEvent(deviceIndex, chatIndex: pickChat())
        }
        if recentEvents.count < 64 {
            recentEvents.append(event)
        } else {
            recentEvents[Int(sequence % 64)] = event
        }
        return Generated(event: event, isDuplicate: false)
    }

    // MARK: - Choices

    private mutating func pickChat() -> Int {
        let draw = Double(random.next() >> 11) * 0x1.0p-53
        var low = 0
        var high = cumulativeChatWeights.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulativeChatWeights[middle] < draw { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private mutating func chatEvent(_ deviceIndex: Int, chatIndex: Int) -> Event {
        var chat = devices[deviceIndex].chats[chatIndex]
        defer { devices[deviceIndex].chats[chatIndex] = chat }
        let roll = Double(random.next() >> 11) * 0x1.0p-53
        let payload: EventPayload
        switch roll {
        case ..<0.46:
            payload = incomingMessage(&chat)
        case ..<0.58:
            payload = ownMessage(&chat)
        case ..<0.68:
            if let own = chat.recentOwn.last {
                let statuses: [AckStatus] = [.server, .delivered, .read, .played]
                payload = .messageStatus(MessageStatus(messageIds: [own], status: statuses[Int(random.next() % 3)]))
            } else {
                payload = incomingMessage(&chat)
            }
        case ..<0.75:
            let upTo = chat.recentIncoming.count > 1 && random.chance(0.3) ? chat.recentIncoming.dropLast().last : nil
            payload = .chatRead(ChatRead(upToMessageId: upTo))
        case ..<0.79:
            if let incoming = chat.recentIncoming.last {
                payload = .messageStatus(MessageStatus(messageIds: [incoming], status: .read, selfDevice: true))
            } else {
                payload = .chatRead(ChatRead())
            }
        case ..<0.83:
            let target = (chat.recentIncoming + chat.recentOwn).randomElement(using: &random) ?? messageId()
            let emojis = ["👍", "❤️", "😂", "😮", "🙏", ""]
            payload = .messageReaction(
                MessageReaction(
                    targetMessageId: target, senderId: chat.members.randomElement(using: &random) ?? chat.chatId,
                    emoji: emojis.randomElement(using: &random) ?? ""))
        case ..<0.86:
            let target = chat.recentOwn.last ?? chat.recentIncoming.last ?? messageId()
            payload = .messageEdited(MessageEdited(messageId: target, preview: preview() + " (edited)"))
        case ..<0.88:
            let target = chat.recentIncoming.last ?? chat.recentOwn.last ?? messageId()
            payload = .messageRevoked(MessageRevoked(messageId: target, scope: random.chance(0.8) ? .everyone : .me))
        case ..<0.90:
            chat.archived.toggle()
            payload = .chatArchived(archived: chat.archived)
        case ..<0.92:
            chat.pinned.toggle()
            payload = .chatPinned(pinned: chat.pinned)
        case ..<0.94:
            chat.muted.toggle()
            let until: Int64 = random.chance(0.3) ? -1 : clock + 8 * 3_600_000
            payload = .chatMuted(muteUntil: chat.muted ? until : 0)
        case ..<0.95:
            payload = .chatMarkedUnread
        case ..<0.96:
            payload = .chatUpdated(
                ChatUpdated(name: chatName(chat), isGroup: chat.isGroup, readOnly: chat.isGroup ? chat.left : nil))
        case ..<0.97 where chat.isGroup:
            payload = groupChange(&chat)
        case ..<0.975:
            chat.recentIncoming.removeAll()
            payload = .chatCleared
        case ..<0.977:
            chat.recentIncoming.removeAll()
            chat.recentOwn.removeAll()
            chat.archived = false
            chat.pinned = false
            payload = .chatDeleted
        case ..<0.982:
            payload = snapshot(chat)
        default:
            payload = incomingMessage(&chat)
        }
        return makeEvent(deviceIndex, chatId: chat.chatId, payload)
    }

    private mutating func incomingMessage(_ chat: inout SimulatedChat) -> EventPayload {
        let id = messageId()
        let isSystem = random.chance(0.02)
        let kind: MessageKind = isSystem ? .system : pickKind()
        remember(id, in: &chat.recentIncoming)
        return .messageCreated(
            MessageCreated(
                messageId: id, fromMe: false, kind: kind, preview: kind == .text || isSystem ? preview() : "",
                senderId: chat.members.randomElement(using: &random),
                hasMedia: [.image, .video, .audio, .document, .sticker].contains(kind) ? true : nil))
    }

    private mutating func ownMessage(_ chat: inout SimulatedChat) -> EventPayload {
        let id = messageId()
        remember(id, in: &chat.recentOwn)
        chat.recentIncoming.removeAll()
        let kind = pickKind()
        return .messageCreated(
            MessageCreated(messageId: id, fromMe: true, kind: kind, preview: kind == .text ? preview() : ""))
    }

    private mutating func groupChange(_ chat: inout SimulatedChat) -> EventPayload {
        let actions: [ParticipantAction] = [.add, .remove, .leave, .promote, .demote]
        let action = actions[Int(random.next() % UInt64(actions.count))]
        let includesMe = action == .leave || random.chance(0.1)
        if includesMe && (action == .leave || action == .remove) { chat.left = true }
        if includesMe && action == .add { chat.left = false }
        let participant = chat.members.randomElement(using: &random) ?? chat.chatId
        return .groupParticipants(GroupParticipants(action: action, participants: [participant], includesMe: includesMe))
    }

    private mutating func snapshot(_ chat: SimulatedChat) -> EventPayload {
        let last = chat.recentIncoming.last.map {
            SnapshotMessage(id: $0, fromMe: false, kind: .text, preview: preview(), timestamp: clock - 1000, ack: nil)
        }
        return .chatSnapshot(
            ChatSnapshot(
                name: chatName(chat), isGroup: chat.isGroup, unreadCount: Int64(chat.recentIncoming.count),
                markedUnread: false, archived: chat.archived, pinned: chat.pinned, muteUntil: chat.muted ? -1 : 0,
                timestamp: clock - 1000, lastMessage: last))
    }

    private mutating func statusBroadcast(_ deviceIndex: Int) -> Event {
        makeEvent(
            deviceIndex, chatId: "status@broadcast",
            .messageCreated(
                MessageCreated(
                    messageId: messageId(), fromMe: false, kind: .image, preview: "",
                    senderId: devices[deviceIndex].chats.first?.members.first, hasMedia: true)))
    }

    private mutating func makeEvent(_ deviceIndex: Int, chatId: String?, _ payload: EventPayload) -> Event {
        sequence += 1
        return Event(
            eventId: eventId(), deviceId: devices[deviceIndex].deviceId, occurredAt: clock, chatId: chatId,
            payload: payload)
    }

    // MARK: - Values

    private static let crockford = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// A ULID-shaped id: 48 bits of time, 80 random bits, Crockford base32.
    private mutating func eventId() -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(26)
        var time = UInt64(clock)
        var timePart: [UInt8] = []
        for _ in 0..<10 {
            timePart.append(Self.crockford[Int(time & 31)])
            time >>= 5
        }
        bytes.append(contentsOf: timePart.reversed())
        var entropy = random.next()
        for index in 0..<16 {
            if index == 12 { entropy = random.next() }
            bytes.append(Self.crockford[Int(entropy & 31)])
            entropy >>= 5
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func messageId() -> String {
        var bytes: [UInt8] = Array("3EB0".utf8)
        var value = random.next()
        for _ in 0..<16 {
            bytes.append(Self.hexDigits[Int(value & 15)])
            value >>= 4
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func pickKind() -> MessageKind {
        let roll = random.next() % 100
        switch roll {
        case ..<74: return .text
        case ..<84: return .image
        case ..<88: return .video
        case ..<93: return .audio
        case ..<95: return .document
        case ..<97: return .sticker
        case ..<98: return .location
        case ..<99: return .contact
        default: return .call
        }
    }

    private static let phrases = [
        "see you at 8", "ok", "on my way", "Did you see this?", "haha 😂", "thanks!", "can you call me?",
        "Bin gleich da", "¿dónde estás?", "he said \"maybe\"", "line one\nline two", "👍", "a\\b path",
        "Meeting moved to 15:30", "happy birthday 🎉🎂", "where are the keys", "tab\there", "こんにちは",
        "I'll send the document tomorrow morning, the printer at the office is broken again",
    ]

    private mutating func preview() -> String {
        Self.phrases[Int(random.next() % UInt64(Self.phrases.count))]
    }

    private func chatName(_ chat: SimulatedChat) -> String {
        chat.isGroup ? "Group \(chat.chatId.prefix(10))" : "+\(chat.chatId.prefix(12))"
    }

    private func remember(_ id: String, in list: inout [String]) {
        list.append(id)
        if list.count > 8 { list.removeFirst() }
    }
}
