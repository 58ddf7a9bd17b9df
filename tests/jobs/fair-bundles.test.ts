import { afterEach, describe, expect, it } from 'vitest';
import { fairShareKey } from '../../queue/fair-share/fair-share.js';
import { waitFor } from '../helpers/http.js';
import { obliterateType } from '../helpers/queues.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { bulkBacklog, heldIds } from '../helpers/fair-lanes.js';

let app: TestApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

const jobs = 800;

/** The customer's rows once every one but `except` has completed. */
async function completedRows(current: TestApp, customerId: string, except: string) {
  return waitFor(
    async () => {
      const rows = await current.sql<{ id: string; state: string; attempts_made: number }>(
        `select id, state, attempts_made from jobs where customer_id = $1`,
        [customerId],
      );
      return rows.every((row) => row.state === 'completed' || row.id === except) ? rows : null;
    },
    120_000,
    200,
  );
}

describe('fair sharing of bundles (queue/bundles.ts: a bundle is held and released whole)', () => {
  it('holds a bulk submit as bundle entries, skips a cancelled member, runs every other job once and empties the window', async () => {
    // One shard and a small window's worth of workers: 16 bundles, ~10 released (estimated at 5 ms each), the rest held.
    const oneShard = { QUEUE_SHARDS: '1', WORKER_CONCURRENCY: '2', FINISHED_JOB_TRIM_INTERVAL_MS: '0' };
    app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', FAIR_SHARING: 'true', ...oneShard });
    const { request, token, customerId, ids } = await bulkBacklog(app, jobs);
    const deps = app.deps;
    const bundleOf = await app.sql<{ id: string; bundle_id: string | null }>(`select id, bundle_id from jobs where customer_id = $1`, [
      customerId,
    ]);
    const bundles = new Map(bundleOf.map((row) => [row.id, row.bundle_id]));
    expect(ids.every((id) => bundles.get(id)?.startsWith('bundle-'))).toBe(true);

    // No workers yet: each lane holds bundles, ~1 entry per 50 jobs, none of them in BullMQ.
    const entries: string[] = [];
    for (const queue of deps.queues.ofType('invoke')) entries.push(...(await heldIds(deps.redis, queue.qualifiedName, customerId)));
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((entry) => entry.startsWith('bundle-'))).toBe(true);
    expect(entries.length).toBeLessThan(jobs / 50);
    const heldBundle = entries.at(-1)!;
    const target = ids.find((id) => bundles.get(id) === heldBundle)!;
    const queue = deps.queues.forJob('invoke', target);
    expect(await queue.getJob(heldBundle)).toBeUndefined();

    // A member of a held bundle is cancelled in its row: its bundle skips it when it runs.
    const cancelled = await request('DELETE', `/api/v1/jobs/${target}`, { token });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');

    await app.startWorkers();
    const rows = await completedRows(app, customerId, target);
    expect(rows.find((row) => row.id === target)?.state).toBe('cancelled');
    expect(rows.filter((row) => row.state === 'completed' && row.attempts_made === 1)).toHaveLength(jobs - 1);
    // Each bundle was charged once, as a whole: nothing stays counted in flight in any shard.
    await waitFor(
      async () => {
        let inflight = 0;
        for (const shard of deps.queues.ofType('invoke')) inflight += await deps.redis.zcard(fairShareKey(shard.qualifiedName, 'inflight'));
        return inflight === 0 ? true : null;
      },
      10_000,
      100,
    );
    const held = await queue.getJob(heldBundle);
    expect(held?.data).toMatchObject({ customerId, fairEntry: true });
  }, 300_000);

  it('runs delayed jobs that come due together, which one release call carries in one bundle', async () => {
    app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', FAIR_SHARING: 'true', QUEUE_SHARDS: '1' });
    const { request, token, customerId, substrate } = await bulkBacklog(app, 0);
    const delayed = await request('POST', '/api/v1/jobs/bulk', {
      token,
      body: {
        jobs: Array.from({ length: 5 }, (_, x) => ({
          type: 'invoke',
          payload: { substrate_id: substrate, parameters: { x } },
          delay_ms: 500,
        })),
      },
    });
    expect(delayed.status).toBe(202);
    await app.startWorkers();
    const rows = await completedRows(app, customerId, '');
    expect(rows.map((row) => row.state)).toEqual(Array(5).fill('completed'));
    // They left their lane together: one bundle carried them (a bundle skipped its members still marked delayed).
    const bundles = await app.sql<{ bundle_id: string | null }>(`select distinct bundle_id from jobs where customer_id = $1`, [customerId]);
    expect(bundles).toHaveLength(1);
    expect(bundles[0]!.bundle_id).toMatch(/^bundle-/);
  }, 120_000);

  it('after Redis loses the held bundles, puts their members back one by one and runs each once', async () => {
    app = await startTestApp({ SWEEPER_INTERVAL_MS: '3600000', FAIR_SHARING: 'true' });
    const { customerId, ids } = await bulkBacklog(app, jobs);
    const deps = app.deps;
    await obliterateType(deps.queues, 'invoke');
    await app.sql(`update jobs set created_at = created_at - interval '1 minute' where customer_id = $1`, [customerId]);
    const running = await app.startWorkers();
    expect((await running.sweeper.sweep()).reenqueued).toBe(ids.length);
    const rows = await completedRows(app, customerId, '');
    expect(rows.filter((row) => row.state === 'completed' && row.attempts_made === 1)).toHaveLength(jobs);
  }, 300_000);
});
