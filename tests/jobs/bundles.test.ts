import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { cancelJobRow } from '../../db/jobs/job-states.js';
import { defineJob } from '../../jobs/define-job.js';
import { withJobTypes } from '../../jobs/registry.js';
import { createRedis, type RedisClient } from '../../lib/redis.js';
import { createQueues, type JobQueue, type JobQueues } from '../../queue/queues.js';
import { stopCancelledJob } from '../../queue/stop-cancelled-job.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { runWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { Sweeper } from '../../workers/sweeper.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import type { TestUser } from '../helpers/accounts.js';

/** While true, a probe with `hold` waits (for its abort) before it runs. */
let holding = true;

/**
 * A short job type whose jobs travel in bundles (queue/bundles.ts): it doubles `n`, after failing its first
 * `failures` attempts.
 */
const probeJob = defineJob({
  name: 'bundle-probe',
  description: 'Doubles n; fails its first `failures` attempts.',
  payload: z.strictObject({ n: z.number().int(), failures: z.number().int().min(0).default(0), hold: z.boolean().default(false) }),
  result: z.object({ doubled: z.number(), attempt: z.number() }),
  queue: { attempts: 3, backoffMs: 50, bundled: true },
  async process(payload, ctx) {
    if (payload.hold && holding) await sleep(60_000, undefined, { signal: ctx.signal });
    if (ctx.attemptsMade < payload.failures) throw new Error(`probe ${payload.n} failed attempt ${ctx.attemptsMade + 1}`);
    return { doubled: payload.n * 2, attempt: ctx.attemptsMade + 1 };
  },
});

const registry = withJobTypes(probeJob);
const suite = useTestApp({ users: 1 });
let orm: Orm;
let workers: RunningWorkers;
let queues: JobQueues;
let redis: RedisClient;
let probeQueue: JobQueue;
let sweeper: Sweeper;

beforeAll(async () => {
  orm = await createOrm(suite.app.config.databaseUrl);
  // No trim: the sweeper tests read finished bundles back.
  workers = await runWorkers({
    config: { ...suite.app.config, finishedJobTrimIntervalMs: 0 },
    orm,
    logger: suite.app.deps.logger,
    registry,
  });
  redis = createRedis(suite.app.config.redis);
  queues = createQueues(redis, suite.app.config, registry);
  probeQueue = queues.ofType('bundle-probe')[0] as JobQueue;
  // Every unfinished row, however young: the one the workers run waits 10 s before it looks.
  sweeper = new Sweeper(
    { orm, redis, queues, fair: null, prefix: suite.app.config.queuePrefix, logger: suite.app.deps.logger },
    { graceMs: 0, trimMarginMs: 0 },
  );
});

afterAll(async () => {
  await workers?.close();
  await queues?.close();
  await redis?.quit();
  await orm?.close();
});

const submitProbes = (customerId: string, payloads: Array<{ n: number; failures?: number; hold?: boolean }>) =>
  submitJobsBulk(
    { em: orm.em.fork(), queues, logger: suite.app.deps.logger, cache: suite.app.deps.cache, fair: null },
    customerId,
    probeJob,
    payloads,
  );

interface ProbeRow {
  id: string;
  state: string;
  result: { doubled: number; attempt: number } | null;
  error: string | null;
  attempts_made: number;
  bundle_id: string | null;
}
const rowsOf = (ids: string[]) =>
  suite.app.sql<ProbeRow>(`select id, state, result, error, attempts_made, bundle_id from jobs where id = any($1::uuid[]) order by id`, [
    ids,
  ]);
const finalRowsOf = (ids: string[]) =>
  waitFor(async () => {
    const rows = await rowsOf(ids);
    return rows.every((row) => ['completed', 'failed', 'cancelled'].includes(row.state)) ? rows : null;
  }, 30_000);

/** Runs `work` with the probe queue paused (no worker takes its jobs), resuming it after. */
async function whilePaused<T>(work: () => Promise<T>): Promise<T> {
  await probeQueue.pause();
  try {
    return await work();
  } finally {
    await probeQueue.resume();
  }
}

