'use strict';
// Prints the records a publisher would send in testing/scenario.js's session, one JSON line
// each ({topic, key, value}), for ChatLedger's adapter tests: `node testing/emit-records.js baileys`.
const { baileysSession, wwebjsSession } = require('./scenario');

(async () => {
  const format = process.argv[2];
  const records = format === 'baileys' ? await baileysSession() : format === 'wwebjs' ? await wwebjsSession() : null;
  if (!records) {
    console.error('usage: node testing/emit-records.js baileys|wwebjs');
    process.exit(64);
  }
  for (const { topic, key, value } of records) process.stdout.write(JSON.stringify({ topic, key, value }) + '\n');
})();
