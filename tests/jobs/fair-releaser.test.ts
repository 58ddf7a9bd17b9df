import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findReleasableJobs } from '../../db/jobs/find-jobs.js';
import { createFairShare, type FairShare, type FairShareOptions } from '../../queue/fair-share/fair-share.js';
import { bulkJobsOf, FairReleaser } from '../../workers/fair-releaser.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let substrateId: string;
let customerId: string;
const redis = () => app.deps.redis;
const queues: Queue[] = [];
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000' });
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  substrateId = (
    await request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression: 'x * 2' } })
  ).body.substrate_id;
});

afterAll(async () => {
  for (const queue of queues) {
    await queue.obliterate({ force: true });
    await queue.close();
  }
  // The shards' fair-share keys and the tick's lock, which obliterate leaves (they are ours, not BullMQ's).
  if (app) await deleteKeys(redis(), `fairrel${process.pid}*`);
  await app?.close();
});

/** Accepted invoke rows (no workers run, so they stay queued). */
async function acceptedJobs(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let x = 0; x < count; x++) {
    const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { x } },
    });
    ids.push(submitted.body.id);
  }
  customerId ??= (await app.sql<{ customer_id: string }>(`select customer_id from jobs where id = $1`, [ids[0]]))[0]!.customer_id;
  return ids;
}

/** A shard queue of its own, its fair share, and a releaser over them (reading rows from PostgreSQL). */
function shardWithReleaser(options: FairShareOptions = {}) {
  const queue = new Queue(`{fr-${randomUUID().slice(0, 8)}}`, {
    connection: (redis() as Redis).duplicate(),
    prefix: `fairrel${process.pid}`,
  });
  queues.push(queue);
  const fair = createFairShare(redis(), { windowMs: 2, minInflight: 2, defaultCostMs: 1, ...options });
  const deps = {
    fair,
    redis: redis(),
    prefix: `fairrel${process.pid}-${randomUUID().slice(0, 8)}`,
    shardKeys: () => [queue.qualifiedName],
    readReleasable: (jobs: ReadonlyArray<{ id: string }>) =>
      findReleasableJobs(
        app.deps.orm.em.fork(),
        jobs.map((job) => job.id),
      ),
    addToShard: (_key: string, rows: Parameters<typeof bulkJobsOf>[0]) => queue.addBulk(bulkJobsOf(rows)),
    logger,
  };
  return { queue, fair, key: queue.qualifiedName, deps };
}

/** `fair` with each release call's number of finished jobs recorded in `calls`. */
function countingReleases(fair: FairShare) {
  const calls: number[] = [];
  const counting: FairShare = {
    ...fair,
    releaseBatch: async (queueKey, finished) => {
      calls.push(finished.length);
      return fair.releaseBatch(queueKey, finished);
    },
  };
  return { calls, counting };
}

const waitingIds = async (queue: Queue) => (await queue.getJobs(['waiting'])).map((job) => job.id).sort();

