import ChatEvents

/// Realistic traffic of a one-topic bridge format (`baileys`, `wwebjs`), reproducible from a
/// seed: the source of `produce --simulate --format baileys|wwebjs`, of `run --demo
/// --demo-format …`, of `bench adapt --format …` and of the end-to-end tests.
///
/// The traffic model's canonical events (ChatEvents' `TrafficModel`) are written as the
/// library would emit them, in ChatLedger's envelope, one record per library event on one
/// topic keyed by the device: `BaileysRecordWriter` and `WWebJSRecordWriter` say how. Each
/// record carries what it *means* (`Record.meaning`, canonical events as the adapter reads
/// them: message times in whole seconds, own messages signed by the account, facts the
/// library cannot carry left out), so a test can fold the meanings into the state the
/// whole path must reach. Redelivered duplicates of the model are not written (a bridge
/// forwards each library event once).
package struct BridgeTraffic: Sendable {
    /// One Kafka record, as the bridge's publisher writes it.
    package typealias Record = EvolutionTraffic.Record

    /// The formats this simulates.
    package static let formats = [BaileysAdapter.formatName, WWebJSAdapter.formatName]

    /// The format's name.
    package let format: String
    /// The one topic every device's records go to.
    package let topic: String
    private var model: TrafficModel
    private var pending: [Record] = []
    private var pendingIndex = 0
    private var writer: BridgeRecordWriter

    /// Traffic of `format` (nil when it is not one of `formats`), on `topic` (default
    /// `wa.<format>`).
    package init?(format: String, _ configuration: TrafficModel.Configuration, topic: String? = nil) {
        switch format {
        case BaileysAdapter.formatName: writer = .baileys(BaileysRecordWriter())
        case WWebJSAdapter.formatName: writer = .wwebjs(WWebJSRecordWriter())
        default: return nil
        }
        self.format = format
        self.topic = topic ?? "wa." + format
        self.model = TrafficModel(configuration)
    }

    /// The device ids (`dev-1` …).
    package var deviceIds: [String] { (1...model.configuration.devices).map { "dev-\($0)" } }

    /// The account's own phone id on `deviceId` (the envelope's `me`), canonical.
    package static func ownId(of deviceId: String) -> String {
        "55119\(900_000 + (Int(deviceId.split(separator: "-").last ?? "") ?? 0))@c.us"
    }

    /// The next record.
    package mutating func next() -> Record {
        while pendingIndex == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            let generated = model.next()
            guard !generated.isDuplicate else { continue }
            for written in writer.write(generated.event) {
                let envelope = BridgeEnvelope(format: format, event: written.event, deviceId: generated.event.deviceId, time: generated.event.occurredAt)
                pending.append(Record(
                    topic: topic, key: Array(generated.event.deviceId.utf8), value: envelope.bytes(written.body),
                    timestamp: generated.event.occurredAt, deviceId: generated.event.deviceId, meaning: written.meaning))
            }
        }
        defer { pendingIndex += 1 }
        return pending[pendingIndex]
    }
}
