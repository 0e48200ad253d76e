import ChatEvents

/// Baileys' events, forwarded one Kafka record per emitted event, as canonical events.
///
/// Baileys publishes nothing by itself; the envelope is ChatLedger's (`schemas/baileys.md`,
/// written by `deploy/bridges/baileys`): `{"event": <BaileysEventMap key>, "deviceId": ...,
/// "me": {"id": <sock.user.id>, "lid": <sock.user.lid>}, "timestamp": <ms>, "data": <the
/// payload as emitted, JSON>}`, key the device id. Numbers may be JS numbers, numeric strings
/// or Longs `{low, high, unsigned}`; protobuf enums numbers or names.
///
/// Mapping (BRIDGES.md §3.3): `messages.upsert` (`notify` and `append`) → `message.created`
/// (group notices as `system`); `messages.update` → `message.status` (an incoming message
/// read means read on another device), `message.revoked` (the `REVOKE` stub) or
/// `message.edited`; `messages.delete` → `message.revoked` for me (or `chat.cleared` for
/// `{jid, all}`); `messages.reaction` → `message.reaction`; `message-receipt.update` by the
/// account itself → a read on its own device; `chats.update` / `chats.upsert` → archive,
/// pin, mute, and `unreadCount` `0` → `chat.read`, `-1` → `chat.markedUnread` (a positive
/// `unreadCount` is an *increment* Baileys adds per message: never a count); `chats.delete`
/// → `chat.deleted`; `messaging-history.set` → a `chat.snapshot` per chat (the absolute
/// state, at link time: `INITIAL_BOOTSTRAP` and `RECENT` chunks) and `contact.aliased` per
/// `lidPnMappings` entry; `groups.upsert` / `groups.update` → `chat.updated`;
/// `group-participants.update` → `group.participants`; `lid-mapping.update` →
/// `contact.aliased`; `creds.update` `accountSettings.unarchiveChats` → `account.settings`.
/// Presence, contacts, calls, labels and the rest are counted as ignored.
package struct BaileysAdapter: BridgeAdapter {
    /// `--format baileys`, and `source.format` of the events it makes.
    package static let formatName = "baileys"
    /// The format's name (`formatName`).
    package var format: String { Self.formatName }
    /// Records larger than this are dead letters without being parsed.
    package var maxRecordBytes: Int

    /// An adapter that dead-letters records over `maxRecordBytes` (16 MiB by default) unread.
    package init(maxRecordBytes: Int = 16 << 20) {
        self.maxRecordBytes = maxRecordBytes
    }

    /// Baileys 6.7 – 7.0 event names (`src/Types/Events.ts`); others are unknown.
    package static let knownEvents: Set<String> = [
        "connection.update", "creds.update", "messaging-history.set", "chats.upsert", "chats.update", "chats.delete",
        "chats.lock", "lid-mapping.update", "presence.update", "contacts.upsert", "contacts.update", "messages.delete",
        "messages.update", "messages.media-update", "messages.upsert", "messages.reaction", "message-receipt.update",
        "groups.upsert", "groups.update", "group-participants.update", "group.join-request", "group.member-tag.update",
        "blocklist.set", "blocklist.update", "call", "labels.edit", "labels.association", "newsletter.reaction",
        "newsletter.view", "newsletter-participants.update", "newsletter-settings.update", "settings.update",
        // Newer releases and forks (`lid-mapping.update` may then be an array: read either way).
        "messaging-history.status", "message.delivery-state", "call.media", "limit-sharing.update", "community-owner.update",
        "message-capping.update",
    ]

    /// Maps one record (see the type's mapping); bad input is a dead letter, never a crash.
    package func adapt(_ record: BridgeRecord, tape: JSONTape) -> AdaptedRecord {
        MappingContext.adapt(record, tape: tape, format: format, maxRecordBytes: maxRecordBytes) { context, root, result throws(AdaptError) in
            try context.mapBaileys(root, into: &result)
        }
    }
}
