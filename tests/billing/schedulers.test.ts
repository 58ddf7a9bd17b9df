import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../lib/redis.js';
import { platformSchedules, systemCustomerId, upsertPlatformSchedules } from '../../queue/schedules/platform-schedules.js';
import { createScheduleTickQueue, type ScheduleTickQueue } from '../../queue/schedules/tick-queue.js';
import { waitFor } from '../helpers/http.js';
import { bullJob } from '../helpers/queues.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'chrysalis-schedules-'));
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false', VAULT_PATH: path.join(folder, 'vault.csv') });
});

afterAll(async () => {
  await app?.close();
  await rm(folder, { recursive: true, force: true });
});

/** A second "process": its own connection and tick queue object on the same Redis and prefix. */
async function withProcess<T>(run: (ticks: ScheduleTickQueue) => Promise<T>): Promise<T> {
  const connection = createRedis(app.config.redis, 'blocking');
  const ticks = createScheduleTickQueue(connection, app.config.queuePrefix);
  try {
    return await run(ticks);
  } finally {
    await ticks.close();
    await connection.quit();
  }
}

const types = ['metering', 'billing', 'vault-export', 'month-rollover', 'retention'] as const;

/** Per platform job type: its scheduler on the tick queue, and its pending ticks. */
async function schedulerState(ticks: ScheduleTickQueue) {
  const state: Record<
    string,
    {
      schedulers: Array<{ key: string; every?: number | null; pattern?: string | null; tz?: string | null; next?: number }>;
      pending: number;
    }
  > = {};
  const schedulers = await ticks.getJobSchedulers();
  const pending = await ticks.getJobs(['delayed', 'waiting', 'prioritized']);
  for (const type of types) {
    const key = `platform:${type}`;
    state[type] = {
      schedulers: schedulers
        .filter((s) => s.key === key)
        .map((s) => ({ key: s.key, every: s.every ?? null, pattern: s.pattern ?? null, tz: s.tz ?? null, next: s.next })),
      pending: pending.filter((tick) => tick?.repeatJobKey === key).length,
    };
  }
  return state;
}

describe('platform schedules', () => {
  it('are upserted once however many worker processes start or restart, keeping their next run', async () => {
    const config = {
      ...app.config,
      meteringEveryMs: 300_000,
      billingEveryMs: 3_600_000,
      vaultExportEveryMs: 300_000,
      monthRolloverCron: '0 0 1 * *',
      retentionEveryMs: 3_600_000,
    };
    await Promise.all([withProcess((q) => upsertPlatformSchedules(q, config)), withProcess((q) => upsertPlatformSchedules(q, config))]);
    const first = await withProcess(schedulerState);
    await withProcess((q) => upsertPlatformSchedules(q, config));
    const second = await withProcess(schedulerState);
    expect(second).toEqual(first);

    expect(first.metering!.schedulers).toMatchObject([{ key: 'platform:metering', every: 300_000 }]);
    expect(first.billing!.schedulers).toMatchObject([{ key: 'platform:billing', every: 3_600_000 }]);
    expect(first['vault-export']!.schedulers).toMatchObject([{ key: 'platform:vault-export', every: 300_000 }]);
    expect(first['month-rollover']!.schedulers).toMatchObject([{ key: 'platform:month-rollover', pattern: '0 0 1 * *', tz: 'UTC' }]);
    expect(first.retention!.schedulers).toMatchObject([{ key: 'platform:retention', every: 3_600_000 }]);
    for (const type of types) expect(first[type]!.pending, type).toBe(1);
    const next = new Date(first['month-rollover']!.schedulers[0]!.next!);
    expect([next.getUTCDate(), next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 0, 0]);

    // A new interval replaces the schedule instead of adding one.
    await withProcess((q) => upsertPlatformSchedules(q, { ...config, meteringEveryMs: 120_000 }));
    const changed = await withProcess(schedulerState);
    expect(changed.metering!.schedulers).toMatchObject([{ key: 'platform:metering', every: 120_000 }]);
    expect(changed.metering!.pending).toBe(1);
  });

  it('the intervals and the rollover cron come from the configuration', () => {
    expect(
      platformSchedules({
        ...app.config,
        meteringEveryMs: 1,
        billingEveryMs: 2,
        vaultExportEveryMs: 3,
        monthRolloverCron: '5 0 1 * *',
        retentionEveryMs: 4,
      }).map((s) => [s.id, s.repeat]),
    ).toEqual([
      ['platform:metering', { every: 1 }],
      ['platform:billing', { every: 2 }],
      ['platform:vault-export', { every: 3 }],
      ['platform:month-rollover', { pattern: '5 0 1 * *', tz: 'UTC' }],
      ['platform:retention', { every: 4 }],
    ]);
  });

  it('scheduled runs are ordinary jobs of the system customer (UUIDv7 rows, schedule named), never recorded as usage', async () => {
    await app.startWorkers({ platformSchedules: true });
    const rows = await waitFor(async () => {
      const found = await app.sql<{ id: string; type: string; state: string; customer_id: string; schedule_name: string }>(
        `select id, type, state, customer_id, schedule_name from jobs where type in ('metering', 'billing', 'vault-export') and state = 'completed' order by type`,
      );
      return new Set(found.map((row) => row.type)).size === 3 ? found : null;
    }, 20_000);
    for (const row of rows) {
      expect(row).toMatchObject({ customer_id: systemCustomerId, schedule_name: `platform:${row.type}` });
      expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
      expect(await bullJob(app.deps.queues, row.type, row.id), 'the same id in BullMQ').toBeDefined();
    }
    const workers = await app.startWorkers();
    await workers.requestLog.flush();
    expect(await app.sql(`select * from request_logs where customer_id = $1`, [systemCustomerId])).toEqual([]);
  });
});
