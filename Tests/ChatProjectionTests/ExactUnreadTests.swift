import ChatEvents
import ChatProjection
import Testing

/// The cases issue #14 found wrong, each with the right answer, and the chat kinds that
/// WhatsApp's servers decide.
@Suite("Exact unread counts: the cases that were wrong")
struct ExactUnreadTests {
    let anna = "491701111111@c.us"
    let group = "120363000000000001@g.us"

    private func busyChat() -> Script {
        var script = Script()
        for index in 0..<300 { script.incoming(anna, "F" + threeDigits(index), at: 1_000 + Int64(index)) }
        return script
    }

    @Test("300 unread, then chat.read up to the 10th: 290")
    func readUpToInBusyChat() throws {
        var script = busyChat()
        #expect(script.chat(anna)?.unreadCount == 300)
        script.add(anna, at: 5_000, .chatRead(ChatRead(upToMessageId: "F009")))
        #expect(script.chat(anna)?.unreadCount == 290)
    }

    @Test("300 unread, then a read receipt from the own device for the 10th: 290")
    func receiptInBusyChat() throws {
        var script = busyChat()
        script.add(anna, at: 5_000, .messageStatus(MessageStatus(messageIds: ["F009"], status: .read, selfDevice: true)))
        #expect(script.chat(anna)?.unreadCount == 290)
    }

    @Test("300 unread, then the 10th is revoked: 299")
    func revokeInBusyChat() throws {
        var script = busyChat()
        script.add(anna, at: 5_000, .messageRevoked(MessageRevoked(messageId: "F009", scope: .everyone)))
        #expect(script.chat(anna)?.unreadCount == 299)
    }

    @Test("100,000 unread messages are exact: a read up to the 50,000th leaves 50,000")
    func hundredThousandUnread() throws {
        var script = Script()
        for index in 0..<100_000 { script.incoming(group, "M\(index)", at: Int64(index)) }
        script.add(group, at: 200_000, .chatRead(ChatRead(upToMessageId: "M49999")))
        script.add(group, at: 200_001, .messageRevoked(MessageRevoked(messageId: "M99999", scope: .everyone)))
        #expect(script.chat(group)?.unreadCount == 49_999)
    }

    private func snapshot(unread: Int64, last: String, fromMe: Bool = false) -> EventPayload {
        .chatSnapshot(ChatSnapshot(
            name: "Anna", isGroup: false, unreadCount: unread, markedUnread: false, archived: false, pinned: false, muteUntil: 0,
            timestamp: 500, lastMessage: SnapshotMessage(id: last, fromMe: fromMe, kind: .text, preview: "hey", timestamp: 500)))
    }

    @Test("a snapshot counting 1 unread whose last message is incoming, then that message revoked: 0")
    func snapshotLastMessageRevoked() throws {
        var script = Script()
        script.add(anna, at: 600, snapshot(unread: 1, last: "S1"))
        script.add(anna, at: 700, .messageRevoked(MessageRevoked(messageId: "S1", scope: .everyone)))
        #expect(script.chat(anna)?.unreadCount == 0)
    }

    @Test("a snapshot counting 3, a new message, then a receipt for the snapshot's last message: 1, as chat.read up to it")
    func snapshotThenReceipt() throws {
        for read in [
            EventPayload.messageStatus(MessageStatus(messageIds: ["S1"], status: .read, selfDevice: true)),
            .chatRead(ChatRead(upToMessageId: "S1")),
        ] {
            var script = Script()
            script.add(anna, at: 600, snapshot(unread: 3, last: "S1"))
            script.incoming(anna, "M1", at: 700)
            #expect(script.chat(anna)?.unreadCount == 4)
            script.add(anna, at: 800, read)
            #expect(script.chat(anna)?.unreadCount == 1, "\(read.typeName)")
        }
    }

