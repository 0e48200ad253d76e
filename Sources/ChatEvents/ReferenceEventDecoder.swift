import Foundation

/// Decodes events with Foundation's `JSONDecoder` into the same typed `Event`.
///
/// Not used on any production path: it is the oracle for the hand-written parser's
/// differential tests and the baseline `chatledger bench codec` compares against. It
/// checks what `Codable` naturally checks (types, required fields per type) and no more.
package enum ReferenceEventDecoder {
    package struct DecodingFailure: Error, CustomStringConvertible {
        package var description: String
    }

    private struct Envelope: Decodable {
        var schemaVersion: Int
        var eventId: String
        var deviceId: String
        var type: String
        var occurredAt: Int64
        var chatId: String?
        var data: DataFields?
        var source: SourceFields?

        private enum CodingKeys: String, CodingKey {
            case schemaVersion, eventId, deviceId, type, occurredAt, chatId, data, source
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            schemaVersion = try container.decode(Int.self, forKey: .schemaVersion)
            eventId = try container.decode(String.self, forKey: .eventId)
            deviceId = try container.decode(String.self, forKey: .deviceId)
            type = try container.decode(String.self, forKey: .type)
            occurredAt = try container.decode(Int64.self, forKey: .occurredAt)
            chatId = try container.decodeIfPresent(String.self, forKey: .chatId)
            // An unknown type's data is not interpreted, as in the parser.
            data = EventType(rawValue: type) == nil ? nil : try container.decodeIfPresent(DataFields.self, forKey: .data)
            source = try container.decodeIfPresent(SourceFields.self, forKey: .source)
        }
    }

    private struct SourceFields: Decodable {
        var format: String
        var topic: String?
        var partition: Int32?
        var offset: Int64?
        var keyId: String?

        private func required<T>(_ value: T?, _ name: String) throws -> T {
            guard let value else { throw DecodingFailure(description: "missing \(name)") }
            return value
        }

        var source: EventSource {
            get throws {
                if format == EventSource.apiFormat { return .api(keyId: try required(keyId, "source.keyId")) }
                return .bridgeRecord(
                    format: format, topic: try required(topic, "source.topic"), partition: try required(partition, "source.partition"),
                    offset: try required(offset, "source.offset"))
            }
        }
    }

    private struct LastMessage: Decodable {
        var id: String
        var fromMe: Bool
        var kind: String
        var preview: String
        var timestamp: Int64
        var ack: String?
        var revoked: Bool?
    }

    private struct DataFields: Decodable {
        var messageId: String?
        var fromMe: Bool?
        var kind: String?
        var preview: String?
        var senderId: String?
        var hasMedia: Bool?
        var scope: String?
        var messageIds: [String]?
        var status: String?
        var selfDevice: Bool?
        var targetMessageId: String?
        var emoji: String?
        var upToMessageId: String?
        var archived: Bool?
        var pinned: Bool?
        var muteUntil: Int64?
        var name: String?
        var isGroup: Bool?
        var readOnly: Bool?
        var unreadCount: Int64?
        var markedUnread: Bool?
        var timestamp: Int64?
        var lastMessage: LastMessage?
        var action: String?
        var participants: [String]?
        var includesMe: Bool?
        var keepChatsArchived: Bool?
        var alias: String?
        var subject: String?
        var reason: String?
    }

    /// Decodes one value with `JSONDecoder`.
    package static func decode(_ bytes: [UInt8], decoder: JSONDecoder = JSONDecoder()) throws -> Event {
        let envelope = try decoder.decode(Envelope.self, from: Data(bytes))
        guard envelope.schemaVersion == Event.supportedSchemaVersion else {
            throw DecodingFailure(description: "unsupported schemaVersion")
        }
        let data = envelope.data
        func required<T>(_ value: T?, _ name: String) throws -> T {
            guard let value else { throw DecodingFailure(description: "missing data.\(name)") }
            return value
        }
        func enumeration<T: RawRepresentable>(_ raw: String?, _ name: String) throws -> T where T.RawValue == String {
            guard let value = T(rawValue: try required(raw, name)) else {
                throw DecodingFailure(description: "invalid data.\(name)")
            }
            return value
        }
        let payload: EventPayload
        switch EventType(rawValue: envelope.type) {
        case .messageCreated:
            payload = .messageCreated(
                MessageCreated(
                    messageId: try required(data?.messageId, "messageId"), fromMe: try required(data?.fromMe, "fromMe"),
                    kind: try enumeration(data?.kind, "kind"), preview: try required(data?.preview, "preview"),
                    senderId: data?.senderId, hasMedia: data?.hasMedia))
        case .messageEdited:
            payload = .messageEdited(
                MessageEdited(
                    messageId: try required(data?.messageId, "messageId"), preview: try required(data?.preview, "preview")))
        case .messageRevoked:
            payload = .messageRevoked(
                MessageRevoked(messageId: try required(data?.messageId, "messageId"), scope: try enumeration(data?.scope, "scope")))
        case .messageStatus:
            payload = .messageStatus(
                MessageStatus(
                    messageIds: try required(data?.messageIds, "messageIds"), status: try enumeration(data?.status, "status"),
                    selfDevice: data?.selfDevice))
        case .messageReaction:
            payload = .messageReaction(
                MessageReaction(
                    targetMessageId: try required(data?.targetMessageId, "targetMessageId"),
                    senderId: try required(data?.senderId, "senderId"), emoji: try required(data?.emoji, "emoji")))
        case .chatRead: payload = .chatRead(ChatRead(upToMessageId: data?.upToMessageId))
        case .chatMarkedUnread: payload = .chatMarkedUnread
        case .chatArchived: payload = .chatArchived(archived: try required(data?.archived, "archived"))
        case .chatPinned: payload = .chatPinned(pinned: try required(data?.pinned, "pinned"))
        case .chatMuted: payload = .chatMuted(muteUntil: try required(data?.muteUntil, "muteUntil"))
        case .chatUpdated:
            payload = .chatUpdated(ChatUpdated(name: data?.name, isGroup: data?.isGroup, readOnly: data?.readOnly))
        case .chatCleared: payload = .chatCleared
        case .chatDeleted: payload = .chatDeleted
        case .chatSnapshot:
            let last = try data?.lastMessage.map { message in
                SnapshotMessage(
                    id: message.id, fromMe: message.fromMe, kind: try enumeration(message.kind, "lastMessage.kind"),
                    preview: message.preview, timestamp: message.timestamp,
                    ack: try message.ack.map { try enumeration($0, "lastMessage.ack") }, revoked: message.revoked)
            }
            payload = .chatSnapshot(
                ChatSnapshot(
                    name: data?.name ?? "", isGroup: try required(data?.isGroup, "isGroup"),  // null: no name
                    unreadCount: try required(data?.unreadCount, "unreadCount"),
                    markedUnread: try required(data?.markedUnread, "markedUnread"),
                    archived: try required(data?.archived, "archived"), pinned: try required(data?.pinned, "pinned"),
                    muteUntil: try required(data?.muteUntil, "muteUntil"),
                    timestamp: try required(data?.timestamp, "timestamp"), lastMessage: last))
        case .groupParticipants:
            payload = .groupParticipants(
                GroupParticipants(
                    action: try enumeration(data?.action, "action"),
                    participants: try required(data?.participants, "participants"),
                    includesMe: try required(data?.includesMe, "includesMe")))
        case .accountSettings:
            payload = .accountSettings(keepChatsArchived: try required(data?.keepChatsArchived, "keepChatsArchived"))
        case .contactAliased:
            payload = .contactAliased(ContactAliased(alias: try required(data?.alias, "alias")))
        case .ledgerErased:
            let erasure = LedgerErasure(
                scope: try enumeration(data?.scope, "scope"), subject: data?.subject, reason: try required(data?.reason, "reason"))
            guard LedgerErasure.isDigestName(envelope.deviceId), (erasure.scope == .device) == (erasure.subject == nil),
                erasure.subject.map(LedgerErasure.isDigestName) ?? true, !erasure.reason.isEmpty
            else { throw DecodingFailure(description: "invalid ledger.erased") }
            payload = .ledgerErased(erasure)
        case nil:
            payload = .unknown(type: envelope.type)
        }
        return Event(
            eventId: envelope.eventId, deviceId: envelope.deviceId, occurredAt: envelope.occurredAt,
            chatId: envelope.chatId, payload: payload,
            source: try envelope.source?.source)
    }
}
