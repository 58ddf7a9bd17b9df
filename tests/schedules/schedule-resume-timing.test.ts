import { describe, expect, it } from 'vitest';
import { createRedis } from '../../lib/redis.js';
import { schedulerIdFor } from '../../queue/schedules/user-schedulers.js';
import { waitFor } from '../helpers/http.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { useTestApp } from '../helpers/suite.js';

// Workers check every SWEEPER_INTERVAL_MS that Redis still holds the schedules.
const suite = useTestApp({ workers: true, users: 1, env: { SWEEPER_INTERVAL_MS: '500' } });

const token = () => suite.users[0]!.accessToken;
const job = { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [6, 7] } } };
const post = (path: string, body?: unknown) => suite.request('POST', `/api/v1${path}`, { token: token(), body });

/** The schedule's runs (its jobs), oldest first. */
const runsOf = (name: string) =>
  suite.app.sql<{ created_at: Date }>(`select created_at from jobs where schedule_name = $1 order by id`, [name]);

/** Waits for the schedule's `count`th run and answers when it was created (ms). */
async function nthRun(name: string, count: number, timeoutMs = 10_000): Promise<number> {
  const runs = await waitFor(async () => {
    const rows = await runsOf(name);
    return rows.length >= count ? rows : null;
  }, timeoutMs);
  return runs[count - 1]!.created_at.getTime();
}

/**
 * Proves the absence of a run: the schedule still has `count` runs after a short wait (an extra run, as
 * BullMQ fires a re-created `every` scheduler at once, came within 150 ms of the call).
 */
async function expectNoRunFor(name: string, count: number, ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  expect(await runsOf(name)).toHaveLength(count);
}

const expectAbout = (actual: string | null, expected: number) => {
  expect(actual).toEqual(expect.any(String));
  expect(Math.abs(Date.parse(actual as string) - expected), `${actual} vs ${new Date(expected).toISOString()}`).toBeLessThan(1_000);
};

describe("re-creating an every_ms schedule's clock keeps its pace", () => {
  it('pause then resume: no run at once, and next_run_at and the next run come an interval after the last run', async () => {
    expect((await post('/schedules', { name: 'resumed', every_ms: 10_000, job })).status).toBe(201);
    // A new schedule still runs at once.
    const first = await nthRun('resumed', 1);

    expect((await post('/schedules/resumed/pause')).status).toBe(200);
    const resumed = await post('/schedules/resumed/resume');
    expect(resumed.status, resumed.text).toBe(200);
    expectAbout(resumed.body.next_run_at, first + 10_000);
    // The next run comes an interval after the first, not at the resume.
    const second = await nthRun('resumed', 2, 15_000);
    expect(second - first).toBeGreaterThanOrEqual(10_000 - 500);
  });

  it('an upsert changing every_ms to 1 h: no run at once, the next one an hour after the last run', async () => {
    expect((await post('/schedules', { name: 'slowed', every_ms: 10_000, job })).status).toBe(201);
    const first = await nthRun('slowed', 1);

    const slowed = await post('/schedules', { name: 'slowed', every_ms: 3_600_000, job });
    expect(slowed.status, slowed.text).toBe(200);
    expectAbout(slowed.body.next_run_at, first + 3_600_000);
    await expectNoRunFor('slowed', 1, 2_000);
  });

  it('written back from PostgreSQL after Redis lost it: no run at once, the next one an interval after the last', async () => {
    expect((await post('/schedules', { name: 'survivor', every_ms: 3_600_000, job })).status).toBe(201);
    const first = await nthRun('survivor', 1);
    const me = await suite.request('GET', '/api/v1/auth/me', { token: token() });

    const redis = createRedis(suite.app.config.redis);
    await deleteKeys(redis, `${suite.app.config.queuePrefix}:*`);
    await redis.quit();
    // The workers notice within SWEEPER_INTERVAL_MS and write the schedules back.
    const scheduler = await waitFor(() => suite.app.deps.scheduleTicks.getJobScheduler(schedulerIdFor(me.body.customer_id, 'survivor')));
    expect(Math.abs(Number(scheduler.next) - (first + 3_600_000))).toBeLessThan(1_000);
    await expectNoRunFor('survivor', 1, 2_000);
  });
});
