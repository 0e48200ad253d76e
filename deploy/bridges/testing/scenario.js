'use strict';
// A short session of each library, driven through the publishers with a stubbed library
// event emitter and a stubbed Kafka producer (no broker, no WhatsApp). `node
// test/emit-records.js baileys|wwebjs` prints the records as NDJSON for ChatLedger's
// adapter tests; `node --test test/` checks the publishers themselves.
const { EventEmitter } = require('node:events');
const { attachBaileysPublisher } = require('../baileys');
const { attachWWebJSPublisher } = require('../wwebjs');

/** A producer that records what it is given, answering after a random delay (as a broker
 *  would), so that a publisher that does not keep order would show it. */
function stubProducer() {
  const sent = [];
  return {
    sent,
    send({ topic, messages }) {
      return new Promise((resolve) => setTimeout(() => {
        for (const message of messages) sent.push({ topic, ...message });
        resolve();
      }, Math.floor(Math.random() * 4)));
    },
  };
}

/** The key order of a flushed batch: Baileys' consolidateEvents (src/Utils/event-buffer.ts
 *  @78e7e4e2, ~645-725), chats before messages; events that are never buffered come alone. */
const CONSOLIDATED_ORDER = [
  'messaging-history.set', 'chats.upsert', 'chats.update', 'chats.delete', 'messages.upsert', 'messages.update',
  'messages.delete', 'messages.reaction', 'message-receipt.update', 'contacts.upsert', 'contacts.update', 'groups.update',
];

/** Baileys' buffered event emitter, reduced: `process(handler)` gets each flush's events,
 *  keyed in consolidateEvents' order whatever order the session lists them in. */
class StubBaileysEvents extends EventEmitter {
  process(handler) {
    this.handlers = (this.handlers || []).concat(handler);
    return () => { this.handlers = this.handlers.filter((h) => h !== handler); };
  }
  flush(events) {
    const batch = {};
    for (const event of CONSOLIDATED_ORDER) if (event in events) batch[event] = events[event];
    for (const event of Object.keys(events)) if (!(event in batch)) batch[event] = events[event];
    this.lastBatch = batch;
    for (const handler of this.handlers || []) handler(batch);
  }
}

const long = (value) => ({ low: value, high: 0, unsigned: true });  // protobufjs Long, as JSON

async function baileysSession({ buffered = true } = {}) {
  const producer = stubProducer();
  const ev = buffered ? new StubBaileysEvents() : new EventEmitter();
  const sock = { user: { id: '5511999990000:4@s.whatsapp.net', lid: '99887766554433:4@lid', name: 'Shop' }, ev };
  const { sender } = attachBaileysPublisher(sock, { producer, topic: 'wa.baileys', deviceId: 'shop-1', now: () => 1767366800000 });
  const emit = (events) => (buffered ? ev.flush(events) : Object.entries(events).forEach(([name, data]) => ev.emit(name, data)));
  const ana = { remoteJid: '140913951141911@lid', remoteJidAlt: '491701234567@s.whatsapp.net', fromMe: false, addressingMode: 'lid' };
  emit({
    'messaging-history.set': {
      chats: [{ id: '491701234567@s.whatsapp.net', name: 'Ana', unreadCount: 2, conversationTimestamp: long(1767366000), archived: false }],
      contacts: [], messages: [], lidPnMappings: [{ lid: '140913951141911@lid', pn: '491701234567@s.whatsapp.net' }],
      syncType: 0, isLatest: true,
    },
  });
  emit({
    'messages.upsert': {
      type: 'notify',
      messages: [{
        key: { ...ana, id: 'A1' }, messageTimestamp: long(1767366770), pushName: 'Ana',
        message: { imageMessage: { caption: 'look', jpegThumbnail: Buffer.from([0xff, 0xd8, 0xff]) }, messageContextInfo: {} },
      }],
    },
    'chats.update': [{ id: '140913951141911@lid', conversationTimestamp: 1767366770, unreadCount: 1 }],
  });
  emit({ 'presence.update': { id: '140913951141911@lid', presences: {} } });
  emit({ 'creds.update': { noiseKey: { private: Buffer.from('secret-key-material') }, me: { id: 'x' } } });
  emit({ 'creds.update': { accountSettings: { unarchiveChats: false } } });
  emit({ 'chats.update': [{ id: '140913951141911@lid', unreadCount: 0 }, { id: '140913951141911@lid', pinned: 1767366900000 }] });
  emit({ 'messages.update': [{ key: { remoteJid: '140913951141911@lid', fromMe: false, id: 'A1' }, update: { message: null, messageStubType: 1 } }] });
  await sender.flush();
  return producer.sent;
}

/** A wwebjs structure: its fields enumerable, `client` not (as whatsapp-web.js defines it). */
function structure(fields, client) {
  const object = { ...fields };
  Object.defineProperty(object, 'client', { value: client, enumerable: false });
  return object;
}

async function wwebjsSession() {
  const producer = stubProducer();
  const client = new EventEmitter();
  client.info = { wid: { _serialized: '5511999990000@c.us', user: '5511999990000', server: 'c.us' } };
  const { sender } = attachWWebJSPublisher(client, { producer, topic: 'wa.wwebjs', deviceId: 'shop-1', now: () => 1767366800000 });
  const message = structure({
    id: { fromMe: false, remote: '491701234567@c.us', id: '3A1', _serialized: 'false_491701234567@c.us_3A1' },
    ack: 0, hasMedia: false, body: 'hi', type: 'chat', timestamp: 1767366770, from: '491701234567@c.us', to: '5511999990000@c.us',
    fromMe: false, isStatus: false, _data: { body: 'hi', t: 1767366770, huge: 'x'.repeat(1000) },
  }, client);
  const chat = structure({
    id: { server: 'c.us', user: '491701234567', _serialized: '491701234567@c.us' }, name: 'Ana', isGroup: false, isReadOnly: false,
    unreadCount: 1, timestamp: 1767366770, archived: false, pinned: false, isMuted: false, muteExpiration: 0, lastMessage: message,
  }, client);
  client.emit('qr', '2@secret-pairing-code');
  client.emit('message_create', message);
  client.emit('message', message);
  client.emit('unread_count', chat);
  client.emit('unread_count', structure({ ...chat, unreadCount: 0 }, client));
  client.emit('chat_archived', chat, true, false);
  // The revoke notice has an id of its own; protocolMessageKey names the revoked message (Message.js).
  const notice = { ...message, id: { ...message.id, id: 'REV1', _serialized: 'false_491701234567@c.us_REV1' }, type: 'revoked', body: '', protocolMessageKey: message.id };
  client.emit('message_revoke_everyone', structure(notice, client), message);
  await sender.flush();
  return producer.sent;
}

module.exports = { baileysSession, wwebjsSession, stubProducer, StubBaileysEvents, CONSOLIDATED_ORDER };