    @Test("a late incoming message more than a second older than an own one is read when it arrives (the reply read the chat up to there); one newer, or within the second, counts; either arrival order gives the same count")
    func lateMessageBehindOwn() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 1_000)
        script.own(anna, "O3", at: 3_000)
        script.incoming(anna, "M2", at: 1_500)
        #expect(script.chat(anna)?.unreadCount == 0, "the late message came before the reply")
        #expect(script.chat(anna)?.lastMessage?.id == "O3", "and does not become the last message")
        script.incoming(anna, "M4", at: 4_000)
        #expect(script.chat(anna)?.unreadCount == 1, "after the reply: unread")
        script.incoming(anna, "M5", at: 2_500)
        #expect(script.chat(anna)?.unreadCount == 2, "within a second of the reply (clocks differ): counted")
        script.add(anna, at: 10_000, .chatRead(ChatRead(upToMessageId: "O3")))
        #expect(script.chat(anna)?.unreadCount == 1, "a read up to the reply leaves the newer message")

        // The order two bridge topics deliver in does not change the count.
        var inOrder = Script()
        var reversed = Script()
        inOrder.incoming(anna, "A1", at: 1_000)
        inOrder.incoming(anna, "A2", at: 2_000)
        inOrder.own(anna, "B3", at: 5_000)
        reversed.own(anna, "B3", at: 5_000)
        reversed.incoming(anna, "A2", at: 2_000)
        reversed.incoming(anna, "A1", at: 1_000)
        #expect(inOrder.chat(anna)?.unreadCount == 0 && reversed.chat(anna)?.unreadCount == 0)
    }

    @Test("a late incoming message is read by chat.read up to an already-read incoming message newer than it")
    func lateMessageReadUpToReadMessage() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 1)
        script.incoming(anna, "M3", at: 3)
        script.add(anna, at: 4, .chatRead(ChatRead()))
        script.incoming(anna, "M2", at: 2)
        #expect(script.chat(anna)?.unreadCount == 1, "no reply after it: the late message counts")
        script.add(anna, at: 10, .chatRead(ChatRead(upToMessageId: "M3")))
        #expect(script.chat(anna)?.unreadCount == 0)
        // The same through a receipt from the own device.
        script.incoming(anna, "M0", at: 0)
        script.add(anna, at: 11, .messageStatus(MessageStatus(messageIds: ["M1"], status: .read, selfDevice: true)))
        #expect(script.chat(anna)?.unreadCount == 0)
    }

    @Test("a late message behind many read messages is read by a read naming one of the recent ones after it")
    func lateMessageBehindManyReadMessages() throws {
        var script = Script()
        for index in 0..<30 { script.incoming(anna, "R\(index)", at: 100 + Int64(index)) }
        script.add(anna, at: 200, .chatRead(ChatRead()))
        script.incoming(anna, "L", at: 50)
        script.incoming(anna, "N", at: 300)
        script.add(anna, at: 310, .chatRead(ChatRead(upToMessageId: "R27")))
        #expect(script.chat(anna)?.unreadCount == 1, "L is read, N is not")
    }

    @Test("a read naming a message never seen reads nothing but clears markedUnread")
    func readOfUnknownMessage() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 1)
        script.add(anna, at: 2, .chatMarkedUnread)
        script.add(anna, at: 3, .chatRead(ChatRead(upToMessageId: "NEVER")))
        #expect(script.chat(anna)?.unreadCount == 1)
        #expect(script.chat(anna)?.markedUnread == false)
    }

    @Test("the same message sent again under a new event id counts once")
    func resentMessageCountsOnce() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 1)
        script.incoming(anna, "M1", at: 1)
        #expect(script.chat(anna)?.unreadCount == 1)
    }

    @Test("a chat on @g.us is a group from its first message, whatever an update or a snapshot says")
    func groupFromItsId() throws {
        var script = Script()
        script.incoming(group, "M1", at: 1)
        #expect(script.chat(group)?.isGroup == true)
        #expect(try script.listOrder(filter: .groups) == [group])
        script.add(group, at: 2, .chatUpdated(ChatUpdated(isGroup: false)))
        #expect(script.chat(group)?.isGroup == true)
        script.incoming(anna, "A1", at: 3)
        #expect(script.chat(anna)?.isGroup == false)
    }

    @Test("channels (@newsletter) and broadcast lists are kept out of the chat list, like status@broadcast", arguments: [
        "120363025246125486@newsletter", "1700000000@broadcast", "status@broadcast",
    ])
    func channelsAndBroadcastsLeftOut(chatId: String) throws {
        var script = Script()
        script.incoming(chatId, "M1", at: 1)
        script.add(chatId, at: 2, .chatPinned(pinned: true))
        let (device, state) = script.fold()
        #expect(device.chats[chatId] == nil)
        #expect(state.counts.ignored == 2)
    }

    @Test("an incoming system message does not unarchive a chat")
    func systemMessageKeepsArchived() throws {
        var script = Script()
        script.incoming(group, "M1", at: 1)
        script.add(group, at: 2, .chatArchived(archived: true))
        script.incoming(group, "S1", at: 3, kind: .system)
        #expect(script.chat(group)?.archived == true)
    }

    @Test("a snapshot saying pinned sets pinnedAt to the snapshot's own time")
    func snapshotPinnedAt() throws {
        var script = Script()
        script.add(anna, at: 100, .chatPinned(pinned: true))
        script.add(anna, at: 900, .chatSnapshot(ChatSnapshot(
            name: "Anna", isGroup: false, unreadCount: 0, markedUnread: false, archived: false, pinned: true, muteUntil: 0,
            timestamp: 500, lastMessage: nil)))
        #expect(script.chat(anna)?.pinnedAt == 900)
    }

    @Test("a contact's LID and phone id are one chat once contact.aliased says so: messages under both count once, reads under either id act on it, and it is found by both ids")
    func lidAndPhoneAreOneChat() throws {
        let lid = "140913951141911@lid"
        var script = Script()
        script.incoming(lid, "L1", at: 100)
        script.incoming(anna, "P1", at: 200)
        script.incoming(lid, "P1", at: 200)  // the same message, reported under the LID too
        script.add(anna, at: 250, .chatPinned(pinned: true))
        script.add(anna, at: 300, .contactAliased(ContactAliased(alias: lid)))
        var (device, _) = script.fold()
        #expect(device.chats[lid] == nil, "the LID's chat joined the phone's")
        #expect(device.chats[anna]?.unreadCount == 2, "L1 and P1, P1 once")
        #expect(device.chats[anna]?.pinned == true)
        script.incoming(lid, "L2", at: 400)
        script.add(lid, at: 500, .messageStatus(MessageStatus(messageIds: ["P1"], status: .read, selfDevice: true)))
        (device, _) = script.fold()
        #expect(device.chats[anna]?.unreadCount == 1, "L2 is left")
        #expect(device.chats[anna]?.lastMessage?.id == "L2")
        #expect(device.chat(lid)?.id == anna, "found by the LID")
        let rendered = try #require(ChatListRenderer.chat(device, chatId: lid, now: 0))
        #expect(String(decoding: rendered.bytes, as: UTF8.self).contains(#""id":"\#(anna)""#))
        #expect(try script.listOrder() == [anna])
    }

    @Test("a contact.aliased that is a device's first event is kept (bridges teach LID pairs before messages): the LID's messages fold into the phone's chat, found by both ids")
    func aliasBeforeAnyChat() throws {
        let lid = "98765432109876@lid"
        var script = Script()
        script.add(anna, at: 900, .contactAliased(ContactAliased(alias: lid)))
        script.incoming(anna, "P1", at: 1_000)
        script.incoming(lid, "L1", at: 1_001)
        let (device, _) = script.fold()
        #expect(device.chats[lid] == nil, "no chat of its own for the LID")
        #expect(device.chats[anna]?.unreadCount == 2)
        #expect(device.chat(lid)?.id == anna && device.chat(anna)?.id == anna)
    }
}

/// Three digits with leading zeros.
private func threeDigits(_ value: Int) -> String {
    let digits = "\(value)"
    return String(repeating: "0", count: max(0, 3 - digits.count)) + digits
}
