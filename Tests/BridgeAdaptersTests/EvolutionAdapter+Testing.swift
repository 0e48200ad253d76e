import BridgeAdapters
import ChatEvents
import Testing

/// Runs Evolution records (JSON text) through the adapter.
struct EvolutionHarness {
    let adapter = EvolutionAdapter()
    let tape = JSONTape()

    static let secret = "B6D711FCDE4D4FD5936544120E713976"

    func record(_ json: String, topic: String = "evolution.sales.messages.upsert", offset: Int64 = 7, timestamp: Int64 = 1_763_771_104_000) -> BridgeRecord {
        BridgeRecord(topic: topic, partition: 0, offset: offset, timestamp: timestamp, key: Array("sales".utf8), value: Array(json.utf8))
    }

    func adapt(_ json: String, topic: String = "evolution.sales.messages.upsert", offset: Int64 = 7) -> AdaptedRecord {
        let result = adapter.adapt(record(json, topic: topic, offset: offset), tape: tape)
        // Whatever the stage would produce is a valid event under its device's key.
        for adapted in result.events {
            let bytes = EventEncoder.encode(adapted.event)
            #expect(throws: Never.self) { try EventParser().parse(bytes, kafkaKey: Array(adapted.event.deviceId.utf8)) }
            #expect(!String(decoding: bytes, as: UTF8.self).contains(Self.secret), "the apikey never reaches an event")
        }
        return result
    }

    /// The events of a record, the `contact.aliased` ones first as the adapter makes them.
    func events(_ json: String, topic: String = "evolution.sales.messages.upsert") -> [Event] {
        adapt(json, topic: topic).events.map(\.event)
    }

    /// An Evolution envelope around `data` (a JSON text), as its Kafka integration writes it.
    static func envelope(_ event: String, _ data: String, instance: String = "sales", timestamp: Int64 = 1_763_771_104_000) -> String {
        #"{"event":"\#(event)","instance":"\#(instance)","data":\#(data),"server_url":"http://localhost:8080","date_time":"2025-11-21T21:25:03.966Z","sender":"558196349077@s.whatsapp.net","apikey":"\#(secret)","timestamp":\#(timestamp)}"#
    }
}
