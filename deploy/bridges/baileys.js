'use strict';
// Forwards every Baileys event of a socket to Kafka in ChatLedger's `baileys` envelope
// (schemas/bridge-envelopes.md), for `chatledger adapt --format baileys`.
//
//   const { attachBaileysPublisher } = require('./chatledger/baileys');
//   const sock = makeWASocket({ ... });               // your bot, unchanged
//   attachBaileysPublisher(sock, { producer, topic: 'wa.baileys', deviceId: 'shop-1' });
//
// Records are sent one after another in emit order (a buffered flush in FLUSH_ORDER), keyed by `deviceId`. `creds.update`
// carries the session's keys: only its `accountSettings` are forwarded, never the rest. A history chunk too large
// for one Kafka record goes as several (`historyPieces`), each chat with its own messages.
const { record, replacer, OrderedSender } = require('./envelope');

/** Events forwarded by default: Baileys 6.7 – 7 (`BaileysEventMap`), minus `creds.update`'s secrets. */
const EVENTS = [
  'messaging-history.set', 'chats.upsert', 'chats.update', 'chats.delete', 'lid-mapping.update',
  'messages.upsert', 'messages.update', 'messages.delete', 'messages.reaction', 'message-receipt.update',
  'groups.upsert', 'groups.update', 'group-participants.update', 'creds.update',
  'contacts.upsert', 'contacts.update', 'presence.update', 'call', 'labels.edit', 'labels.association',
];

/**
 * The order a buffered flush is forwarded in. Baileys' event buffer consolidates a batch
 * (src/Utils/event-buffer.ts, consolidateEvents) with `chats.update` / `chats.delete` keyed
 * before `messages.upsert`, but their chat updates are the batch's end state: forwarded
 * first, a message of the same batch would undo them (an own message reads the chat after a
 * `unreadCount: -1` mark, an incoming one lands in a chat already deleted). So: state from
 * history, chats, contacts and LID mappings; then messages and what acts on them; then group
 * changes and the rest; the chats' end state last, deletions after it.
 */
const FLUSH_ORDER = [
  'messaging-history.set', 'chats.upsert', 'contacts.upsert', 'contacts.update', 'lid-mapping.update',
  'messages.upsert', 'messages.update', 'messages.delete', 'message-receipt.update', 'messages.reaction',
  'groups.upsert', 'groups.update', 'group-participants.update',
  'creds.update', 'presence.update', 'call', 'labels.edit', 'labels.association',
  'chats.update', 'chats.delete',
];

/**
 * The largest record value sent (bytes of JSON): Kafka's default `message.max.bytes` is about
 * 1 MB, and a history chunk of a busy account (thumbnails as base64) is often larger. Whole
 * it would fail to send, and with it every chat's snapshot in the chunk.
 */
const MAX_RECORD_BYTES = 900 * 1024;

/** A Baileys timestamp (a number, a numeric string or a protobufjs Long as JSON) in seconds; 0 if unreadable. */
function epochSeconds(value) {
  if (value && typeof value === 'object' && 'low' in value) return (Number(value.high) || 0) * 2 ** 32 + ((Number(value.low) || 0) >>> 0);
  const number = Number(value);
  return Number.isFinite(number) ? number : 0;
}

/** `message` without thumbnails (`jpegThumbnail` anywhere in it): what the adapter reads of it stays. */
function withoutThumbnails(message) {
  return JSON.parse(JSON.stringify(message, (key, value) => (key === 'jpegThumbnail' ? undefined : value)));
}

/**
 * `messaging-history.set` data as pieces whose records stay under `maxBytes` (`overhead`: the
 * envelope around the data): LID–phone pairs first (the snapshots after them fold into the
 * right chats), then each chat with the chunk's messages of that chat (the adapter takes a
 * chat's newest message from the same record), chats in order, then the other lists
 * (contacts, past participants, messages of no listed chat). A chat whose messages are too
 * large keeps its newest ones (by `messageTimestamp`; the snapshot needs only the newest),
 * without thumbnails if need be, or none. What cannot fit a record even alone is left out
 * and reported to `onDrop` (the publisher's `onError`). Every piece keeps the chunk's scalar fields
 * (`syncType`, `progress`, ...); `isLatest` stays on the last piece. One piece, the data as it
 * is, when the whole fits.
 */
