// A querator producer with node-postgres: COUNT items to QUEUE, JSON objects and
// binary buffers in turn, BATCH items per call. Connection settings come from the
// PG* environment variables, as libpq reads them (PGHOST, PGPORT, PGDATABASE, PGUSER...).
//
// Parameters go untyped (node-postgres sends them as text with no type): each
// querator name used here has one signature, so PostgreSQL gives every parameter
// the type the name declares. No casts needed.
//
// Prints "produced <id> <json|bytes> <md5 of the payload bytes>" for each item.
'use strict';

const crypto = require('crypto');
const { Pool } = require('pg');

const queue = process.env.QUEUE || 'jobs';
const count = Number(process.env.COUNT || 1000);
const batchSize = Number(process.env.BATCH || 50);
const producerName = process.env.PRODUCER_NAME || `producer-${process.pid}`;

// A producer holds a connection only for one short call; 2 is plenty here. A pool
// shared with long-polling consumers must be bigger (see consumer.js).
const pool = new Pool({ max: 2 });

const md5 = (bytes) => crypto.createHash('md5').update(bytes).digest('hex');

async function produceBatch(first, n) {
  const orders = [];
  const blobs = [];
  for (let i = first; i < first + n; i++) {
    if (i % 2 === 0) orders.push({ producer: producerName, n: i, note: 'café ✓', lines: [i, { qty: 2 }] });
    else blobs.push(crypto.randomBytes(24 + (i % 40)));
  }
  // An array of objects goes as a json[] literal, each element JSON.stringify(object).
  // json keeps that text exactly: payload_json gives back the same bytes.
  const json = await pool.query('SELECT querator.queue_produce_json_batch($1, $2) AS ids', [queue, orders]);
  json.rows[0].ids.forEach((id, k) => console.log(`produced ${id} json ${md5(JSON.stringify(orders[k]))}`));
  // A Buffer goes as bytea; one item per call, as most code produces.
  for (const blob of blobs) {
    const r = await pool.query('SELECT querator.queue_produce_bytes($1, $2, encoding => $3) AS id',
      [queue, blob, 'application/octet-stream']);
    console.log(`produced ${r.rows[0].id} bytes ${md5(blob)}`);
  }
}

async function main() {
  for (let first = 0; first < count; first += batchSize)
    await produceBatch(first, Math.min(batchSize, count - first));
  await pool.end();
}

main().catch((err) => {
  console.error(`${producerName}: ${err.message}`);
  process.exit(1);
});
