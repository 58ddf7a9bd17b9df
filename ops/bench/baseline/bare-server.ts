/**
 * The HTTP baselines: a bare Express 5 app. `POST /submit` does one BullMQ add; `POST /cached` answers
 * the same JSON the platform answers for a cached invocation.
 */
import express from 'express';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';

const env = process.env;
const queue = new Queue(env.BENCH_QUEUE as string, {
  connection: new Redis(env.REDIS_URL as string, { maxRetriesPerRequest: null }),
  prefix: env.BENCH_PREFIX,
});
const app = express();
app.use(express.json());

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
