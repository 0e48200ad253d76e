import ChatEvents
import ChatProjection
import EventLog
import Testing

@Suite("ProjectionStore: finding a chat")
struct ProjectionStoreTests {
    @Test("hasChat finds a chat by its id or an alias of it, exactly where chat(…) renders one")
    func hasChatAgreesWithChat() {
        var script = Script()
        script.incoming("bob@c.us", "M1", at: 1_000)
        script.add("bob@c.us", at: 1_001, .contactAliased(ContactAliased(alias: "123@lid")))
        let store = ProjectionStore()
        for (index, event) in script.events.enumerated() { _ = store.apply(event, at: LogPosition(partition: 0, offset: Int64(index))) }
        let asked = [("dev-1", "bob@c.us", true), ("dev-1", "123@lid", true), ("dev-1", "carol@c.us", false), ("dev-2", "bob@c.us", false)]
        for (deviceId, chatId, held) in asked {
            #expect(store.hasChat(deviceId, chatId: chatId) == held, "\(deviceId) \(chatId)")
            #expect((store.chat(deviceId, chatId: chatId, now: 2_000) != nil) == held, "\(deviceId) \(chatId)")
        }
    }
}
