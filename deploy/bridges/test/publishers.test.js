'use strict';
// The publishers against a stubbed library emitter and a stubbed producer: `node --test deploy/bridges/test/`.
const test = require('node:test');
const assert = require('node:assert/strict');
const { baileysSession, wwebjsSession } = require('../testing/scenario');
const { configFromEnv, fromRdkafka, OrderedSender } = require('../envelope');

test('baileys: one record per event in emit order, keyed by the device, in the envelope', async () => {
  for (const buffered of [true, false]) {
    const sent = await baileysSession({ buffered });
    const envelopes = sent.map((record) => JSON.parse(record.value));
    assert.deepEqual(envelopes.map((e) => e.event), [
      'messaging-history.set', 'messages.upsert', 'chats.update', 'presence.update', 'creds.update', 'chats.update', 'messages.update',
    ], `buffered ${buffered}`);
    for (const [index, record] of sent.entries()) {
      assert.equal(record.topic, 'wa.baileys');
      assert.equal(record.key, 'shop-1');
      assert.equal(envelopes[index].deviceId, 'shop-1');
      assert.equal(envelopes[index].timestamp, 1767366800000);
      assert.deepEqual(envelopes[index].me, { id: '5511999990000:4@s.whatsapp.net', lid: '99887766554433:4@lid' });
      assert.ok('data' in envelopes[index]);
    }
    const upsert = envelopes[1].data.messages[0];
    assert.deepEqual(upsert.messageTimestamp, { low: 1767366770, high: 0, unsigned: true }, 'Longs as Baileys has them');
    assert.equal(upsert.message.imageMessage.jpegThumbnail, '/9j/', 'binary as base64, not a byte array');
  }
});

test('baileys: a buffered flush (chats keyed before messages, as Baileys consolidates it) is forwarded with the chats\' end state last', async () => {
  const { StubBaileysEvents, stubProducer, CONSOLIDATED_ORDER } = require('../testing/scenario');
  const { attachBaileysPublisher, EVENTS, FLUSH_ORDER } = require('../baileys');
  assert.deepEqual([...FLUSH_ORDER].sort(), [...EVENTS].sort(), 'every forwarded event has its place');
  const producer = stubProducer();
  const ev = new StubBaileysEvents();
  const { sender } = attachBaileysPublisher({ user: { id: '5511999990000:4@s.whatsapp.net' }, ev }, { producer, deviceId: 'shop-1', now: () => 1 });
  const batch = Object.fromEntries(CONSOLIDATED_ORDER.map((event) => [event, []]));
  ev.flush({ ...batch, 'group-participants.update': { id: '120363041234567890@g.us', action: 'add', participants: [] }, 'lid-mapping.update': [] });
  await sender.flush();
  assert.deepEqual(Object.keys(ev.lastBatch).slice(0, 5), ['messaging-history.set', 'chats.upsert', 'chats.update', 'chats.delete', 'messages.upsert'], 'fixture check: the stub keys a flush as Baileys\' consolidateEvents does (event-buffer.ts)');
  assert.deepEqual(producer.sent.map((record) => JSON.parse(record.value).event), [
    'messaging-history.set', 'chats.upsert', 'contacts.upsert', 'contacts.update', 'lid-mapping.update',
    'messages.upsert', 'messages.update', 'messages.delete', 'message-receipt.update', 'messages.reaction',
    'groups.update', 'group-participants.update', 'chats.update', 'chats.delete',
  ]);
});

test('baileys: creds.update never carries key material; only accountSettings leave the process', async () => {
  const sent = await baileysSession();
  const creds = sent.map((r) => JSON.parse(r.value)).filter((e) => e.event === 'creds.update');
  assert.deepEqual(creds.map((e) => e.data), [{ accountSettings: { unarchiveChats: false } }]);
  assert.ok(!sent.some((r) => r.value.includes('secret-key-material') || r.value.includes('noiseKey')));
});

test('wwebjs: listener arguments as args, client and _data left out, QR codes never forwarded', async () => {
  const sent = await wwebjsSession();
  const envelopes = sent.map((record) => JSON.parse(record.value));
  assert.deepEqual(envelopes.map((e) => e.event), [
    'message_create', 'message', 'unread_count', 'unread_count', 'chat_archived', 'message_revoke_everyone',
  ]);
  assert.ok(sent.every((r) => r.key === 'shop-1' && r.topic === 'wa.wwebjs'));
  assert.ok(envelopes.every((e) => e.me === '5511999990000@c.us' && Array.isArray(e.args)));
  assert.deepEqual(envelopes[4].args.slice(1), [true, false], 'chat_archived: chat, currState, prevState');
  assert.ok(!sent.some((r) => r.value.includes('_data') || r.value.includes('"client"')));
  assert.ok(!sent.some((r) => r.value.includes('secret-pairing-code')));
});

