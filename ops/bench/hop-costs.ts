/**
 * `npx tsx ops/bench/hop-costs.ts`: what each step of a waited invoke costs on its own on this machine — the
 * platform's own statements and calls, run back to back from one process (a quick job insert, the final state
 * write with its notice, a BullMQ add, a CEL evaluation through the worker's pool) — to set beside the same
 * steps' stage times inside a waited call (`npm run bench -- --only=wait-latency`, its stage table). The
 * difference is what crossing processes costs (issue 21). Prints one JSON line. DATABASE_URL (a server where
 * it may create a database) and REDIS_URL as for the bench; HOP_CALLS (default 1,000) calls per step.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { createOrm } from '../../db/orm.js';
import { insertJobs, type NewJobRow } from '../../db/jobs/insert-jobs.js';
import { writeFinalStates, type FinalState } from '../../db/jobs/job-states.js';
import { declaredTasks, jobRegistry } from '../../jobs/registry.js';
import { evaluateTask } from '../../jobs/invoke/invoke.job.js';
import { uuidv7 } from '../../lib/uuid.js';
import { createTaskPool, taskRunner } from '../../workers/pools.js';
import { createMigratedDatabase, deleteKeys, percentile, round } from './harness.js';

const calls = Number(process.env.HOP_CALLS ?? 1000);
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** p50 and p90 of `step`, called `calls` times one after another after a tenth as many unmeasured calls. */
async function timed(step: (i: number) => Promise<unknown>): Promise<{ p50_ms: number; p90_ms: number }> {
  const warmUp = Math.ceil(calls / 10);
  const times: number[] = [];
  for (let i = 0; i < warmUp + calls; i++) {
    const started = performance.now();
    await step(i);
    if (i >= warmUp) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50_ms: round(percentile(times, 50), 3), p90_ms: round(percentile(times, 90), 3) };
}

async function main(): Promise<void> {
  const adminUrl = new URL(databaseUrl);
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  const database = `chrysalis_hops_${randomBytes(4).toString('hex')}`;
  const prefix = `hops-${randomBytes(3).toString('hex')}`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const tasks = declaredTasks(jobRegistry);
  const pool = createTaskPool(tasks, { threads: 2, taskTimeoutMs: 5000 });
  const queue = new Queue('hops', { connection: redis, prefix });
  try {
    const orm = await createOrm(await createMigratedDatabase(admin, adminUrl, database));
    try {
      const customerId = randomUUID();
      await orm.em.getConnection().execute(`insert into customers (id, name) values (?, 'hop costs')`, [customerId]);
      const ids: string[] = [];
      const row = (id: string): NewJobRow => ({
        id,
        customerId,
        type: 'invoke',
        state: 'queued',
        payload: { substrate_id: '0x0000000000000001', parameters: { x: 2, y: 11 } },
        maxAttempts: 3,
        priority: 0,
        delayMs: 0,
        webhookUrl: null,
        idempotencyKey: null,
        requestHash: null,
        scheduleName: null,
        retryOf: null,
      });
      const insert = await timed(async (i) => {
        ids[i] = uuidv7();
        await insertJobs(orm.em, [{ row: row(ids[i]!), quick: true }]);
      });
      const finalWrite = await timed((i) => {
        const write: FinalState = {
          id: ids[i]!,
          state: 'completed',
          result: { substrate_id: '0x0000000000000001', result: 22, invocation_time_ms: 0.1, cached: false },
          error: null,
          attemptsMade: 1,
          notify: true,
          startedAt: Date.now(),
        };
        return writeFinalStates(orm.em, new Map([[write.id, write]]), `${prefix}:notices`);
      });
      // A write that matched no row would time nothing: every timed insert must have been completed by it.
      const [stored] = await orm.em
        .getConnection()
        .execute<Array<{ completed: number }>>(`select count(*)::int as completed from jobs where state = 'completed'`);
      const completed = stored?.completed ?? 0;
      if (completed !== ids.length) throw new Error(`final state writes completed ${completed} of ${ids.length} jobs`);
      const add = await timed((i) => queue.add('invoke', { x: i }, { jobId: ids[i], removeOnComplete: true }));
      const runTask = taskRunner(pool, 5000, tasks);
      const owner = { customerId, workMs: 0 };
      const evaluation = await timed((i) => runTask(evaluateTask, { expression: 'x * y', parameters: { x: i, y: 11 } }, undefined, owner));
      const figures = {
        scenario: 'hop-costs',
        calls,
        note: 'each step alone, back to back from one process; compare with wait-latency stage p50s',
        'quick job insert (insertJobs)': insert,
        'final state write with notice (writeFinalStates)': finalWrite,
        'BullMQ add': add,
        'CEL evaluation through the worker pool (taskRunner)': evaluation,
      };
      process.stdout.write(`${JSON.stringify(figures)}\n`);
    } finally {
      await orm.close();
    }
  } finally {
    await queue.close();
    await pool.destroy();
    await deleteKeys(redis, [`${prefix}:*`]);
    redis.disconnect();
    await admin.query(`drop database if exists ${database} with (force)`);
    await admin.end();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
