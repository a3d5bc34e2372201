// The BullMQ peer of B8 (job-queue-peer): the 3-step flow as BullMQ jobs on three queues,
// each step's worker adding the next step's job, on the Redis server at 127.0.0.1:PORT.
//
//   node bullmq_flow.js PORT FLOWS CONCURRENCY [PREFIX]
//
// Adds FLOWS jobs to step1 one at a time (await add: one round trip each, as Convoy's
// submissions are), and prints {"flows_per_s": ..., "flows": ..., "seconds": ...} once the
// step3 worker has completed them all: first add to last completion. Jobs are removed on
// completion. Exits 1 with {"error": ...} after 120 s without finishing.
'use strict';
const { Queue, Worker } = require('bullmq');

const [port, flows, concurrency] = process.argv.slice(2, 5).map(Number);
const prefix = process.argv[5] || 'bull';
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const jobOptions = { removeOnComplete: true, removeOnFail: true };

async function main() {
  const queues = [1, 2, 3].map((i) => new Queue('step' + i, { connection, prefix }));
  let done = 0;
  let finish;
  const all = new Promise((resolve) => { finish = resolve; });
  const workers = [0, 1, 2].map((i) => new Worker('step' + (i + 1), async (job) => {
    const result = job.data.sum + i; // the activity: returns its step
    if (i < 2)
      await queues[i + 1].add('step', { id: job.data.id, sum: result }, jobOptions);
    return result;
  }, { connection, prefix, concurrency }));
  workers[2].on('completed', () => { if (++done === flows) finish(); });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await Promise.all(queues.map((q) => q.waitUntilReady()));

  const t0 = process.hrtime.bigint();
  for (let i = 0; i < flows; ++i)
    await queues[0].add('step', { id: 'f' + i, sum: 0 }, jobOptions);
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), 120000); });
  const outcome = await Promise.race([all, timeout]);
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (outcome === 'timeout') {
    console.log(JSON.stringify({ error: `only ${done} of ${flows} flows completed in 120 s` }));
    process.exit(1);
  }
  console.log(JSON.stringify({ flows_per_s: flows / seconds, flows, seconds }));
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.close()));
  process.exit(0);
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