test('ordered sender: a failed send is reported and the next still goes, in order', async () => {
  const sent = [];
  const errors = [];
  let calls = 0;
  const producer = { send: async ({ messages }) => { calls += 1; if (calls === 2) throw new Error('broker down'); sent.push(messages[0].value); } };
  const sender = new OrderedSender({ producer, topic: 't', onError: (e) => errors.push(e.message) });
  for (const value of ['1', '2', '3']) sender.enqueue({ key: 'k', value });
  await sender.flush();
  assert.deepEqual(sent, ['1', '3']);
  assert.deepEqual(errors, ['broker down']);
  assert.equal(sender.failed, 1);
});

test('configuration from the environment; node-rdkafka producers wrapped', async () => {
  assert.throws(() => configFromEnv({}, 'wa.baileys'), /CHATLEDGER_DEVICE_ID/);
  const config = configFromEnv({ KAFKA_BROKERS: 'a:9092, b:9092', CHATLEDGER_DEVICE_ID: 'shop-1', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, 'wa.baileys');
  assert.deepEqual(config.brokers, ['a:9092', 'b:9092']);
  assert.equal(config.topic, 'wa.baileys');
  assert.equal(config.sasl.username, 'u');
  const produced = [];
  const producer = fromRdkafka({ produce: (...args) => produced.push(args) });
  await producer.send({ topic: 't', messages: [{ key: 'shop-1', value: '{}', timestamp: '5' }] });
  assert.deepEqual(produced[0].slice(0, 2), ['t', null]);
  assert.equal(produced[0][3], 'shop-1');
  assert.equal(produced[0][4], 5);
});

test('baileys: a history chunk too large for one Kafka record goes as several: pairs first, each chat beside its own messages, every record under the limit', async () => {
  const { StubBaileysEvents, stubProducer } = require('../testing/scenario');
  const { attachBaileysPublisher, historyPieces, MAX_RECORD_BYTES } = require('../baileys');
  const thumbnail = Buffer.alloc(30_000, 7); // 40 KB as base64, as Baileys' jpegThumbnail
  const chats = [];
  const messages = [];
  for (let c = 0; c < 60; c += 1) {
    const id = `55119${String(c).padStart(8, '0')}@s.whatsapp.net`;
    chats.push({ id, unreadCount: c % 3, conversationTimestamp: 1767366000 + c });
    for (let m = 0; m < 3; m += 1) {
      messages.push({
        key: { remoteJid: id, fromMe: false, id: `M${c}-${m}` },
        messageTimestamp: { low: 1767366000 + c * 10 + m, high: 0, unsigned: true },
        message: { imageMessage: { caption: `c${c} m${m}`, jpegThumbnail: thumbnail } },
      });
    }
  }
  // A chat whose messages alone exceed a record keeps its newest ones (a Long past 2^31 is
  // newer, not negative).
  const big = '5511988887777@s.whatsapp.net';
  chats.push({ id: big, unreadCount: 40, conversationTimestamp: 1767369999 });
  for (let m = 0; m < 40; m += 1) {
    messages.push({ key: { remoteJid: big, fromMe: false, id: `B${m}` }, messageTimestamp: 1767369000 + m, message: { imageMessage: { jpegThumbnail: thumbnail } } });
  }
  messages.push({ key: { remoteJid: big, fromMe: false, id: 'B2038' }, messageTimestamp: { low: -2147483000, high: 0, unsigned: true }, message: { conversation: 'after 2038' } });
  // A chat whose one message is larger than a record: it goes without the thumbnail.
  const huge = '5511977776666@s.whatsapp.net';
  chats.push({ id: huge, unreadCount: 1, conversationTimestamp: 1767369998 });
  messages.push({ key: { remoteJid: huge, fromMe: false, id: 'H1' }, messageTimestamp: 1767369998, message: { imageMessage: { caption: 'big', jpegThumbnail: Buffer.alloc(1_000_000, 1) } } });
  const lidPnMappings = [{ lid: '140913951141911@lid', pn: big }];
  const pastParticipants = Array.from({ length: 30_000 }, (_, i) => ({ groupJid: '120363041234567890@g.us', pastParticipants: [{ userJid: `4917${i}@s.whatsapp.net`, leaveReason: 0 }] }));
  const data = { chats, messages, contacts: [{ id: big, name: 'Ana' }], lidPnMappings, pastParticipants, syncType: 3, progress: 40, isLatest: true };

  const producer = stubProducer();
  const ev = new StubBaileysEvents();
  const errors = [];
  const deviceId = 'shop-'.padEnd(128, 'x');
  const { sender } = attachBaileysPublisher({ user: { id: '5511999990000:4@s.whatsapp.net' }, ev }, { producer, deviceId, now: () => 1, onError: (error) => errors.push(error.message) });
  ev.flush({ 'messaging-history.set': data });
  await sender.flush();
  const envelopes = producer.sent.map((record) => JSON.parse(record.value));
  assert.ok(envelopes.length > 5, `split into ${envelopes.length} records`);
  for (const record of producer.sent) assert.ok(Buffer.byteLength(record.value) <= MAX_RECORD_BYTES, `${Buffer.byteLength(record.value)} bytes`);
  assert.ok(envelopes.every((e) => e.event === 'messaging-history.set' && e.data.syncType === 3 && e.data.progress === 40));
  assert.deepEqual(envelopes.map((e) => e.data.isLatest === true), envelopes.map((_, i) => i === envelopes.length - 1), 'isLatest on the last piece only');
  assert.deepEqual(envelopes[0].data.lidPnMappings, lidPnMappings, 'the pairs before any chat they name');
  assert.equal(envelopes[0].data.chats.length, 0);
  assert.deepEqual(envelopes.flatMap((e) => e.data.chats.map((chat) => chat.id)), chats.map((chat) => chat.id), 'every chat once, in order');
  for (const envelope of envelopes) {
    const ids = new Set(envelope.data.chats.map((chat) => chat.id));
    for (const message of envelope.data.messages) assert.ok(ids.has(message.key.remoteJid), 'a chat\'s messages travel with it');
  }
  const kept = envelopes.flatMap((e) => e.data.messages).filter((message) => message.key.remoteJid === big).map((message) => message.key.id);
  assert.ok(kept.includes('B2038') && kept.includes('B39') && kept.length < 41, `the big chat keeps its newest messages: ${kept}`);
  const bigOne = envelopes.flatMap((e) => e.data.messages).find((message) => message.key.id === 'H1');
  assert.deepEqual(bigOne && bigOne.message, { imageMessage: { caption: 'big' } }, 'a message too big for a record goes without its thumbnail');
  assert.equal(envelopes.flatMap((e) => e.data.messages).filter((message) => message.key.id.startsWith('M')).length, 180, 'every other message goes');
  assert.deepEqual(envelopes.flatMap((e) => e.data.contacts || []), data.contacts);
  assert.equal(envelopes.flatMap((e) => e.data.pastParticipants || []).length, pastParticipants.length, 'past participants in pieces of their own');
  assert.deepEqual(errors, []);
  assert.deepEqual(historyPieces({ chats: [{ id: big }], messages: [] }), [{ chats: [{ id: big }], messages: [] }], 'a chunk that fits goes whole, as it is');
  const dropped = [];
  historyPieces({ chats: [], messages: [], contacts: [{ id: big, blob: 'x'.repeat(MAX_RECORD_BYTES) }] }, { onDrop: (what) => dropped.push(what) });
  assert.equal(dropped.length, 1, 'what no record can hold is reported, not lost silently');
});

test('baileys: a flush with history and live messages of the same chat: the history count leaves out what the live messages add (Baileys merged their increments into it)', async () => {
  const { StubBaileysEvents, stubProducer } = require('../testing/scenario');
  const { attachBaileysPublisher } = require('../baileys');
  const producer = stubProducer();
  const ev = new StubBaileysEvents();
  const { sender } = attachBaileysPublisher({ user: { id: '5511999990000:4@s.whatsapp.net' }, ev }, { producer, deviceId: 'shop-1', now: () => 1 });
  const incoming = (id, jid, extra = {}) => ({ key: { remoteJid: jid, id, fromMe: false }, message: { conversation: 'hi' }, messageTimestamp: 1767366900, ...extra });
  ev.flush({
    'messaging-history.set': {
      // Ana: 2 unread in history + 1 live increment Baileys merged; Bo: marked unread; Cy: no live message.
      chats: [{ id: '491701234567@s.whatsapp.net', unreadCount: 3 }, { id: '491709999999@s.whatsapp.net', unreadCount: -1 }, { id: '491708888888@s.whatsapp.net', unreadCount: 4 }],
      contacts: [], messages: [], syncType: 0,
    },
    'messages.upsert': {
      type: 'notify',
      messages: [
        incoming('L1', '491701234567:2@s.whatsapp.net'),
        { key: { remoteJid: '491701234567@s.whatsapp.net', id: 'L2', fromMe: true }, message: { conversation: 'own' } },
        { key: { remoteJid: '491701234567@s.whatsapp.net', id: 'L3', fromMe: false }, message: { reactionMessage: { key: { id: 'L1' }, text: '👍' } } },
        incoming('L4', '491709999999@s.whatsapp.net'),
        // A status post by Cy is no message of Cy's chat.
        { key: { remoteJid: 'status@broadcast', participant: '491708888888@s.whatsapp.net', id: 'S1', fromMe: false }, message: { conversation: 'story' } },
      ],
    },
  });
  await sender.flush();
  const history = JSON.parse(producer.sent[0].value);
  assert.equal(history.event, 'messaging-history.set');
  assert.deepEqual(history.data.chats.map((chat) => chat.unreadCount), [2, -1, 4], 'only what the live incoming messages added is taken out');
});
