'use strict';
// ChatLedger's envelope for library events (schemas/bridge-envelopes.md), shared by the
// Baileys and whatsapp-web.js publishers: one Kafka record per emitted event (a Baileys
// history chunk too large for one record as several, `historyPieces` in baileys.js), key the
// device id, value {event, deviceId, me, timestamp, data | args}.

/** JSON.stringify replacer: binary (Buffer, Uint8Array) as base64 text instead of byte arrays;
 *  `dropKeys` (e.g. wwebjs' raw `_data`) left out. */
function replacer(dropKeys = []) {
  const drop = new Set(dropKeys);
  return function (key, value) {
    if (drop.has(key)) return undefined;
    if (value && value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data).toString('base64');
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    return value;
  };
}

/** The Kafka message for one event. `body` is `{data}` (Baileys) or `{args}` (wwebjs). */
function record({ event, deviceId, me, body, now = Date.now, dropKeys }) {
  const envelope = { event, deviceId, timestamp: now(), ...body };
  if (me !== undefined && me !== null) envelope.me = me;
  return { key: deviceId, value: JSON.stringify(envelope, replacer(dropKeys)), timestamp: String(envelope.timestamp) };
}

/**
 * Sends records one after another, in the order given, so that one device's events reach
 * its partition in the order the library emitted them. `producer` is a kafkajs producer
 * (`send({topic, messages})`) or anything with that method (see `fromRdkafka`). A failed
 * send is passed to `onError` and the next record still goes (the bridge keeps running);
 * `flush()` resolves when everything queued so far was handed over.
 */
class OrderedSender {
  constructor({ producer, topic, onError = (error) => console.error('chatledger publisher:', error.message) }) {
    if (!producer || typeof producer.send !== 'function') throw new Error('producer must have send({topic, messages})');
    if (!topic) throw new Error('topic is required');
    this.producer = producer;
    this.topic = topic;
    this.onError = onError;
    this.tail = Promise.resolve();
    this.sent = 0;
    this.failed = 0;
  }

  enqueue(message) {
    this.tail = this.tail
      .then(() => this.producer.send({ topic: this.topic, messages: [message] }))
      .then(() => { this.sent += 1; }, (error) => { this.failed += 1; this.onError(error); });
    return this.tail;
  }

  flush() { return this.tail; }
}

/** A node-rdkafka `Producer` (connected) as a producer with kafkajs' `send`. */
function fromRdkafka(producer) {
  return {
    send({ topic, messages }) {
      for (const message of messages) {
        producer.produce(topic, null, Buffer.from(message.value), message.key, Number(message.timestamp));
      }
      return Promise.resolve();
    },
  };
}

/** Configuration from the environment: KAFKA_BROKERS (comma-separated), CHATLEDGER_TOPIC,
 *  CHATLEDGER_DEVICE_ID, optional KAFKA_SASL_MECHANISM/USERNAME/PASSWORD and KAFKA_SSL=true. */
function configFromEnv(env = process.env, defaultTopic) {
  const brokers = (env.KAFKA_BROKERS || 'localhost:9092').split(',').map((s) => s.trim()).filter(Boolean);
  const config = {
    brokers,
    topic: env.CHATLEDGER_TOPIC || defaultTopic,
    deviceId: env.CHATLEDGER_DEVICE_ID,
    ssl: env.KAFKA_SSL === 'true',
  };
  if (env.KAFKA_SASL_MECHANISM) {
    config.sasl = { mechanism: env.KAFKA_SASL_MECHANISM, username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD };
  }
  if (!config.deviceId) throw new Error('CHATLEDGER_DEVICE_ID is required (the device this session is)');
  return config;
}

/** A connected kafkajs producer for `config` (needs `npm install kafkajs` in the bot). */
async function kafkajsProducer(config) {
  const { Kafka } = require('kafkajs');
  const kafka = new Kafka({ clientId: 'chatledger-bridge', brokers: config.brokers, ssl: config.ssl, sasl: config.sasl });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return producer;
}

module.exports = { record, replacer, OrderedSender, fromRdkafka, configFromEnv, kafkajsProducer };
