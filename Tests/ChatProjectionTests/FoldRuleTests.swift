import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Testing

/// One test per rule of `schemas/projection.md` (and each choice documented there).
@Suite("The fold, rule by rule")
struct FoldRuleTests {
    let anna = "491701111111@c.us"
    let ben = "491702222222@c.us"
    let group = "120363000000000001@g.us"

    @Test("an incoming message creates the chat, becomes its last message, sets its timestamp and counts as unread")
    func incomingCreatesAndCounts() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100, preview: "see you at 8")
        script.incoming(anna, "M2", at: 200, preview: "or 9")
        let chat = try #require(script.chat(anna))
        #expect(chat.unreadCount == 2)
        #expect(chat.timestamp == 200)
        #expect(chat.lastMessage?.id == "M2")
        #expect(chat.lastMessage?.preview == "or 9")
        #expect(chat.lastMessage?.ack == nil)
    }

    @Test("an own message makes the chat read and never counts as unread")
    func ownMessageReads() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.add(anna, at: 110, .chatMarkedUnread)
        script.own(anna, "O1", at: 120)
        let chat = try #require(script.chat(anna))
        #expect(chat.unreadCount == 0)
        #expect(chat.markedUnread == false)
        #expect(chat.lastMessage?.fromMe == true)
        #expect(chat.lastMessage?.ack == .pending)
    }

    @Test("an incoming system message does not count as unread")
    func systemMessageDoesNotCount() throws {
        var script = Script()
        script.incoming(group, "S1", at: 100, kind: .system, preview: "Anna added Ben")
        let chat = try #require(script.chat(group))
        #expect(chat.unreadCount == 0)
        #expect(chat.lastMessage?.kind == .system)
    }

    @Test("a revoked unread message stops counting, never below zero, and a revoked last message is emptied")
    func revokedUnreadStopsCounting() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.incoming(anna, "M2", at: 200, preview: "oops")
        script.add(anna, at: 210, .messageRevoked(MessageRevoked(messageId: "M2", scope: .everyone)))
        script.add(anna, at: 220, .messageRevoked(MessageRevoked(messageId: "M2", scope: .everyone)))
        var chat = try #require(script.chat(anna))
        #expect(chat.unreadCount == 1)
        #expect(chat.lastMessage?.revoked == true)
        #expect(chat.lastMessage?.preview == "")
        script.add(anna, at: 230, .chatRead(ChatRead()))
        script.add(anna, at: 240, .messageRevoked(MessageRevoked(messageId: "M1", scope: .me)))
        chat = try #require(script.chat(anna))
        #expect(chat.unreadCount == 0)
    }

    @Test("a read on the account's other device reads that message and everything before it; newer ones stay unread")
    func readOnPhoneReadsUpToThatMessage() throws {
        var script = Script()
        for index in 1...5 { script.incoming(anna, "M\(index)", at: Int64(index * 100)) }
        script.add(anna, at: 600, .messageStatus(MessageStatus(messageIds: ["M3"], status: .read, selfDevice: true)))
        #expect(script.chat(anna)?.unreadCount == 2)
        // The same receipt from the other person (not selfDevice) reads nothing.
        script.add(anna, at: 700, .messageStatus(MessageStatus(messageIds: ["M5"], status: .read)))
        #expect(script.chat(anna)?.unreadCount == 2)
    }

    @Test("chat.read with upToMessageId reads only up to that message; newer ones stay unread")
    func readUpToMessage() throws {
        var script = Script()
        for index in 1...4 { script.incoming(anna, "M\(index)", at: Int64(index * 100)) }
        script.add(anna, at: 450, .chatMarkedUnread)
        script.add(anna, at: 500, .chatRead(ChatRead(upToMessageId: "M2")))
        let chat = try #require(script.chat(anna))
        #expect(chat.unreadCount == 2)
        #expect(chat.markedUnread == false)
    }

    @Test("chat.read without an id reads the whole chat")
    func readWholeChat() throws {
        var script = Script()
        for index in 1...4 { script.incoming(anna, "M\(index)", at: Int64(index * 100)) }
        script.add(anna, at: 500, .chatRead(ChatRead()))
        #expect(script.chat(anna)?.unreadCount == 0)
    }

    @Test("chat.markedUnread marks the chat unread without changing the count, and the unread filter shows it")
    func markedUnread() throws {
        var script = Script()
        script.own(anna, "O1", at: 100)
        script.own(ben, "O2", at: 100)
        script.add(anna, at: 200, .chatMarkedUnread)
        let chat = try #require(script.chat(anna))
        #expect(chat.markedUnread)
        #expect(chat.unreadCount == 0)
        #expect(try script.listOrder(filter: .unread) == [anna])
    }

    @Test("an incoming message unarchives an archived chat unless keepChatsArchived is set")
    func archiveAndKeepChatsArchived() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.add(anna, at: 200, .chatArchived(archived: true))
        #expect(try script.listOrder(filter: .archived) == [anna])
        script.incoming(anna, "M2", at: 300)
        #expect(script.chat(anna)?.archived == false)
        script.add(nil, at: 400, .accountSettings(keepChatsArchived: true))
        script.add(anna, at: 500, .chatArchived(archived: true))
        script.incoming(anna, "M3", at: 600)
        #expect(script.chat(anna)?.archived == true)
        #expect(try script.listOrder(filter: .all) == [anna], "all is every chat, archived ones included (SPEC's filter)")
        #expect(try script.listOrder(filter: .inbox).isEmpty, "the inbox (WhatsApp's main list) leaves archived chats out")
        #expect(try script.listOrder(filter: .unread) == [anna], "an archived chat with unread messages is unread")
    }

    @Test("pinned chats come first, newest pin first, then the rest by timestamp")
    func pinsOrderedByPinTime() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.incoming(ben, "M2", at: 200)
        script.incoming(group, "M3", at: 300)
        script.add("c4@c.us", at: 400, .messageCreated(MessageCreated(messageId: "M4", fromMe: false, kind: .text, preview: "")))
        script.add(anna, at: 500, .chatPinned(pinned: true))
        script.add(ben, at: 600, .chatPinned(pinned: true))
        #expect(try script.listOrder() == [ben, anna, "c4@c.us", group])
        script.add(ben, at: 700, .chatPinned(pinned: false))
        #expect(try script.listOrder() == [anna, "c4@c.us", group, ben])
    }

    @Test("archiving a pinned chat unpins it")
    func archivingUnpins() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.add(anna, at: 200, .chatPinned(pinned: true))
        script.add(anna, at: 300, .chatArchived(archived: true))
        #expect(script.chat(anna)?.pinned == false)
        #expect(script.chat(anna)?.pinnedAt == nil)
    }

    @Test("mute is evaluated at read time against the clock")
    func muteAtReadTime() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.add(anna, at: 200, .chatMuted(muteUntil: 10_000))
        script.incoming(ben, "M2", at: 100)
        script.add(ben, at: 200, .chatMuted(muteUntil: -1))
        let (device, _) = script.fold()
        func muted(_ chatId: String, at now: Int64) throws -> (Bool, Any) {
            let rendered = try #require(ChatListRenderer.chat(device, chatId: chatId, now: now))
            let object = try JSONSerialization.jsonObject(with: Data(rendered.bytes)) as! [String: Any]
            return (object["isMuted"] as! Bool, object["muteExpiration"] as Any)
        }
        #expect(try muted(anna, at: 9_999).0 == true)
        #expect(try muted(anna, at: 10_000).0 == false)
        #expect(try muted(anna, at: 10_000).1 is NSNull)
        #expect(try muted(ben, at: .max).0 == true)
        #expect(ChatListRenderer.chat(device, chatId: anna, now: 0)?.validUntil == 10_000, "a cached rendering expires with the mute")
    }

    @Test("chat.snapshot replaces the chat's state with its absolute values")
    func snapshotReplaces() throws {
        var script = Script()
        for index in 1...3 { script.incoming(anna, "M\(index)", at: Int64(index * 100)) }
        script.add(anna, at: 1_000, .chatSnapshot(ChatSnapshot(
            name: "Anna", isGroup: false, unreadCount: 7, markedUnread: true, archived: true, pinned: false, muteUntil: -1,
            timestamp: 900, lastMessage: SnapshotMessage(id: "X", fromMe: true, kind: .image, preview: "", timestamp: 900, ack: .read))))
        let chat = try #require(script.chat(anna))
        #expect(chat.unreadCount == 7)
        #expect(chat.name == "Anna")
        #expect(chat.markedUnread && chat.archived)
        #expect(chat.timestamp == 900)
        #expect(chat.lastMessage?.id == "X")
        #expect(chat.lastMessage?.ack == .read)
        // The messages before the snapshot are gone: a read naming one of them reads nothing;
        // the unread messages it counts come before its last message, so a read up to that
        // message reads them.
        script.add(anna, at: 1_100, .chatRead(ChatRead(upToMessageId: "M2")))
        #expect(script.chat(anna)?.unreadCount == 7)
        script.add(anna, at: 1_200, .chatRead(ChatRead(upToMessageId: "X")))
        #expect(script.chat(anna)?.unreadCount == 0)
    }

    @Test("status@broadcast chats are kept in the log and left out of the chat list")
    func statusBroadcastLeftOut() throws {
        var script = Script()
        script.incoming("status@broadcast", "S1", at: 100)
        script.incoming(anna, "M1", at: 200)
        let (device, state) = script.fold()
        #expect(device.chats["status@broadcast"] == nil)
        #expect(try script.listOrder() == [anna])
        #expect(state.counts.ignored == 1)
    }

    @Test("cleared keeps the chat without a last message and unread count; deleted removes it")
    func clearedVersusDeleted() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.incoming(ben, "M2", at: 200)
        script.add(anna, at: 300, .chatCleared)
        script.add(ben, at: 300, .chatDeleted)
        let (device, _) = script.fold()
        #expect(device.chats[anna]?.lastMessage == nil)
        #expect(device.chats[anna]?.unreadCount == 0)
        #expect(device.chats[anna]?.timestamp == 100, "a cleared chat keeps its place")
        #expect(device.chats[ben] == nil)
        #expect(try script.listOrder() == [anna])
    }

    @Test("leaving or being removed from a group makes it read-only; being added back undoes that; no unread change")
    func groupLeaveMakesReadOnly() throws {
        var script = Script()
        script.incoming(group, "M1", at: 100)
        script.add(group, at: 200, .groupParticipants(GroupParticipants(action: .leave, participants: ["me@c.us"], includesMe: true)))
        #expect(script.chat(group)?.readOnly == true)
        #expect(script.chat(group)?.unreadCount == 1)
        script.add(group, at: 300, .groupParticipants(GroupParticipants(action: .remove, participants: ["x@c.us"], includesMe: false)))
        #expect(script.chat(group)?.readOnly == true)
        script.add(group, at: 400, .groupParticipants(GroupParticipants(action: .add, participants: ["me@c.us"], includesMe: true)))
        #expect(script.chat(group)?.readOnly == false)
        #expect(script.chat(group)?.isGroup == true)
    }

    @Test("an older message arriving late does not become the last message or move the chat, but counts as unread")
    func lateMessageIsNotLast() throws {
        var script = Script()
        script.incoming(anna, "M2", at: 200, preview: "new")
        script.incoming(anna, "M1", at: 100, preview: "old, delivered late")
        let chat = try #require(script.chat(anna))
        #expect(chat.lastMessage?.id == "M2")
        #expect(chat.timestamp == 200)
        #expect(chat.unreadCount == 2)
        // A read up to the late message reads it alone: it is older than M2.
        script.add(anna, at: 300, .chatRead(ChatRead(upToMessageId: "M1")))
        #expect(script.chat(anna)?.unreadCount == 1)
    }

    @Test("a duplicate eventId changes nothing, not even the device version")
    func duplicatesAreNoOps() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        let first = script.fold()
        script.events.append(script.events[0])
        let (device, state) = script.fold()
        #expect(device == first.0)
        #expect(state.counts.duplicate == 1)
        #expect(state.digest == first.1.digest)
    }

    @Test("an edit updates the last message's preview only if it is the last message, without reordering")
    func editUpdatesLastPreview() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.incoming(anna, "M2", at: 200, preview: "typo")
        script.incoming(ben, "M3", at: 300)
        script.add(anna, at: 400, .messageEdited(MessageEdited(messageId: "M2", preview: "fixed")))
        script.add(anna, at: 500, .messageEdited(MessageEdited(messageId: "M1", preview: "ignored")))
        #expect(script.chat(anna)?.lastMessage?.preview == "fixed")
        #expect(script.chat(anna)?.timestamp == 200)
        #expect(try script.listOrder() == [ben, anna])
    }

    @Test("an own message's ack follows receipts forward, never backwards")
    func acksMoveForward() throws {
        var script = Script()
        script.own(anna, "O1", at: 100)
        script.add(anna, at: 110, .messageStatus(MessageStatus(messageIds: ["O1"], status: .read)))
        script.add(anna, at: 120, .messageStatus(MessageStatus(messageIds: ["O1"], status: .delivered)))
        #expect(script.chat(anna)?.lastMessage?.ack == .read)
        script.add(anna, at: 130, .messageStatus(MessageStatus(messageIds: ["other"], status: .played)))
        #expect(script.chat(anna)?.lastMessage?.ack == .read)
    }

    @Test("a reaction changes no unread count and no order, but is applied (version moves)")
    func reactionChangesNothingVisible() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.incoming(ben, "M2", at: 200)
        let before = script.fold().0
        script.add(anna, at: 300, .messageReaction(MessageReaction(targetMessageId: "M1", senderId: anna, emoji: "👍")))
        let after = script.fold().0
        #expect(after.chats == before.chats)
        #expect(after.version == before.version + 1)
        #expect(try script.listOrder() == [ben, anna])
    }

    @Test("an unknown type is counted and ignored: no chat change, no version change")
    func unknownTypeIgnored() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.add(anna, at: 200, .unknown(type: "call.offer"))
        let (device, state) = script.fold()
        #expect(device.version == 1)
        #expect(state.counts.ignored == 1)
    }

    @Test("every applied event increases the device's version by one")
    func versionPerEvent() throws {
        var script = Script()
        script.incoming(anna, "M1", at: 100)
        script.add(anna, at: 200, .chatMarkedUnread)
        script.add(nil, at: 300, .accountSettings(keepChatsArchived: true))
        #expect(script.fold().0.version == 3)
    }

    @Test("events for chats never seen that only act on existing state create nothing")
    func noChatFromNothing() throws {
        var script = Script()
        script.add(anna, at: 100, .chatRead(ChatRead()))
        script.add(ben, at: 100, .messageRevoked(MessageRevoked(messageId: "X", scope: .everyone)))
        script.add(group, at: 100, .chatCleared)
        #expect(script.fold().0.chats.isEmpty)
    }
}