function historyPieces(data, { maxBytes = MAX_RECORD_BYTES, overhead = 512, onDrop = () => {} } = {}) {
  const size = (value) => Buffer.byteLength(JSON.stringify(value, replacer()));
  if (!data || typeof data !== 'object' || size(data) + overhead <= maxBytes) return [data];
  const { chats = [], messages = [], isLatest, ...rest } = data;
  const common = {};
  const lists = {};
  for (const [key, value] of Object.entries(rest)) {
    if (Array.isArray(value)) lists[key] = value;
    else common[key] = value;
  }
  // The piece's keys and brackets beside the items; each item adds itself and a comma.
  const budget = maxBytes - overhead - size({ ...common, chats: [], messages: [], isLatest: true }) - 64;
  const pieces = [];
  const packList = (key, items) => {
    let piece = { [key]: [] };
    let used = 0;
    for (const item of items) {
      const more = size(item) + 1;
      if (more > budget) {
        onDrop(`a ${key} item of ${more} bytes`); // larger than a record: it cannot be sent
        continue;
      }
      if (used + more > budget) {
        pieces.push(piece);
        piece = { [key]: [] };
        used = 0;
      }
      piece[key].push(item);
      used += more;
    }
    if (piece[key].length) pieces.push(piece);
  };
  if (lists.lidPnMappings) packList('lidPnMappings', lists.lidPnMappings);
  // A message belongs to the chat any of whose ids (id, pnJid, lidJid) its key names.
  const chatOf = new Map();
  chats.forEach((chat, index) => {
    for (const id of [chat && chat.id, chat && chat.pnJid, chat && chat.lidJid]) if (id && !chatOf.has(id)) chatOf.set(id, index);
  });
  const byChat = chats.map(() => []);
  const orphans = [];
  for (const message of messages) {
    const key = (message && message.key) || {};
    const index = [key.remoteJid, key.remoteJidAlt].map((jid) => chatOf.get(jid)).find((found) => found !== undefined);
    if (index === undefined) orphans.push(message);
    else byChat[index].push(message);
  }
  let current = { chats: [], messages: [] };
  let used = 0;
  for (const [index, chat] of chats.entries()) {
    let own = byChat[index];
    let cost = size(chat) + 1 + own.reduce((sum, message) => sum + size(message) + 1, 0);
    if (cost > budget) {
      // Newest first, as many as fit beside the chat.
      const kept = [];
      cost = size(chat) + 1;
      for (let message of [...own].sort((a, b) => epochSeconds(b.messageTimestamp) - epochSeconds(a.messageTimestamp))) {
        if (kept.length === 0 && cost + size(message) + 1 > budget) message = withoutThumbnails(message);
        const more = size(message) + 1;
        if (cost + more > budget) break;
        kept.push(message);
        cost += more;
      }
      own = kept;
      if (cost > budget) {
        onDrop(`chat ${chat && chat.id} of ${cost} bytes`); // the chat alone is larger than a record
        continue;
      }
    }
    if (used + cost > budget) {
      pieces.push(current);
      current = { chats: [], messages: [] };
      used = 0;
    }
    current.chats.push(chat);
    current.messages.push(...own);
    used += cost;
  }
  if (current.chats.length) pieces.push(current);
  for (const [key, items] of Object.entries(lists)) if (key !== 'lidPnMappings') packList(key, items);
  packList('messages', orphans);
  return pieces.map((piece, index) => ({
    chats: [], messages: [], ...common, ...piece, ...(index === pieces.length - 1 && isLatest !== undefined ? { isLatest } : {}),
  }));
}

/** What of `creds.update` may leave the process: the account settings, nothing else. */
function credsUpdateForChatLedger(update) {
  if (!update || !update.accountSettings) return null;
  return { accountSettings: update.accountSettings };
}

/** Baileys' `jidNormalizedUser`: the device suffix dropped (`user:4@server` → `user@server`), `c.us` as `s.whatsapp.net`. */
function normalizedUser(jid) {
  if (typeof jid !== 'string') return '';
  const at = jid.indexOf('@');
  if (at < 0) return jid;
  const user = jid.slice(0, at).split(':')[0];
  const server = jid.slice(at + 1);
  return `${user}@${server === 'c.us' ? 's.whatsapp.net' : server}`;
}

/** Wrappers `normalizeMessageContent` opens (src/Utils/messages.ts). */
const CONTENT_WRAPPERS = ['ephemeralMessage', 'viewOnceMessage', 'documentWithCaptionMessage', 'viewOnceMessageV2',
  'viewOnceMessageV2Extension', 'editedMessage', 'groupMentionedMessage', 'botInvokeMessage', 'lottieStickerMessage',
  'eventCoverImage', 'statusMentionMessage', 'pollCreationOptionImageMessage', 'associatedChildMessage',
  'groupStatusMentionMessage', 'pollCreationMessageV4', 'pollCreationMessageV5', 'statusAddYours', 'groupStatusMessage',
  'limitSharingMessage', 'botTaskMessage', 'questionMessage', 'groupStatusMessageV2', 'botForwardedMessage'];
const NOT_CONTENT = new Set(['messageContextInfo', 'senderKeyDistributionMessage', 'fastRatchetKeySenderKeyDistributionMessage']);

/** Whether Baileys counted `message` in its chat's unread count when it processed it (`processMessage`:
 * `isRealMessage` and `shouldIncrementChatUnread`: content other than a protocol message, reaction or
 * poll vote, not the account's own, not a notice). */