describe('fair releaser', () => {
  it('reads only rows still queued or delayed, in one statement', async () => {
    const [queued, cancelled] = await acceptedJobs(2);
    await app.sql(`update jobs set state = 'cancelled' where id = $1`, [cancelled]);
    const rows = await findReleasableJobs(app.deps.orm.em.fork(), [queued!, cancelled!, randomUUID()]);
    expect(rows).toEqual([
      {
        id: queued,
        customerId,
        type: 'invoke',
        payload: expect.objectContaining({ parameters: { x: 0 } }),
        maxAttempts: expect.any(Number),
        webhookUrl: null,
      },
    ]);
  });

  it('releases the next held jobs into the shard queue when jobs finish, skipping a cancelled row', async () => {
    const { queue, fair, key, deps } = shardWithReleaser();
    const ids = await acceptedJobs(5);
    const atOnce = await fair.admit(
      key,
      ids.map((id) => ({ id, customerId, weight: 1, hints: '{"notify":true}' })),
    );
    expect(atOnce).toEqual(ids.slice(0, 2));
    await queue.addBulk(bulkJobsOf((await findReleasableJobs(app.deps.orm.em.fork(), atOnce)).map((row) => ({ ...row, hints: {} }))));
    // The next job in the lane is cancelled while it is held (as if its withdraw was lost).
    await app.sql(`update jobs set state = 'cancelled' where id = $1`, [ids[2]]);

    const releaser = new FairReleaser(deps);
    releaser.finished(key, { id: ids[0]!, customerId, workMs: 1 });
    releaser.finished(key, { id: ids[1]!, customerId, workMs: 1 });
    await releaser.flush(key);

    expect(await waitingIds(queue)).toEqual([...ids.slice(0, 2), ...ids.slice(3)].sort());
    // ids[4] emptied its customer's lane: it runs next (the wait list's front); ids[3], released while ids[4]
    // was still held, joined the back, behind the jobs released before it.
    expect((await queue.getJobs(['waiting'], 0, -1, true)).map((job) => job.id)).toEqual([ids[4], ids[0], ids[1], ids[3]]);
    const released = await queue.getJob(ids[3]!);
    expect(released?.data).toMatchObject({ customerId, payload: { parameters: { x: 3 } }, notify: true });
    expect(await queue.getJob(ids[2]!)).toBeUndefined();
  });

  it('gathers the finished jobs of a shard with room to spare into one release call, and reports a lone one within gatherMs', async () => {
    const { queue, fair, key, deps } = shardWithReleaser({ windowMs: 1000, minInflight: 2, maxReleasedPerCustomer: 20 });
    const ids = await acceptedJobs(30);
    const atOnce = await fair.admit(
      key,
      ids.map((id) => ({ id, customerId, weight: 1 })),
    );
    expect(atOnce).toEqual(ids.slice(0, 20));
    const { calls, counting } = countingReleases(fair);
    const releaser = new FairReleaser({ ...deps, fair: counting }, { gatherMs: 200 });
    const finish = (id: string) => releaser.finished(key, { id, customerId, workMs: 1 });
    // The first report learns what the shard can spare: (20 in flight − 2) / 2 = 9 finished jobs.
    finish(atOnce[0]!);
    await vi.waitFor(() => expect(calls).toEqual([1]));
    for (const id of atOnce.slice(1, 9)) {
      finish(id);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(calls).toEqual([1]);
    finish(atOnce[9]!);
    await vi.waitFor(() => expect(calls).toEqual([1, 9]));
    // A lone finished job is not kept past gatherMs.
    finish(atOnce[10]!);
    await vi.waitFor(() => expect(calls).toEqual([1, 9, 1]), { timeout: 2000 });
    expect(await waitingIds(queue)).toEqual(ids.slice(20).sort());
    await releaser.stop();
  });

  it("releases a job's end at once for a worker that awaits it, its shard's gathering aside, and resolves after the add", async () => {
    const { queue, fair, key, deps } = shardWithReleaser({ windowMs: 1000, minInflight: 2, maxReleasedPerCustomer: 20 });
    const ids = await acceptedJobs(30);
    const atOnce = await fair.admit(
      key,
      ids.map((id) => ({ id, customerId, weight: 1 })),
    );
    const { calls, counting } = countingReleases(fair);
    const releaser = new FairReleaser({ ...deps, fair: counting }, { gatherMs: 60_000 });
    // The first report learns the shard can spare 9: finished() alone now waits for 9 more, or a minute.
    releaser.finished(key, { id: atOnce[0]!, customerId, workMs: 1 });
    await vi.waitFor(() => expect(calls).toEqual([1]));
    releaser.finished(key, { id: atOnce[1]!, customerId, workMs: 1 });
    await releaser.finishedAndReleased(key, { id: atOnce[2]!, customerId, workMs: 1 });
    // Both gathered ends went in one call, and its released jobs were in BullMQ when the promise resolved.
    expect(calls).toEqual([1, 2]);
    expect(await waitingIds(queue)).toEqual(ids.slice(20, 23).sort());
    await releaser.stop();
  });

  it('resolves an awaited release that failed (the batch waits for the next tick, not the worker)', async () => {
    const { fair, key, deps } = shardWithReleaser();
    const failing = {
      ...fair,
      releaseBatch: async () => {
        throw new Error('Redis is away');
      },
    };
    const releaser = new FairReleaser({ ...deps, fair: failing, shardKeys: () => [] });
    await expect(releaser.finishedAndReleased(key, { id: randomUUID(), customerId, workMs: 1 })).resolves.toBeUndefined();
  });

  it("leaves to a busy shard's finishes the release the leader's tick would repeat, and ticks it again once they stop", async () => {
    const { fair, key, deps } = shardWithReleaser();
    const { calls, counting } = countingReleases(fair);
    const releaser = new FairReleaser({ ...deps, fair: counting }, { tickMs: 300, reconcileEveryMs: 3_600_000 });
    // The first tick reconciles, and then releases in every shard.
    expect(await releaser.tickIfLeader()).toBe(true);
    expect(calls).toEqual([0]);
    await releaser.finishedAndReleased(key, { id: randomUUID(), customerId, workMs: 1 });
    expect(calls).toEqual([0, 1]);
    expect(await releaser.tickIfLeader()).toBe(true);
    expect(calls).toEqual([0, 1]);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await releaser.tickIfLeader()).toBe(true);
    expect(calls).toEqual([0, 1, 0]);
    await releaser.stop();
  });

  it('keeps a batch whose release failed and sends it again on the next tick, leader or not', async () => {
    const { fair, key, deps } = shardWithReleaser();
    const calls: number[] = [];
    let failNext = true;
    const flaky = {
      ...fair,
      releaseBatch: async (queueKey: string, finished: Parameters<typeof fair.releaseBatch>[1]) => {
        calls.push(finished.length);
        if (failNext) {
          failNext = false;
          throw new Error('Redis is away');
        }
        return fair.releaseBatch(queueKey, finished);
      },
    };
    const releaser = new FairReleaser({ ...deps, fair: flaky, prefix: 'no-lock-here', shardKeys: () => [] });
    await redis().set('no-lock-here:{fair-tick}:lock', 'someone else', 'PX', 60_000);
    releaser.finished(key, { id: randomUUID(), customerId, workMs: 1 });
    releaser.finished(key, { id: randomUUID(), customerId, workMs: 1 });
    await vi.waitFor(() => expect(calls).toEqual([2]));
    expect(await releaser.tickIfLeader()).toBe(false);
    expect(calls).toEqual([2, 2]);
    await redis().del('no-lock-here:{fair-tick}:lock');
  });

  it('lets one process lead the tick, which releases what a lost release left held and heals the window', async () => {
    const { queue, fair, key, deps } = shardWithReleaser({ graceMs: 0 });
    const ids = await acceptedJobs(4);
    const atOnce = await fair.admit(
      key,
      ids.map((id) => ({ id, customerId, weight: 1 })),
    );
    await queue.addBulk(bulkJobsOf((await findReleasableJobs(app.deps.orm.em.fork(), atOnce)).map((row) => ({ ...row, hints: {} }))));

    const leader = new FairReleaser(deps, { reconcileEveryMs: 0 });
    const follower = new FairReleaser(deps, { reconcileEveryMs: 0 });
    // Both released jobs were removed by hand and their release calls never came: the window is full.
    for (const id of atOnce) await (await queue.getJob(id))!.remove();
    expect(await leader.tickIfLeader()).toBe(true);
    expect(await follower.tickIfLeader()).toBe(false);
    expect(await waitingIds(queue)).toEqual(ids.slice(2).sort());
    await leader.stop();
    expect(await follower.tickIfLeader()).toBe(true);
    await follower.stop();
  });
});

describe('fair releaser: paused customers', () => {
  it("copies this process's paused customers to each shard when it reconciles, dropping a stale one", async () => {
    const { fair, key, deps } = shardWithReleaser();
    const pausedKey = `${key}:fair:paused`;
    // A resume whose Redis write was lost left 'gone' paused in the shard; 'kept' was paused where Redis lost it.
    await fair.setPaused(key, 'gone', true);
    const known = ['kept'];
    const leader = new FairReleaser({ ...deps, pausedCustomers: () => known }, { reconcileEveryMs: 0 });
    expect(await leader.tickIfLeader()).toBe(true);
    expect(await redis().smembers(pausedKey)).toEqual(['kept']);
    known.length = 0;
    expect(await leader.tickIfLeader()).toBe(true);
    expect(await redis().exists(pausedKey)).toBe(0);
    await leader.stop();
  });
});
