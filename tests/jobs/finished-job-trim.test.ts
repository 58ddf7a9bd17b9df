import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import type { RunningWorkers } from '../../workers/run-workers.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { trimCompleted } from '../../workers/trim-completed.js';
import { retention } from '../../queue/queues.js';
import { randomUUID } from 'node:crypto';
import { createOrm } from '../../db/orm.js';
import { Sweeper } from '../../workers/sweeper.js';
import { uuidv7 } from '../../lib/uuid.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let substrateId: string;
let running: RunningWorkers;

/** BullMQ counts its finished jobs by the worker's clock; the trim leaves those of the last 500 ms alone. */
const pastTrimMargin = () => new Promise((resolve) => setTimeout(resolve, 700));

beforeAll(async () => {
  // Trimming by hand here (sweeper.trimFinished), and no sweeps of its own. Every job carried alone: the bulk
  // submit below makes 1,000 BullMQ jobs (bundles are trimmed in tests/jobs/bundles.test.ts).
  app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', FINISHED_JOB_TRIM_INTERVAL_MS: '0', JOB_BUNDLE_SIZE: '1' });
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  substrateId = await createExpressionSubstrate(request, alice.accessToken, 'x + 1');
  running = await app.startWorkers();
});

afterAll(async () => {
  await app?.close();
});

const invokeAndWait = async (x: number) =>
  (
    await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x } },
    })
  ).body;

