/**
 * The HTTP baselines: a bare Express 5 app. `POST /submit` does one BullMQ add; `POST /cached` answers
 * the same JSON the platform answers for a cached invocation; `POST /wait` (with DATABASE_URL and
 * BENCH_CHANNEL) is a waited call with the platform's promises and nothing else: the job's row is stored
 * before the add (not waiting for the WAL flush, as the platform's waited submit), and the answer is the row
 * the raw worker (mode `notify`) stored and announced — no authentication, limits, cache or fair sharing.
 */
import express from 'express';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { randomUUID } from 'node:crypto';

const env = process.env;
const queue = new Queue(env.BENCH_QUEUE as string, {
  connection: new Redis(env.REDIS_URL as string, { maxRetriesPerRequest: null }),
  prefix: env.BENCH_PREFIX,
});
const app = express();
app.use(express.json());

const db = env.DATABASE_URL ? new pg.Pool({ connectionString: env.DATABASE_URL, max: 4 }) : null;
/** Waited jobs by id: resolved with the stored row the worker announced. */
const waiting = new Map<string, (row: string) => void>();
if (db && env.BENCH_CHANNEL) {
  const listener = new pg.Client({ connectionString: env.DATABASE_URL });
  await listener.connect();
  listener.on('notification', (notice) => {
    const row = notice.payload ?? '{}';
    waiting.get((JSON.parse(row) as { id: string }).id)?.(row);
  });
  await listener.query(`listen "${env.BENCH_CHANNEL}"`);
}
const insertStatement = `with durability as (select set_config('synchronous_commit', 'off', true))
  insert into bench_jobs (id, payload) select $1, $2::jsonb from durability`;

app.post('/wait', async (req, res) => {
  const id = randomUUID();
  const stored = new Promise<string>((resolve) => waiting.set(id, resolve));
  try {
    await db!.query({ name: 'insert', text: insertStatement, values: [id, JSON.stringify(req.body)] });
    await queue.add('invoke', { expression: 'x * y', parameters: req.body?.parameters }, { jobId: id, removeOnComplete: { age: 60 } });
    const row = await Promise.race([stored, new Promise<null>((resolve) => setTimeout(() => resolve(null), 5000).unref())]);
    if (row === null) res.status(202).json({ id, state: 'queued' });
    else res.status(200).type('application/json').send(row);
  } finally {
    waiting.delete(id);
  }
});

app.post('/submit', async (req, res) => {
  const job = await queue.add('invoke', req.body, { removeOnComplete: true });
  res.status(202).json({ id: job.id, state: 'queued' });
});

app.post('/cached', (req, res) => {
  const now = new Date().toISOString();
  res.status(200).json({
    id: randomUUID(),
    type: 'invoke',
    state: 'completed',
    progress: 0,
    attempts_made: 0,
    result: {
      substrate_id: '0x0000000000000000',
      result: 35,
      invocation_time_ms: 0.1,
      cached: true,
      parameters: req.body?.parameters ?? null,
    },
    created_at: now,
    started_at: now,
    finished_at: now,
  });
});

app.listen(Number(env.PORT), () => process.send?.('ready'));
process.once('SIGTERM', async () => {
  await queue.close();
  process.exit(0);
});
