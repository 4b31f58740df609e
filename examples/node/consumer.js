// A querator consumer with node-postgres: CONSUMERS loops in this process, each the
// one-call loop queue_complete_and_lease (complete the last batch, lease the next,
// wait up to WAIT for it), BATCH items at a time. SIGTERM or SIGINT stops it
// gracefully: each loop finishes the batch in hand, completes it and the process
// exits. Connection settings come from the PG* environment variables.
//
// Prints "consumed <id> <json|bytes> <md5 of the payload bytes> <what the driver gave>".
'use strict';

const crypto = require('crypto');
const { Pool } = require('pg');

const queue = process.env.QUEUE || 'jobs';
const consumers = Number(process.env.CONSUMERS || 2);
const batchSize = Number(process.env.BATCH || 10);
const wait = process.env.WAIT || '5 seconds';
const clientId = process.env.CLIENT_ID || `node-${process.pid}`;

// Pool sizing: a long poll holds its connection for up to WAIT. With fewer
// connections than long-polling loops, the rest queue behind them (and so would a
// producer sharing this pool: give it max >= consumers + producers, or its own pool).
const pool = new Pool({ max: consumers });

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'])
  process.on(signal, () => { stopping = true; });

const md5 = (bytes) => crypto.createHash('md5').update(bytes).digest('hex');

// The work. `body` is the payload as JSON, parsed by the driver (payload_json
// returns json for JSON items, NULL for the rest); `payload` is always the bytes.
function handle(item) {
  if (item.body !== null)
    console.log(`consumed ${item.id} json ${md5(item.payload)} ${typeof item.body}`);
  else
    console.log(`consumed ${item.id} bytes ${md5(item.payload)} ${Buffer.isBuffer(item.payload) ? 'buffer' : typeof item.payload}`);
}

async function consumeLoop(loop) {
  let done = []; // handled, completed by the next call
  while (!stopping) {
    const { rows } = await pool.query(
      `SELECT id, encoding, payload, querator.payload_json(payload, encoding) AS body
         FROM querator.queue_complete_and_lease($1, $2, $3, $4, $5)`,
      [queue, `${clientId}-${loop}`, done, batchSize, wait]);
    done = [];
    const failed = [];
    for (const item of rows) {
      try {
        handle(item);
        done.push(item.id);
      } catch (err) {
        console.error(`item ${item.id}: ${err.message}`);
        failed.push(item.id);
      }
    }
    // Failed items go back to the queue in a minute (or to the dead queue after max_attempts).
    if (failed.length > 0)
      await pool.query('SELECT querator.queue_retry_batch($1, $2, $3)',
        [queue, failed, new Date(Date.now() + 60 * 1000)]);
  }
  // Stopping: the batch in hand is handled; complete it before leaving.
  if (done.length > 0)
    await pool.query('SELECT querator.queue_complete_batch($1, $2)', [queue, done]);
}

async function main() {
  const loops = [];
  for (let i = 0; i < consumers; i++)
    loops.push(consumeLoop(i));
  await Promise.all(loops);
  await pool.end();
}

main().catch((err) => {
  console.error(`${clientId}: ${err.message}`);
  process.exit(1);
});
