import ChatEvents

extension Event {
    /// The event with another payload (and time), as a meaning.
    func meaning(_ payload: EventPayload, at time: Int64? = nil, chatId: String?? = nil) -> Event {
        Event(eventId: "meaning", deviceId: deviceId, occurredAt: time ?? occurredAt, chatId: chatId ?? self.chatId, payload: payload)
    }

    /// `occurredAt` in whole seconds, as a library that counts seconds reports it.
    var wholeSeconds: Int64 { occurredAt / 1000 * 1000 }
}
