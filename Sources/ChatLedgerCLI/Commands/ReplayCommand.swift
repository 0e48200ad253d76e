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
/// at or before it; a position the log does not hold (no partition P, O past its last
/// record, or P not the device's partition) is an error (exit 1), never an empty answer;
/// `--as-of TIME` folds every record whose Kafka timestamp is at or
/// before TIME (ingestion time: what the chat list could show then); neither: the whole log.
/// Only records keyed by the device are parsed. `isMuted` is evaluated at `--now`
/// (default: the clock), as the API evaluates it at request time.
enum ReplayCommand: Command {
    static let spec = CommandSpec(
        name: "replay",
        synopsis: "replay [--data DIR] [--topic T] --device D [--chat C] [--at-offset P:O | --as-of TIME] [--limit N] [--cursor C] [--filter F] [--now MS]",
        summary: "A device's chat list (or one chat) exactly as it was at a log position or time, as JSON.",
        options: [
            .data, .topic,
            CommandSpec.Option("device", "D", "The device.", required: true),
            CommandSpec.Option("chat", "C", "One chat instead of the whole list."),
            CommandSpec.Option(
                "at-offset", "P:O",
                "Kafka partition:offset (the X-Ledger-Position of a response); it must be in the log and on the device's partition."),
            CommandSpec.Option("as-of", "TIME", "ISO 8601 or epoch milliseconds."),
            CommandSpec.Option("limit", "N", "Chats in the list.", default: "50"),
            CommandSpec.Option("cursor", "C", "The next page: the nextCursor of the page before (as the API's cursor)."),
            CommandSpec.Option(
                "filter", "F", "Which chats: \(ChatListFilter.allCases.map(\.rawValue).joined(separator: ", ")) (as the API's filter).", default: "all"),
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
        let filterName = arguments.string("filter") ?? ChatListFilter.all.rawValue
        guard let filter = ChatListFilter(rawValue: filterName) else {
            throw arguments.usageError("--filter takes \(ChatListFilter.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let cursor = arguments.string("cursor")
        let now = try arguments.integer("now", in: 0...Int.max).map(Int64.init) ?? Int64(Date().timeIntervalSince1970 * 1000)
        let deviceId = arguments.string("device") ?? ""
        let topic = arguments.value(.topic)
        guard let data = ReadOnlyDataDirectory.existing(arguments, command: "replay") else { return 1 }

        let device: DeviceProjection?
        do {
            device = try AuditLog(dataDirectory: data, topic: topic).device(deviceId, at: position, asOf: asOf)
        } catch let error as AuditLog.PositionNotInLog {
            writeStandardError("chatledger replay: \(error)\n")
            return 1
        }
        let rendered: RenderedView
        if let chatId = arguments.string("chat") {
            guard let chat = ChatListRenderer.chat(device, chatId: chatId, now: now) else {
                writeStandardError("chatledger replay: device \(deviceId) has no chat \(chatId) at that point\n")
                return 1
            }
            rendered = chat
        } else {
            do {
                rendered = try ChatListRenderer.chatList(device, deviceId: deviceId, query: ChatListQuery(filter: filter, limit: limit, cursor: cursor), now: now)
            } catch {
                throw arguments.usageError("--cursor is not a cursor of a chat list")
            }
        }
        print(String(decoding: rendered.bytes, as: UTF8.self))
        return 0
    }
}
