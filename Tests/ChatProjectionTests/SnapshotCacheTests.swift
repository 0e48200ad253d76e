import ChatEvents
import ChatProjection
import EventLog
import Foundation
import Testing

@Suite("SnapshotCache and ProjectionStore")
struct SnapshotCacheTests {
    func view(_ text: String, version: UInt64, validUntil: Int64? = nil) -> RenderedView {
        RenderedView(bytes: Array(text.utf8), version: version, validUntil: validUntil)
    }

    @Test("a stored rendering is served until the device's next event invalidates it")
    func hitUntilInvalidated() {
        var cache = SnapshotCache()
        let key = SnapshotCache.Key(deviceId: "d", view: "list")
        let result1 = cache.lookup(key, now: 0)
        #expect(result1 == nil)
        let result2 = cache.store(key, view("v0", version: 0), currentVersion: 0)
        #expect(result2)
        let result3 = cache.lookup(key, now: 0)
        #expect(result3?.bytes == Array("v0".utf8))
        cache.invalidate(deviceId: "d")
        let result4 = cache.lookup(key, now: 0)
        #expect(result4 == nil)
        let counters = cache.counters
        #expect(counters.hits == 1)
        #expect(counters.misses == 2)
        #expect(counters.invalidations == 1)
        #expect(counters.entries == 0)
    }

    @Test("a fill rendered before an event is refused after it: no stale set")
    func staleFillRefused() {
        var cache = SnapshotCache()
        let key = SnapshotCache.Key(deviceId: "d", view: "list")
        cache.invalidate(deviceId: "d")  // the device is at version 5 now
        let result5 = cache.store(key, view("old", version: 4), currentVersion: 5)
        #expect(!result5)
        let result6 = cache.lookup(key, now: 0)
        #expect(result6 == nil)
        #expect(cache.counters.staleFillsRejected == 1)
        let result7 = cache.store(key, view("new", version: 5), currentVersion: 5)
        #expect(result7)
        let result8 = cache.lookup(key, now: 0)
        #expect(result8?.bytes == Array("new".utf8))
    }

    @Test("other devices' renderings survive an invalidation")
    func invalidationIsPerDevice() {
        var cache = SnapshotCache()
        cache.store(.init(deviceId: "a", view: "x"), view("a", version: 0), currentVersion: 0)
        cache.store(.init(deviceId: "b", view: "x"), view("b", version: 0), currentVersion: 0)
        cache.invalidate(deviceId: "a")
        let result9 = cache.lookup(.init(deviceId: "b", view: "x"), now: 0)
        #expect(result9 != nil)
    }

    @Test("the cache is bounded by bytes and evicts the least recently used first")
    func lruByBytes() {
        var cache = SnapshotCache(capacityBytes: 30)
        for name in ["a", "b", "c"] { cache.store(.init(deviceId: name, view: "v"), view(String(repeating: name, count: 10), version: 0), currentVersion: 0) }
        _ = cache.lookup(.init(deviceId: "a", view: "v"), now: 0)  // a is now the most recent
        cache.store(.init(deviceId: "d", view: "v"), view(String(repeating: "d", count: 10), version: 0), currentVersion: 0)
        let result10 = cache.lookup(.init(deviceId: "b", view: "v"), now: 0)
        #expect(result10 == nil, "b was least recently used")
        let result11 = cache.lookup(.init(deviceId: "a", view: "v"), now: 0)
        #expect(result11 != nil)
        #expect(cache.counters.evictions == 1)
        #expect(cache.counters.bytes <= 30)
    }

    @Test("a rendering showing a mute expires when the mute does")
    func expiresWithMute() {
        var cache = SnapshotCache()
        let key = SnapshotCache.Key(deviceId: "d", view: "list")
        cache.store(key, view("muted", version: 0, validUntil: 1_000), currentVersion: 0)
        let result12 = cache.lookup(key, now: 999)
        #expect(result12 != nil)
        let result13 = cache.lookup(key, now: 1_000)
        #expect(result13 == nil)
    }

    @Test("three messages arrive and the very next query says unreadCount 3, through the cache")
    func staleCountScenario() throws {
        let store = ProjectionStore()
        var script = Script()
        script.own("a@c.us", "O1", at: 100)
        for (index, event) in script.events.enumerated() { store.apply(event, at: LogPosition(partition: 0, offset: Int64(index))) }
        func unreadCount() throws -> Int {
            let rendered = try store.chatList("dev-1", query: ChatListQuery(), now: 0)
            let object = try JSONSerialization.jsonObject(with: Data(rendered.bytes)) as! [String: Any]
            return (object["chats"] as! [[String: Any]])[0]["unreadCount"] as! Int
        }
        #expect(try unreadCount() == 0)
        #expect(try unreadCount() == 0)
        #expect(store.cacheCounters.hits == 1, "the second query was a cache hit")
        for index in 1...3 {
            store.apply(
                Event(eventId: "in-\(index)", deviceId: "dev-1", occurredAt: 200, chatId: "a@c.us",
                      payload: .messageCreated(MessageCreated(messageId: "M\(index)", fromMe: false, kind: .text, preview: "hi"))),
                at: LogPosition(partition: 0, offset: Int64(index)))
        }
        #expect(try unreadCount() == 3)
    }

    @Test("pages walk the whole list once, in order, and a foreign cursor is refused")
    func pagination() throws {
        var script = Script()
        for index in 0..<23 { script.incoming("c\(index)@c.us", "M\(index)", at: Int64(100 + index % 7)) }
        script.add("c5@c.us", at: 500, .chatPinned(pinned: true))
        let device = script.fold().0
        var cursor: String?
        var seen: [String] = []
        repeat {
            let rendered = try ChatListRenderer.chatList(device, deviceId: "dev-1", query: ChatListQuery(limit: 5, cursor: cursor), now: 0)
            let object = try JSONSerialization.jsonObject(with: Data(rendered.bytes)) as! [String: Any]
            seen += (object["chats"] as! [[String: Any]]).map { $0["id"] as! String }
            cursor = object["nextCursor"] as? String
        } while cursor != nil
        #expect(seen == (try script.listOrder()))
        #expect(seen.count == 23)
        #expect(seen.first == "c5@c.us")
        #expect(throws: ChatListRenderer.InvalidCursor.self) {
            try ChatListRenderer.chatList(device, deviceId: "dev-1", query: ChatListQuery(cursor: "garbage"), now: 0)
        }
    }

    @Test("the chat object has exactly the fields of schemas/openapi.yaml")
    func chatObjectFields() throws {
        var script = Script()
        script.own("a@c.us", "O1", at: 100, preview: "hello")
        let rendered = try #require(ChatListRenderer.chat(script.fold().0, chatId: "a@c.us", now: 0))
        let object = try JSONSerialization.jsonObject(with: Data(rendered.bytes)) as! [String: Any]
        #expect(Set(object.keys) == ["id", "name", "isGroup", "unreadCount", "markedUnread", "timestamp", "archived", "pinned",
                                     "pinnedAt", "isMuted", "muteExpiration", "readOnly", "lastMessage"])
        let last = try #require(object["lastMessage"] as? [String: Any])
        #expect(Set(last.keys) == ["id", "fromMe", "kind", "preview", "timestamp", "ack", "revoked"])
        #expect(last["ack"] as? String == "pending")
    }
}
