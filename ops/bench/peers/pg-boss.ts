/**
 * The pg-boss side of the peers scenario: one process with PgBossSettings.workers workers (pg-boss 10
 * has no teamSize: each `work()` call is one polling worker) fetching batchSize jobs at a time. A batch
 * is evaluated in the Piscina pool and its rows committed in one INSERT before the handler returns,
 * after which pg-boss completes the whole batch in one statement.
 *
 * pg-boss 10 does not LISTEN: a worker sleeps out its polling interval (at least 500 ms, measured from
 * the start of its last fetch) unless `notifyWorker` wakes it. So a worker whose batch came back full
 * wakes itself at once (there is more), and the bench's NOTIFY after each enqueued chunk wakes them all.
 */
import pg from 'pg';
import PgBoss from 'pg-boss';
import { createPeerWork } from './peer-work.js';
import { queueName, wakeChannel, type PgBossSettings } from './pg-boss.side.js';
import type { EvaluateInput } from '../../../jobs/invoke/evaluate.task.js';

const settings = JSON.parse(process.env.BENCH_PEER_SETTINGS ?? '{}') as PgBossSettings;
const work = createPeerWork();
const boss = new PgBoss({ connectionString: process.env.DATABASE_URL, ...(settings.max ? { max: settings.max } : {}) });
boss.on('error', (error) => process.stderr.write(`pg-boss: ${error.message}\n`));
await boss.start();
await boss.createQueue(queueName);

const workerIds: string[] = [];
for (let i = 0; i < settings.workers; i++) {
  let id = '';
  id = await boss.work<EvaluateInput>(
    queueName,
    {
      batchSize: settings.batchSize,
      ...(settings.pollingIntervalSeconds ? { pollingIntervalSeconds: settings.pollingIntervalSeconds } : {}),
    },
    async (jobs) => {
      const values = await Promise.all(jobs.map((job) => work.evaluate(job.data)));
      await work.persistMany(jobs.map((job, j) => ({ id: job.id, value: values[j] })));
      if (jobs.length === settings.batchSize) boss.notifyWorker(id);
    },
  );
  workerIds.push(id);
}

const listener = new pg.Client({ connectionString: process.env.DATABASE_URL });
await listener.connect();
listener.on('notification', () => {
  for (const id of workerIds) boss.notifyWorker(id);
});
await listener.query(`listen ${wakeChannel}`);
await work.signalReady();

process.once('SIGTERM', async () => {
  await listener.end();
  await boss.stop({ graceful: true, wait: true });
  await work.close();
  process.exit(0);
});