describe('BullMQ keeps a finished job only until its row is durable', () => {
  it('bounds finished jobs in every job queue by its workers (retention), not by options stored with each job', async () => {
    const done = await invokeAndWait(2);
    const bullJob = await app.deps.queues.forJob('invoke', done.id).getJob(done.id);
    expect(bullJob?.opts).toMatchObject({ attempts: expect.any(Number), backoff: { type: 'exponential' } });
    expect(bullJob?.opts.removeOnComplete).toBeUndefined();
    expect(bullJob?.opts.removeOnFail).toBeUndefined();
    expect(running.workers.length).toBe(app.deps.queues.all().length);
    for (const worker of running.workers) expect(worker.opts).toMatchObject(retention);
  });

  it('removes a completed job from BullMQ once a durable commit follows its final write; the row keeps the result', async () => {
    const done = await invokeAndWait(1);
    expect(done.state).toBe('completed');
    const queue = app.deps.queues.forJob('invoke', done.id);
    // The waited answer leaves with the row's write, a moment before BullMQ records the completion.
    const bullJob = await waitFor(async () => ((await queue.getJob(done.id))?.finishedOn ? queue.getJob(done.id) : null));
    expect(bullJob?.returnvalue).toMatchObject({ result: 2 });
    await pastTrimMargin();
    const report = await running.sweeper.trimFinished();
    expect(report.removed).toBeGreaterThanOrEqual(1);
    expect(await queue.getJob(done.id)).toBeUndefined();
    const [row] = await app.sql<{ state: string; result: { result: number } }>('select state, result from jobs where id = $1', [done.id]);
    expect(row).toMatchObject({ state: 'completed', result: { result: 2 } });
  });

  it('keeps the BullMQ copy of an outcome PostgreSQL lost until the sweeper has copied it, then removes it', async () => {
    const done = await invokeAndWait(10);
    // As if PostgreSQL crashed before the (asynchronously committed) result write reached disk.
    await app.sql(
      `update jobs set state = 'active', result = null, finished_at = null, created_at = created_at - interval '1 minute' where id = $1`,
      [done.id],
    );
    await pastTrimMargin();
    const queue = app.deps.queues.forJob('invoke', done.id);
    await running.sweeper.trimFinished();
    expect((await queue.getJob(done.id))?.returnvalue).toMatchObject({ result: 11 });

    expect((await running.sweeper.sweep()).reconciled).toBe(1);
    await running.sweeper.trimFinished();
    expect(await queue.getJob(done.id)).toBeUndefined();
    const [row] = await app.sql<{ state: string; result: { result: number } }>('select state, result from jobs where id = $1', [done.id]);
    expect(row).toMatchObject({ state: 'completed', result: { result: 11 } });
  });

  it('copies the outcome of a job that finished before it was ever written active (its row still queued)', async () => {
    const done = await invokeAndWait(20);
    await app.sql(
      `update jobs set state = 'queued', result = null, finished_at = null, created_at = created_at - interval '1 minute' where id = $1`,
      [done.id],
    );
    expect((await running.sweeper.sweep()).reconciled).toBe(1);
    const [row] = await app.sql<{ state: string }>('select state from jobs where id = $1', [done.id]);
    expect(row?.state).toBe('completed');
  });

  it('removes 1,000 completed jobs in one pass, and with them their job hashes', async () => {
    const customerId = (await request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id as string;
    const { deps } = app;
    const ids = await submitJobsBulk(
      { em: deps.orm.em, queues: deps.queues, logger: deps.logger, cache: deps.cache, fair: deps.fair },
      customerId,
      getJobDefinition('invoke')!,
      Array.from({ length: 1000 }, (_, x) => ({ substrate_id: substrateId, parameters: { x: 1000 + x } })),
    );
    await waitFor(
      async () => {
        const [row] = await app.sql<{ n: string }>(`select count(*) as n from jobs where id = any($1::uuid[]) and state = 'completed'`, [
          ids,
        ]);
        return Number(row!.n) === ids.length;
      },
      60_000,
      200,
    );
    const inCompletedSet = async () => {
      let count = 0;
      for (const id of ids) if ((await deps.redis.zscore(deps.queues.forJob('invoke', id).toKey('completed'), id)) !== null) count++;
      return count;
    };
    await waitFor(async () => (await inCompletedSet()) === ids.length, 15_000, 100);
    await pastTrimMargin();
    // Past the default 1,000 per queue: a job of an earlier test may still be there beside these.
    const report = await running.sweeper.trimFinished(2000);
    expect(report.removed).toBeGreaterThanOrEqual(ids.length);
    expect(await inCompletedSet()).toBe(0);
    let hashes = 0;
    for (const id of ids) hashes += await deps.redis.exists(deps.queues.forJob('invoke', id).toKey(id));
    expect(hashes).toBe(0);
  }, 120_000);

  it('leaves an id that is no longer in the completed set (retried or moved meanwhile), and its job hash', async () => {
    const queue = app.deps.queues.all()[0]!;
    const [completed, failed] = [randomUUID(), randomUUID()];
    for (const [id, state] of [
      [completed, 'completed'],
      [failed, 'failed'],
    ] as const) {
      await app.deps.redis.hset(queue.toKey(id), 'name', 'invoke', 'data', '{}');
      await app.deps.redis.zadd(queue.toKey(state), Date.now(), id);
    }
    expect(await trimCompleted(app.deps.redis, queue, [completed, failed])).toBe(1);
    expect(await app.deps.redis.exists(queue.toKey(completed))).toBe(0);
    expect(await app.deps.redis.exists(queue.toKey(failed))).toBe(1);
    expect(await app.deps.redis.zscore(queue.toKey('failed'), failed)).not.toBeNull();
    await queue.remove(failed);
  });

  it('trims on its own timer in a running worker (FINISHED_JOB_TRIM_INTERVAL_MS)', async () => {
    await app.stopWorkers();
    running = await app.startWorkers({ finishedJobTrimIntervalMs: 200 });
    const done = await invokeAndWait(30);
    const queue = app.deps.queues.forJob('invoke', done.id);
    await waitFor(async () => (await queue.getJob(done.id)) === undefined, 15_000, 100);
  });

  it('with nothing finished to trim, sends PostgreSQL nothing (an idle platform flushes no disk every pass)', async () => {
    await app.stopWorkers(); // their own passes would race this test's
    const { deps, config } = app;
    const sweeperOn = (orm: typeof deps.orm) =>
      new Sweeper({ orm, redis: deps.redis, queues: deps.queues, fair: deps.fair, prefix: config.queuePrefix, logger: deps.logger });
    await pastTrimMargin();
    await sweeperOn(deps.orm).trimFinished(5000);
    // A pool already closed: any statement the pass sent would fail it.
    const closed = await createOrm(config.databaseUrl);
    await closed.close();
    const idle = sweeperOn(closed);
    expect(await idle.trimFinished()).toEqual({ checked: 0, removed: 0 });

    // Something finished: the pass needs its durable commit, and fails without PostgreSQL (nothing is removed).
    const queue = deps.queues.all()[0]!;
    const id = uuidv7();
    await deps.redis.hset(queue.toKey(id), 'name', 'invoke', 'data', '{}');
    await deps.redis.zadd(queue.toKey('completed'), Date.now() - 10_000, id);
    await expect(idle.trimFinished()).rejects.toThrow();
    expect(await deps.redis.zscore(queue.toKey('completed'), id)).not.toBeNull();
    await queue.remove(id);
  });
});
