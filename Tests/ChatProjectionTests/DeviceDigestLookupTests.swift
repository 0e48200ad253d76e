import ChatEvents
import ChatProjection
import EventLog
import Testing

/// `ProjectionState.device(named:)`: the device a `ledger.erased` event names by digest,
/// found through a table kept with the devices (built at the first lookup) instead of
/// hashing every device id per erasure.
@Suite("Device lookup by digest")
struct DeviceDigestLookupTests {
    func message(_ device: String, _ index: Int) -> Event {
        Event(eventId: "\(device)-\(index)", deviceId: device, occurredAt: Int64(index), chatId: "4915550123@c.us",
              payload: .messageCreated(MessageCreated(messageId: "m\(index)", fromMe: false, kind: .text, preview: "p")))
    }

    @Test("devices added, erased and replaced after the first lookup are found (or not) by their digest name; the table takes no part in equality")
    func lookupFollowsTheDevices() {
        var state = ProjectionState()
        var offset: Int64 = 0
        func apply(_ event: Event) {
            state.apply(event, at: LogPosition(partition: 0, offset: offset))
            offset += 1
        }
        for index in 0..<50 { apply(message("dev-\(index)", index)) }
        let untouched = state
        #expect(state.device(named: DeviceProjection.digestName("dev-7")) == "dev-7")
        #expect(state == untouched, "a lookup changes nothing that equality sees")
        #expect(state.device(named: DeviceProjection.digestName("dev-new")) == nil)
        #expect(state.device(named: "dev-7") == nil && state.device(named: DeviceProjection.digestName("dev-7").uppercased()) == nil,
                "only `sha256:` and lowercase hex names a device")

        apply(message("dev-new", 99))  // after the table was built
        #expect(state.device(named: DeviceProjection.digestName("dev-new")) == "dev-new")

        apply(Event(eventId: "erase-7", deviceId: DeviceProjection.digestName("dev-7"), occurredAt: 100, chatId: nil,
                    payload: .ledgerErased(LedgerErasure(scope: .device, reason: "r"))))
        #expect(state.devices["dev-7"] == nil)
        #expect(state.device(named: DeviceProjection.digestName("dev-7")) == nil, "an erased device is no longer named")

        state.replaceDevice("dev-8", with: nil)
        #expect(state.device(named: DeviceProjection.digestName("dev-8")) == nil)
        let restored = untouched.devices["dev-9"]
        state.replaceDevice("dev-9", with: restored)
        #expect(state.device(named: DeviceProjection.digestName("dev-9")) == "dev-9")
    }
}
