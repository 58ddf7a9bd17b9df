/**
 * The baseline: a minimal raw-BullMQ program doing the same work as the platform — a BullMQ Worker
 * whose processor evaluates the CEL expression in a Piscina pool and (mode `persist`) inserts the
 * result into PostgreSQL in batches flushed every 5 ms or 200 rows, or (mode `notify`, the durable wait
 * baseline with bare-server.ts `/wait`) stores it in the job's `bench_jobs` row and announces the row on
 * `BENCH_CHANNEL` in the same statement, as the platform's worker does for a waited job.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Piscina } from 'piscina';

const env = process.env;
const mode = env.BENCH_MODE ?? 'persist';
const connection = new Redis(env.REDIS_URL as string, { maxRetriesPerRequest: null });
const pool = new Piscina({
  filename: new URL('../../../jobs/invoke/evaluate.task.ts', import.meta.url).href,
  execArgv: ['--import', 'tsx'],
  minThreads: Number(env.PISCINA_THREADS ?? 2),
  maxThreads: Number(env.PISCINA_THREADS ?? 2),
});
const db = new pg.Pool({ connectionString: env.DATABASE_URL, max: 4 });

let buffer: Array<{ id: string; value: unknown; resolve: () => void; reject: (e: unknown) => void }> = [];
let timer: NodeJS.Timeout | null = null;
async function flush(): Promise<void> {
  timer = null;
  const rows = buffer;
  buffer = [];
  if (rows.length === 0) return;
  try {
    await db.query(
      `insert into bench_results (id, value) values ${rows.map((_, i) => `($${i * 2 + 1}, $${i * 2 + 2}::jsonb)`).join(', ')} on conflict do nothing`,
      rows.flatMap((row) => [row.id, JSON.stringify(row.value)]),
    );
    for (const row of rows) row.resolve();
  } catch (error) {
    for (const row of rows) row.reject(error);
  }
}
function persist(id: string, value: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    buffer.push({ id, value, resolve, reject });
    if (buffer.length >= 200) void flush();
    else timer ??= setTimeout(() => void flush(), 5);
  });
}

/** The platform's write of a waited job's outcome, bare: no WAL flush awaited, the stored row announced at commit. */
const completeStatement = `with durability as (select set_config('synchronous_commit', 'off', true)),
  stored as (update bench_jobs set state = 'completed', result = $2::jsonb, finished_at = now() from durability where id = $1 returning bench_jobs.*)
  select pg_notify($3, row_to_json(stored)::text) from stored`;

const worker = new Worker(
  env.BENCH_QUEUE as string,
  async (job) => {
    const { value } = (await pool.run({ expression: job.data.expression, parameters: job.data.parameters })) as { value: unknown };
    if (mode === 'persist') await persist(job.id as string, value);
    if (mode === 'notify')
      await db.query({ name: 'complete', text: completeStatement, values: [job.id, JSON.stringify(value), env.BENCH_CHANNEL] });
    return value;
  },
  { connection, prefix: env.BENCH_PREFIX, concurrency: Number(env.WORKER_CONCURRENCY ?? 64), removeOnComplete: { count: 10_000 } },
);

process.once('SIGTERM', async () => {
  await worker.close();
  await flush();
  await pool.destroy();
  await db.end();
  connection.disconnect();
  process.exit(0);
});