describe('bundles: many jobs of one bulk submit in one BullMQ job', () => {
  it('carries a submit of 250 jobs in 3 BullMQ jobs and runs each member as a job of its own', async () => {
    const customerId = randomUUID();
    const ids = await whilePaused(async () => {
      const submitted = await submitProbes(
        customerId,
        Array.from({ length: 250 }, (_, n) => ({ n })),
      );
      expect(await probeQueue.getJobCountByTypes('wait')).toBe(3);
      return submitted;
    });
    const rows = await finalRowsOf(ids);
    expect(new Set(rows.map((row) => row.bundle_id)).size).toBe(3);
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(ids.map((id) => byId.get(id)?.result?.doubled)).toEqual(Array.from({ length: 250 }, (_, n) => n * 2));
    expect(rows.every((row) => row.state === 'completed' && row.attempts_made === 1)).toBe(true);
    // No member has a BullMQ job of its own; each is announced on the queue's event stream under its id.
    expect(await probeQueue.getJob(ids[0] as string)).toBeUndefined();
    const events = await redis.xrange(`${probeQueue.qualifiedName}:events`, '-', '+');
    const completed = new Set(events.filter(([, fields]) => fields[1] === 'completed').map(([, fields]) => fields[3]));
    expect(ids.every((id) => completed.has(id))).toBe(true);
  });

  it('carries a lone job alone: a bundle of one would only cost a row read', async () => {
    const [id] = await submitProbes(randomUUID(), [{ n: 21 }]);
    const [row] = await finalRowsOf([id as string]);
    expect(row).toMatchObject({ state: 'completed', bundle_id: null, result: { doubled: 42, attempt: 1 } });
  });

  it('skips a member cancelled while its bundle waits, and runs the others', async () => {
    const customerId = randomUUID();
    const ids = await whilePaused(async () => {
      const submitted = await submitProbes(customerId, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const cancelled = await cancelJobRow(orm.em.fork(), customerId, submitted[1] as string);
      expect(cancelled?.bundleId).toMatch(/^bundle-/);
      await stopCancelledJob({ queues, redis, queuePrefix: suite.app.config.queuePrefix }, cancelled!);
      return submitted;
    });
    const rows = await finalRowsOf(ids);
    expect(rows.map((row) => [row.state, row.result?.doubled ?? null])).toEqual([
      ['completed', 2],
      ['cancelled', null],
      ['completed', 6],
    ]);
    expect(rows[1]?.attempts_made).toBe(0);
  });

  it('retries a member that failed an attempt on its own, counting the attempts it spent in the bundle', async () => {
    const ids = await submitProbes(randomUUID(), [{ n: 5 }, { n: 6, failures: 1 }, { n: 7, failures: 5 }]);
    const rows = await finalRowsOf(ids);
    expect(rows[0]).toMatchObject({ state: 'completed', attempts_made: 1, result: { doubled: 10, attempt: 1 } });
    // Its second attempt ran as a BullMQ job of its own (the retry), and knew it was the second.
    expect(rows[1]).toMatchObject({ state: 'completed', attempts_made: 2, result: { doubled: 12, attempt: 2 } });
    // Three attempts in all (the type's `attempts`), not three more after the bundle's.
    expect(rows[2]).toMatchObject({ state: 'failed', attempts_made: 3, error: 'probe 7 failed attempt 3' });
  });

  it("leaves a waiting bundle's members to it, and enqueues alone the members of a bundle Redis lost", async () => {
    const customerId = randomUUID();
    const ids = await whilePaused(async () => {
      const submitted = await submitProbes(
        customerId,
        Array.from({ length: 10 }, (_, n) => ({ n })),
      );
      expect(await sweeper.sweep()).toMatchObject({ reenqueued: 0 });
      const [{ bundle_id: bundleId }] = (await rowsOf(submitted)) as [ProbeRow];
      await (await probeQueue.getJob(bundleId as string))!.remove();
      expect(await sweeper.sweep()).toMatchObject({ reenqueued: 10 });
      expect(await probeQueue.getJob(submitted[0] as string)).toBeDefined();
      return submitted;
    });
    const rows = await finalRowsOf(ids);
    expect(rows.map((row) => row.result?.doubled)).toEqual(Array.from({ length: 10 }, (_, n) => n * 2));
  });

  it('records from a finished bundle the outcome PostgreSQL lost, and trims the bundle once its rows are on disk', async () => {
    const ids = await submitProbes(randomUUID(), [{ n: 8 }, { n: 9, failures: 9 }, { n: 10 }]);
    const before = await finalRowsOf(ids);
    // A lost commit: the rows read as the workers left them before their final writes. The failed member was handed
    // off to retry alone, so its outcome is its own BullMQ job's, not the bundle's.
    await suite.app.sql(`update jobs set state = 'active', result = null, error = null, finished_at = null where id = any($1::uuid[])`, [
      [ids[0], ids[2]],
    ]);
    expect(await sweeper.sweep()).toMatchObject({ reconciled: 2, reenqueued: 0 });
    expect(await rowsOf(ids)).toEqual(before);
    const bundleId = before[0]?.bundle_id as string;
    expect(await probeQueue.getJob(bundleId)).toBeDefined();
    await sweeper.trimFinished();
    expect(await probeQueue.getJob(bundleId)).toBeUndefined();
  });
});

describe('bundles at shutdown', () => {
  it('hands a bundle still running at the deadline back whole; the next worker runs only the members not finished', async () => {
    const ids = await submitProbes(randomUUID(), [{ n: 1 }, { n: 2, hold: true }, { n: 3 }]);
    await waitFor(async () => (await rowsOf(ids)).filter((row) => row.state === 'completed').length === 2);
    const report = await workers.close(300);
    expect(report).toMatchObject({ drained: false, handedBack: 1 });
    const [bundleId] = new Set((await rowsOf(ids)).map((row) => row.bundle_id));
    expect(await (await probeQueue.getJob(bundleId as string))?.getState()).toBe('waiting');
    // The held member's abort was refused as its outcome, and its row reads as before that attempt.
    expect((await rowsOf(ids)).map((row) => [row.state, row.attempts_made])).toEqual([
      ['completed', 1],
      ['queued', 0],
      ['completed', 1],
    ]);
    const finishedBefore = (await rowsOf(ids)).map((row) => row.result);

    holding = false;
    workers = await runWorkers({
      config: { ...suite.app.config, finishedJobTrimIntervalMs: 0 },
      orm,
      logger: suite.app.deps.logger,
      registry,
    });
    const rows = await finalRowsOf(ids);
    expect(rows.map((row) => [row.state, row.result?.doubled, row.attempts_made])).toEqual([
      ['completed', 2, 1],
      ['completed', 4, 1],
      ['completed', 6, 1],
    ]);
    // The members that had finished were not run again.
    expect([rows[0]?.result, rows[2]?.result]).toEqual([finishedBefore[0], finishedBefore[2]]);
  });
});

describe('bundles through the API', () => {
  let alice: TestUser;
  let substrateId: string;
  beforeAll(async () => {
    alice = suite.users[0] as TestUser;
    substrateId = await createExpressionSubstrate(suite.request, alice.accessToken, 'x + 1');
  });

  it('runs a bundled job whose payload is too big to carry from its row, beside small ones', async () => {
    // Over the 8 KiB a BullMQ job carries (queue/queues.ts inlinePayloadMaxBytes): the bundle names it, its row holds it.
    const big = { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 40, pad: 'p'.repeat(9000) } } };
    const small = (x: number) => ({ type: 'invoke', payload: { substrate_id: substrateId, parameters: { x } } });
    const response = await suite.request('POST', '/api/v1/jobs/bulk', {
      token: alice.accessToken,
      body: { jobs: [big, ...Array.from({ length: 100 }, (_, x) => small(x))] },
    });
    expect(response.status).toBe(202);
    const ids: string[] = response.body.items.map((item: { id: string }) => item.id);
    const rows = await finalRowsOf(ids);
    const byId = new Map(rows.map((row) => [row.id, row]));
    // On a cluster's 16 shards it travels alone only if none of the other 100 shares its queue (~0.2 %).
    const queueOf = (id: string) => suite.app.deps.queues.forJob('invoke', id).name;
    const [bigId, ...smallIds] = ids as [string, ...string[]];
    if (smallIds.some((id) => queueOf(id) === queueOf(bigId))) expect(byId.get(bigId)?.bundle_id).toMatch(/^bundle-/);
    const got = await suite.request('GET', `/api/v1/jobs/${ids[0]}`, { token: alice.accessToken });
    expect(got.body).toMatchObject({ state: 'completed', result: { result: 41 } });
  });

  it('bundles the plain invokes of POST /jobs/bulk per queue, carries one with a priority alone, and answers each by id', async () => {
    const job = (x: number, extra: Record<string, unknown> = {}) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x } },
      ...extra,
    });
    const jobs = Array.from({ length: 40 }, (_, x) => job(x, x === 7 ? { priority: 5 } : {}));
    const response = await suite.request('POST', '/api/v1/jobs/bulk', { token: alice.accessToken, body: { jobs } });
    expect(response.status).toBe(202);
    const ids: string[] = response.body.items.map((item: { id: string }) => item.id);
    const rows = await finalRowsOf(ids);
    const bundleOf = new Map(rows.map((row) => [row.id, row.bundle_id]));
    expect(bundleOf.get(ids[7] as string)).toBeNull();
    // A bundle never spans queues (on a cluster, 16 shards of invoke); a plain job is alone only when it is alone on its queue.
    const queueOf = (id: string) => suite.app.deps.queues.forJob('invoke', id).name;
    const plain = ids.filter((_, x) => x !== 7);
    for (const id of plain) {
      const bundle = bundleOf.get(id);
      const sameQueue = plain.filter((other) => queueOf(other) === queueOf(id));
      if (bundle === null) expect(sameQueue).toEqual([id]);
      else expect(plain.filter((other) => bundleOf.get(other) === bundle).sort()).toEqual(sameQueue.sort());
    }
    expect(new Set(plain.map((id) => bundleOf.get(id))).size).toBeLessThan(plain.length);
    for (const [x, id] of ids.entries()) {
      const got = await suite.request('GET', `/api/v1/jobs/${id}`, { token: alice.accessToken });
      expect(got.body).toMatchObject({ id, state: 'completed', result: { result: x + 1 } });
    }
  });
});
