import ChatEvents

/// whatsapp-web.js client events, forwarded one Kafka record per emitted event, as
/// canonical events.
///
/// The envelope is ChatLedger's (`schemas/wwebjs.md`, written by `deploy/bridges/wwebjs`):
/// `{"event": <Client event name>, "deviceId": ..., "me": <client.info.wid._serialized>,
/// "timestamp": <ms>, "args": [<the listener's arguments, JSON.stringify'd>]}`, key the
/// device id. `Message`, `Chat`, `Reaction` and `GroupNotification` arrive with their
/// serialised fields (`src/structures/*.js`): times in seconds, ids as `{_serialized, ...}`
/// or strings.
///
/// Mapping (BRIDGES.md §4.3): `message_create` (every message, own ones too) →
/// `message.created` (`message` repeats the incoming ones: skipped); `message_ack` →
/// `message.status`; `message_revoke_everyone` / `message_revoke_me` → `message.revoked`;
/// `message_edit` → `message.edited`; `message_reaction` → `message.reaction`;
/// `chat_archived` → `chat.archived`; `chat_removed` → `chat.deleted`; `unread_count` (the
/// absolute count) → `chat.read` for 0, `chat.markedUnread` for -1, and a `chat.snapshot` of
/// the serialised `Chat` for a positive count, so the count stated is the count kept;
/// `group_join` / `group_leave` / `group_admin_changed` → `group.participants`;
/// `group_update` (subject) → `chat.updated`. whatsapp-web.js has no pin or mute event.
package struct WWebJSAdapter: BridgeAdapter {
    /// `--format wwebjs`, and `source.format` of the events it makes.
    package static let formatName = "wwebjs"
    /// The format's name (`formatName`).
    package var format: String { Self.formatName }
    /// Records larger than this are dead letters without being parsed.
    package var maxRecordBytes: Int

    /// An adapter that dead-letters records over `maxRecordBytes` (16 MiB by default) unread.
    package init(maxRecordBytes: Int = 16 << 20) {
        self.maxRecordBytes = maxRecordBytes
    }

    /// whatsapp-web.js 1.2x – 1.34 `Events` (`src/util/Constants.js`); others are unknown.
    package static let knownEvents: Set<String> = [
        "authenticated", "auth_failure", "ready", "chat_removed", "chat_archived", "message", "message_ciphertext",
        "message_create", "message_revoke_everyone", "message_revoke_me", "message_ack", "message_edit", "unread_count",
        "message_reaction", "media_uploaded", "contact_changed", "group_join", "group_leave", "group_admin_changed",
        "group_membership_request", "group_update", "qr", "loading_screen", "disconnected", "change_state",
        "change_battery", "incoming_call", "call", "remote_session_saved", "vote_update",
    ]

    /// Maps one record (see the type's mapping); bad input is a dead letter, never a crash.
    package func adapt(_ record: BridgeRecord, tape: JSONTape) -> AdaptedRecord {
        MappingContext.adapt(record, tape: tape, format: format, maxRecordBytes: maxRecordBytes) { context, root, result throws(AdaptError) in
            try context.mapWWebJS(root, into: &result)
        }
    }
}
