import ChatEvents

/// ChatLedger's envelope for library events (`schemas/bridge-envelopes.md`).
extension MappingContext {
    /// The envelope shared by the `baileys` and `wwebjs` formats: `event`, `deviceId`, `me`,
    /// `timestamp`. Returns the event name, nil when it is not one of `known` (counted).
    mutating func mapBridgeEnvelope(_ root: JSONValue, known: Set<String>, into result: inout AdaptedRecord) throws(AdaptError) -> String? {
        guard root.kind == .object else {
            throw AdaptError(code: "wrong_type", path: "", message: "the record is \(root.kindName), not an object")
        }
        let eventName = try requiredString(root["event"], "event")
        guard known.contains(eventName) else {
            result.skipReasons.append("unknown_event")
            return nil
        }
        result.eventName = eventName
        let device = try requiredString(root["deviceId"], "deviceId")
        guard device.utf8.count <= Self.maxIdentifierBytes else { throw .invalid("deviceId", "longer than 128 bytes") }
        deviceId = device
        if let me = root["me"], !me.isNull {
            switch me.kind {
            case .string:
                ownId = try optionalAddress(me, "me")
            case .object:
                ownId = try optionalAddress(me["id"], "me.id")
                ownLid = try optionalAddress(me["lid"], "me.lid")
            default:
                throw .wrongType("me", expected: "an object or a string", found: me)
            }
        }
        envelopeTime = BaileysContent.epochMillis(root["timestamp"]) ?? max(0, record.timestamp)
        result.time = envelopeTime
        return eventName
    }
}
