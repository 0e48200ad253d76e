'use strict';
// Forwards a whatsapp-web.js client's events to Kafka in ChatLedger's `wwebjs` envelope
// (schemas/bridge-envelopes.md), for `chatledger adapt --format wwebjs`.
//
//   const { attachWWebJSPublisher } = require('./chatledger/wwebjs');
//   const client = new Client({ ... });               // your bot, unchanged
//   attachWWebJSPublisher(client, { producer, topic: 'wa.wwebjs', deviceId: 'shop-1' });
//
// Each listener's arguments go as `args`, serialised as whatsapp-web.js serialises its
// structures, without the raw `_data` WA Web model (large, and nothing ChatLedger reads).
// `qr`, `authenticated` and `auth_failure` are never forwarded: a QR code links a device.
const { record, OrderedSender } = require('./envelope');

/** Events forwarded (`Events` in src/util/Constants.js that concern chats and messages). */
const EVENTS = [
  'message', 'message_create', 'message_ack', 'message_revoke_everyone', 'message_revoke_me', 'message_edit',
  'message_reaction', 'message_ciphertext', 'unread_count', 'chat_archived', 'chat_removed', 'group_join',
  'group_leave', 'group_admin_changed', 'group_update', 'group_membership_request', 'contact_changed',
  'vote_update', 'change_state', 'ready', 'disconnected',
];

/**
 * Forwards `client`'s events. Options: `producer` (kafkajs-like), `topic`, `deviceId`,
 * `skip` (event names not to forward; `message` repeats `message_create` and may be
 * skipped), `onError`. Returns the sender (`flush()`, counters) and `detach()`.
 */
function attachWWebJSPublisher(client, { producer, topic = 'wa.wwebjs', deviceId, skip = [], onError, now } = {}) {
  if (!deviceId) throw new Error('deviceId is required');
  const sender = new OrderedSender({ producer, topic, onError });
  const skipped = new Set(skip);
  const me = () => (client.info && client.info.wid ? client.info.wid._serialized : undefined);
  const listeners = EVENTS.filter((event) => !skipped.has(event)).map((event) => [
    event,
    (...args) => sender.enqueue(record({ event, deviceId, me: me(), body: { args }, now, dropKeys: ['_data'] })),
  ]);
  for (const [event, listener] of listeners) client.on(event, listener);
  const detach = () => { for (const [event, listener] of listeners) client.removeListener(event, listener); };
  return { sender, detach };
}

module.exports = { attachWWebJSPublisher, EVENTS };
