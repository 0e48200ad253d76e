#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import EventLog
import Foundation
import LedgerSupport

/// `chatledger replay`: one device's chat list (or one chat) exactly as it was at a log
/// position or a time, rendered as the API renders it.
///
/// `--at-offset P:O` folds partition P up to offset O, starting from the newest checkpoint
/// at or before it; `--as-of TIME` folds every record whose Kafka timestamp is at or
/// before TIME (ingestion time: what the chat list could show then); neither: the whole log.
/// Only records keyed by the device are parsed. `isMuted` is evaluated at `--now`
/// (default: the clock), as the API evaluates it at request time.
enum ReplayCommand: Command {
    static let spec = CommandSpec(
        name: "replay",
        synopsis: "replay [--data DIR] [--topic T] --device D [--chat C] [--at-offset P:O | --as-of TIME] [--limit N] [--now MS]",
        summary: "A device's chat list (or one chat) exactly as it was at a log position or time, as JSON.",
        options: [
            .data, .topic,
            CommandSpec.Option("device", "D", "The device.", required: true),
            CommandSpec.Option("chat", "C", "One chat instead of the whole list."),
            CommandSpec.Option("at-offset", "P:O", "Kafka partition:offset (the X-Ledger-Position of a response)."),
            CommandSpec.Option("as-of", "TIME", "ISO 8601 or epoch milliseconds."),
            CommandSpec.Option("limit", "N", "Chats in the list.", default: "50"),
            CommandSpec.Option("now", "MS", "The time mutes are evaluated at, epoch ms (default: now)."),
        ])

    static func run(_ arguments: ParsedArguments) throws -> Int32 {
        if arguments.string("at-offset") != nil && arguments.string("as-of") != nil {
            throw arguments.usageError("give either --at-offset or --as-of, not both")
        }
        var position: LogPosition?
        if let text = arguments.string("at-offset") {
            guard let parsed = LogPosition(text) else { throw arguments.usageError("--at-offset takes P:O, e.g. 3:1042") }
            position = parsed
        }
        var asOf: Int64?
        if let text = arguments.string("as-of") {
            guard let parsed = TimeArgument.milliseconds(text) else { throw arguments.usageError("--as-of takes ISO 8601 or epoch ms") }
            asOf = parsed
        }
        let limit = try arguments.integer("limit", in: 1...ChatListQuery.maxLimit) ?? ChatListQuery.defaultLimit
        let now = try arguments.integer("now", in: 0...Int.max).map(Int64.init) ?? Int64(Date().timeIntervalSince1970 * 1000)
        let deviceId = arguments.string("device") ?? ""
        let topic = arguments.string("topic") ?? "wa.device-events"
        let data = arguments.string("data") ?? "./data"

        let device = try fold(deviceId: deviceId, log: EventLog(dataDirectory: data), topic: topic, position: position, asOf: asOf, checkpoints: CheckpointStore(dataDirectory: data))
        let rendered: RenderedView
        if let chatId = arguments.string("chat") {
            guard let chat = ChatListRenderer.chat(device, chatId: chatId, now: now) else {
                writeStandardError("chatledger replay: device \(deviceId) has no chat \(chatId) at that point\n")
                return 1
            }
            rendered = chat
        } else {
            rendered = try ChatListRenderer.chatList(device, deviceId: deviceId, query: ChatListQuery(limit: limit), now: now)
        }
        print(String(decoding: rendered.bytes, as: UTF8.self))
        return 0
    }

    /// The device's state at the point asked for.
    static func fold(deviceId: String, log: EventLog, topic: String, position: LogPosition?, asOf: Int64?, checkpoints: CheckpointStore) throws -> DeviceProjection? {
        var state = ProjectionState()
        // A checkpoint helps an --at-offset replay when it is at or before the position.
        if let position {
            for sequence in checkpoints.sequences().reversed() {
                guard let (checkpointState, info) = try? checkpoints.read(sequence),
                    let at = info.positions[position.partition], at <= position.offset
                else { continue }
                state = checkpointState
                break
            }
        }
        let key = Array(deviceId.utf8)
        let parser = EventParser()
        for (logTopic, partition) in try log.partitions() where logTopic == topic {
            if let position, position.partition != partition { continue }
            let start = position == nil ? 0 : (state.positions[partition] ?? -1) + 1
            try log.reader(topic: topic, partition: partition).forEach(from: start) { record in
                if let position, record.offset > position.offset { return false }
                let at = LogPosition(partition: partition, offset: record.offset)
                if let asOf, record.timestamp > asOf { return true }  // timestamps need not be ordered
                guard record.kind == .event, let recordKey = record.key, recordKey.elementsEqual(key), let value = record.value,
                    let event = try? parser.parse(value)
                else { return true }
                state.apply(event, at: at, chainHash: record.chainHash)
                return true
            }
        }
        return state.devices[deviceId]
    }
}
