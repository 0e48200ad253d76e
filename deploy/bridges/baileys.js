'use strict';
// Forwards every Baileys event of a socket to Kafka in ChatLedger's `baileys` envelope
// (schemas/bridge-envelopes.md), for `chatledger adapt --format baileys`.
//
//   const { attachBaileysPublisher } = require('./chatledger/baileys');
//   const sock = makeWASocket({ ... });               // your bot, unchanged
//   attachBaileysPublisher(sock, { producer, topic: 'wa.baileys', deviceId: 'shop-1' });
//
// Records are sent one after another in emit order (a buffered flush in FLUSH_ORDER), keyed by `deviceId`. `creds.update`
// carries the session's keys: only its `accountSettings` are forwarded, never the rest.
const { record, OrderedSender } = require('./envelope');

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

/** What of `creds.update` may leave the process: the account settings, nothing else. */
function credsUpdateForChatLedger(update) {
  if (!update || !update.accountSettings) return null;
  return { accountSettings: update.accountSettings };
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
    sender.enqueue(record({ event, deviceId, me: me(), body: { data }, now }));
  };
  let detach;
  if (typeof sock.ev.process === 'function') {
    // Baileys' buffered emitter: one call per flush, forwarded in FLUSH_ORDER (not Baileys' key order).
    const remove = sock.ev.process(async (events) => {
      for (const event of FLUSH_ORDER) if (event in events) forward(event, events[event]);
    });
    detach = typeof remove === 'function' ? remove : () => {};
  } else {
    const listeners = EVENTS.map((event) => [event, (data) => forward(event, data)]);
    for (const [event, listener] of listeners) sock.ev.on(event, listener);
    detach = () => { for (const [event, listener] of listeners) sock.ev.off(event, listener); };
  }
  return { sender, detach };
}

module.exports = { attachBaileysPublisher, credsUpdateForChatLedger, EVENTS, FLUSH_ORDER };
