import ChatEvents
import ChatProjection
import EventLog
import Foundation

/// Builds event sequences for one device tersely, and folds them.
struct Script {
    var deviceId = "dev-1"
    var events: [Event] = []
    private var sequence = 0

    mutating func add(_ chatId: String?, at time: Int64, _ payload: EventPayload, eventId: String? = nil) {
        sequence += 1
        events.append(Event(eventId: eventId ?? "E\(sequence)", deviceId: deviceId, occurredAt: time, chatId: chatId, payload: payload))
    }

    mutating func incoming(_ chatId: String, _ messageId: String, at time: Int64, kind: MessageKind = .text, preview: String = "hi") {
        add(chatId, at: time, .messageCreated(MessageCreated(messageId: messageId, fromMe: false, kind: kind, preview: preview, senderId: chatId)))
    }

    mutating func own(_ chatId: String, _ messageId: String, at time: Int64, preview: String = "ok") {
        add(chatId, at: time, .messageCreated(MessageCreated(messageId: messageId, fromMe: true, kind: .text, preview: preview)))
    }

    /// The device after folding every event; with the state for inspection.
    func fold() -> (DeviceProjection, ProjectionState) {
        var state = ProjectionState(eventIdWindow: 10_000)
        for (index, event) in events.enumerated() { state.apply(event, at: LogPosition(partition: 0, offset: Int64(index))) }
        return (state.devices[deviceId] ?? DeviceProjection(deviceId: deviceId), state)
    }

    func chat(_ chatId: String) -> ChatState? { fold().0.chats[chatId] }

    /// Chat ids of the rendered list, in order.
    func listOrder(filter: ChatListFilter = .all, now: Int64 = 0) throws -> [String] {
        let rendered = try ChatListRenderer.chatList(fold().0, deviceId: deviceId, query: ChatListQuery(filter: filter, limit: 500), now: now)
        let object = try JSONSerialization.jsonObject(with: Data(rendered.bytes)) as! [String: Any]
        return (object["chats"] as! [[String: Any]]).map { $0["id"] as! String }
    }
}
