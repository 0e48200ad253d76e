import BridgeAdapters
import ChatEvents
import Testing

/// Runs records of a one-topic bridge format (`baileys`, `wwebjs`: ChatLedger's envelope,
/// key the device id) through its adapter, checking that whatever the stage would produce
/// is a valid event under its device's key.
struct BridgeHarness {
    let adapter: any BridgeAdapter
    let topic: String
    let tape = JSONTape()

    static let deviceId = "bot-1"
    /// The envelope's `timestamp` (ms).
    static let time: Int64 = 1_767_366_800_000

    func adapt(_ json: String, offset: Int64 = 7) -> AdaptedRecord {
        let record = BridgeRecord(
            topic: topic, partition: 0, offset: offset, timestamp: Self.time + 5, key: Array(Self.deviceId.utf8), value: Array(json.utf8))
        let result = adapter.adapt(record, tape: tape)
        for adapted in result.events {
            let bytes = EventEncoder.encode(adapted.event)
            #expect(throws: Never.self) { try EventParser().parse(bytes, kafkaKey: Array(adapted.event.deviceId.utf8)) }
            #expect(adapted.event.source == EventSource(format: adapter.format, topic: topic, partition: 0, offset: offset))
        }
        return result
    }

    func events(_ json: String) -> [Event] { adapt(json).events.map(\.event) }

    func payloads(_ json: String) -> [EventPayload] { events(json).map(\.payload) }

    /// ChatLedger's envelope around `data` (Baileys) or `args` (wwebjs), both JSON texts.
    static func envelope(_ event: String, data: String? = nil, args: String? = nil, me: String = #"{"id":"5511999990000:12@s.whatsapp.net","lid":"99887766554433:12@lid"}"#) -> String {
        let body = data.map { #""data":\#($0)"# } ?? #""args":\#(args ?? "[]")"#
        return #"{"event":"\#(event)","deviceId":"\#(deviceId)","me":\#(me),"timestamp":\#(time),\#(body)}"#
    }
}
