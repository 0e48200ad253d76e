import BridgeAdapters
import ChatEvents
import Foundation
import Ingest
import KafkaClient
import LedgerSupport

/// `chatledger erase`: publishes a `ledger.erased` event on the canonical topic. Every
/// instance's ingest applies it at its log position: the fold drops what it names, the
/// log's records of it keep only their digests (redaction markers), and the checkpoints
/// before it are replaced. The Kafka topic itself keeps its copy until the broker's
/// retention removes it (README, "What ChatLedger cannot erase").
enum EraseCommand: Command {
    static let spec = CommandSpec(
        name: "erase",
        synopsis: "erase --brokers B [--topic T] --device D [--chat C | --contact ID] [--id-as-given] --reason TEXT [--kafka-config K=V,...] [--kafka-config-file FILE]",
        summary: "Erase a device, or one chat or contact of it, from every instance's log and projection.",
        options: [
            CommandSpec.Option("brokers", "B", "Kafka bootstrap servers, host:port[,host:port].", required: true),
            .topic,
            CommandSpec.Option("device", "D", "The device to erase (alone: all of it).", required: true),
            CommandSpec.Option("chat", "C", "Only this chat of the device."),
            CommandSpec.Option("contact", "ID", "Only this contact of the device (their chat under either id)."),
            CommandSpec.Option("reason", "TEXT", "Why: a request number, kept in the log (no personal data).", required: true),
            .flag(
                "id-as-given",
                "Erase the chat or contact id exactly as given, also in a bridge's own form (…@s.whatsapp.net, a :device suffix), which the adapter stage never stores."),
            IngestOptions.kafkaConfig, IngestOptions.kafkaConfigFile,
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        let request: ErasureRequest
        do {
            request = try ErasureRequest(
                deviceId: arguments.string("device") ?? "", chatId: arguments.string("chat"), contactId: arguments.string("contact"),
                reason: arguments.string("reason") ?? "")
        } catch {
            throw arguments.usageError(error.description)
        }
        // The adapter stage stores a contact as NUMBER@c.us or NUMBER@lid: an id in a bridge's
        // own form would name records that do not exist, and erase nothing.
        for option in ["chat", "contact"] where !arguments.flag("id-as-given") {
            guard let id = arguments.string(option), let canonical = WhatsAppID.canonical(id), canonical != id else { continue }
            throw arguments.usageError(
                "--\(option) \(id) is a bridge's form of \(canonical), the id ChatLedger stores (and the API shows): "
                    + "erase --\(option) \(canonical), or add --id-as-given")
        }
        let topic = arguments.value(.topic)
        var random = SystemRandomNumberGenerator()
        let eventId = "erasure-" + String(random.next(), radix: 16) + String(random.next(), radix: 16)
        let record = request.record(eventId: eventId, occurredAt: Int64(Date().timeIntervalSince1970 * 1000))
        let producer = try KafkaProducer(
            bootstrapServers: arguments.string("brokers") ?? "",
            configuration: try IngestOptions.kafkaConfiguration(arguments, defaults: KafkaConfiguration(["message.timeout.ms": "30000"])))
        try producer.send(topic: topic, key: record.key, value: record.value)
        try producer.flush(timeoutMilliseconds: 60_000)
        if let failure = producer.report.firstFailure {
            writeStandardError("chatledger erase: not delivered: \(failure)\n")
            return 1
        }
        print("erasure \(eventId) published to \(topic): \(request.scope.rawValue) of device \(ErasureRequest.digestName(request.deviceId))")
        return 0
    }
}
