import ChatEvents

/// ChatLedger's envelope for `baileys` and `wwebjs` records.
struct BridgeEnvelope {
    var format: String
    var event: String
    var deviceId: String
    var time: Int64

    func bytes(_ body: JSONLiteral) -> [UInt8] {
        let own = BridgeTraffic.ownId(of: deviceId)
        let me: JSONLiteral =
            format == BaileysAdapter.formatName
            ? .object([
                ("id", .string(WhatsAppID.user(of: own) + ":7@s.whatsapp.net")),
                ("lid", .string("998877\(WhatsAppID.user(of: own).suffix(6)):7@lid")),
            ])
            : .string(own)
        return JSONLiteral.object([
            ("event", .string(event)), ("deviceId", .string(deviceId)), ("me", me), ("timestamp", .integer(time)),
            (format == BaileysAdapter.formatName ? "data" : "args", body),
        ]).bytes
    }
}