function countedUnread(message) {
  if (!message || !message.key || message.key.fromMe || message.messageStubType) return false;
  let content = message.message;
  for (let depth = 0; content && typeof content === 'object' && depth < 8; depth += 1) {
    const wrapper = CONTENT_WRAPPERS.find((name) => content[name] && content[name].message);
    if (!wrapper) break;
    content = content[wrapper].message;
  }
  if (!content || typeof content !== 'object') return false;
  const types = Object.keys(content).filter((name) => !NOT_CONTENT.has(name) && content[name] != null);
  return types.length > 0 && !content.protocolMessage && !content.reactionMessage && !content.pollUpdateMessage;
}

/**
 * A buffered flush's history chats without the live messages of the same flush in their
 * `unreadCount`. Baileys' buffer adds each live incoming message's `chats.update {unreadCount: 1}`
 * into the history chat (src/Utils/event-buffer.ts, `concatChats`), and the message itself is in
 * the flush's `messages.upsert`, which ChatLedger counts: counted twice otherwise. A marked-unread
 * chat (`-1`) keeps its mark. Returns `history` itself when nothing changes.
 */
function historyWithoutLiveCounts(history, upsert) {
  const chats = history && Array.isArray(history.chats) ? history.chats : [];
  const messages = upsert && Array.isArray(upsert.messages) ? upsert.messages : [];
  if (chats.length === 0 || messages.length === 0) return history;
  const live = new Map();
  for (const message of messages) {
    if (!countedUnread(message)) continue;
    const key = message.key;
    // Baileys' `getChatId`: a broadcast list's message is filed under its sender; status posts are no chat's.
    if (key.remoteJid === 'status@broadcast') continue;
    const chat = normalizedUser(typeof key.remoteJid === 'string' && key.remoteJid.endsWith('@broadcast') && key.participant ? key.participant : key.remoteJid);
    live.set(chat, (live.get(chat) || 0) + 1);
  }
  if (live.size === 0) return history;
  let changed = false;
  const adjusted = chats.map((chat) => {
    const count = live.get(normalizedUser(chat && chat.id));
    const unread = chat && typeof chat.unreadCount === 'number' ? chat.unreadCount : Number(chat && chat.unreadCount);
    if (!count || !Number.isFinite(unread) || unread <= 0) return chat;
    changed = true;
    return { ...chat, unreadCount: Math.max(0, unread - count) };
  });
  return changed ? { ...history, chats: adjusted } : history;
}

/**
 * Forwards `sock`'s events. Options: `producer` (kafkajs-like), `topic`, `deviceId`,
 * `skip` (event names not to forward, e.g. ['presence.update'] on busy accounts),
 * `onError`. Returns the sender (`flush()`, counters) and `detach()`.
 */
function attachBaileysPublisher(sock, { producer, topic = 'wa.baileys', deviceId, skip = [], onError, now } = {}) {
  if (!deviceId) throw new Error('deviceId is required');
  const sender = new OrderedSender({ producer, topic, onError });
  const skipped = new Set(skip);
  const me = () => (sock.user ? { id: sock.user.id, lid: sock.user.lid } : undefined);
  const forward = (event, data) => {
    if (skipped.has(event)) return;
    if (event === 'creds.update') {
      data = credsUpdateForChatLedger(data);
      if (!data) return;
    }
    const envelope = (piece) => record({ event, deviceId, me: me(), body: { data: piece }, now });
    const overhead = Buffer.byteLength(envelope({}).value) + 32; // the timestamp may grow a digit
    const onDrop = (what) => sender.onError(new Error(`messaging-history.set: ${what} exceeds a Kafka record; left out`));
    const pieces = event === 'messaging-history.set' ? historyPieces(data, { overhead, onDrop }) : [data];
    for (const piece of pieces) sender.enqueue(envelope(piece));
  };
  let detach;
  if (typeof sock.ev.process === 'function') {
    // Baileys' buffered emitter: one call per flush, forwarded in FLUSH_ORDER (not Baileys' key order).
    const remove = sock.ev.process(async (events) => {
      for (const event of FLUSH_ORDER) {
        if (!(event in events)) continue;
        const data = event === 'messaging-history.set' ? historyWithoutLiveCounts(events[event], events['messages.upsert']) : events[event];
        forward(event, data);
      }
    });
    detach = typeof remove === 'function' ? remove : () => {};
  } else {
    const listeners = EVENTS.map((event) => [event, (data) => forward(event, data)]);
    for (const [event, listener] of listeners) sock.ev.on(event, listener);
    detach = () => { for (const [event, listener] of listeners) sock.ev.off(event, listener); };
  }
  return { sender, detach };
}

module.exports = { attachBaileysPublisher, credsUpdateForChatLedger, historyPieces, historyWithoutLiveCounts, epochSeconds, EVENTS, FLUSH_ORDER, MAX_RECORD_BYTES };
