import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { meteringWatermark } from '../../db/repositories/metering.js';
import { insertRequestLogs, type NewRequestLog } from '../../db/repositories/request-logs.js';
import { createMeteringJob, meteringJob } from '../../jobs/metering/metering.job.js';
import { runJob } from '../billing/back-office-fixtures.js';
import { waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { inTransaction } from '../../db/transaction.js';

let app: TestApp;
let orm: Orm;

beforeAll(async () => {
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false' });
  orm = await createOrm(app.config.databaseUrl, { poolMax: 30 });
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

// Each test starts from empty logs and usage, so totals can be compared exactly.
beforeEach(async () => {
  await app.sql('truncate request_logs, usage_records, metering_watermarks, billing_charges restart identity');
});

const hour = (h: number, minute = 0) => new Date(Date.UTC(2026, 0, 5, h, minute, 7));

function logs(customerId: string, count: number, at: Date, extra: Partial<NewRequestLog> = {}): NewRequestLog[] {
  return Array.from({ length: count }, (_, i) => ({
    timestamp: at,
    customerId,
    serviceType: 'seal',
    method: 'GET',
    statusCode: 200,
    bytesOut: 100 + (i % 7),
    ...extra,
  }));
}

/** What the usage records add up to per (customer, service, window), and what the logs say they should. */
async function totals(): Promise<{ recorded: Record<string, [number, number]>; expected: Record<string, [number, number]> }> {
  const recorded = await app.sql<{ k: string; n: string; b: string }>(
    `select customer_id || '/' || service_type || '/' || to_char(window_start at time zone 'UTC', 'HH24') as k, sum(request_count) as n, sum(bytes_transferred) as b
       from usage_records group by 1`,
  );
  const expected = await app.sql<{ k: string; n: string; b: string }>(
    `select customer_id || '/' || service_type || '/' || to_char(date_trunc('hour', timestamp, 'UTC') at time zone 'UTC', 'HH24') as k, count(*) as n, sum(bytes_out) as b
       from request_logs where status_code < 500 and status_code not in (402, 429) group by 1`,
  );
  const asMap = (rows: Array<{ k: string; n: string; b: string }>) =>
    Object.fromEntries(rows.map((r) => [r.k, [Number(r.n), Number(r.b)] as [number, number]]));
  return { recorded: asMap(recorded), expected: asMap(expected) };
}

describe('metering', () => {
  it('aggregates request logs into hourly usage records per customer and service, skipping 402, 429 and 5xx', async () => {
    const alice = randomUUID();
    const bob = randomUUID();
    await insertRequestLogs(orm.em.fork(), [
      ...logs(alice, 3, hour(10, 5), { bytesOut: 1000 }),
      ...logs(alice, 2, hour(10, 59), { bytesOut: 500 }),
      ...logs(alice, 4, hour(11, 0), { bytesOut: 10, serviceType: 'compute' }),
      ...logs(bob, 1, hour(10, 30), { bytesOut: 7 }),
      ...logs(bob, 1, hour(10, 30), { statusCode: 402 }),
      ...logs(bob, 1, hour(10, 30), { statusCode: 429 }),
      ...logs(bob, 1, hour(10, 30), { statusCode: 503 }),
      ...logs(bob, 1, hour(10, 30), { statusCode: 404, bytesOut: 3 }),
    ]);
    const result = await runJob(meteringJob, app, orm);
    expect(result).toMatchObject({ rows: 14, watermark: '14' });
    const records = await app.sql(
      `select customer_id, service_type, window_start, window_end, request_count::int, bytes_transferred::int, charged_usd_cents from usage_records order by customer_id, service_type, window_start`,
    );
    const expected = [
      { customer_id: alice, service_type: 'compute', window_start: hour(11, 0), request_count: 4, bytes_transferred: 40 },
      { customer_id: alice, service_type: 'seal', window_start: hour(10, 0), request_count: 5, bytes_transferred: 4000 },
      { customer_id: bob, service_type: 'seal', window_start: hour(10, 0), request_count: 2, bytes_transferred: 10 },
    ].sort((a, b) => (a.customer_id + a.service_type).localeCompare(b.customer_id + b.service_type));
    expect(records).toEqual(
      expected.map((row) => ({
        ...row,
        window_start: new Date(Date.UTC(2026, 0, 5, row.window_start.getUTCHours())),
        window_end: new Date(Date.UTC(2026, 0, 5, row.window_start.getUTCHours() + 1)),
        charged_usd_cents: null,
      })),
    );
  });

  it('caps a window whose bytes add up past the largest bigint, in one batch and across batches, and meters on', async () => {
    const heavy = randomUUID();
    const light = randomUUID();
    // 1,025 rows of 2^53 − 1 bytes (what the ingest takes) are past 2^63 − 1: the batch failed on every run.
    await insertRequestLogs(orm.em.fork(), logs(heavy, 1025, hour(8), { bytesOut: Number.MAX_SAFE_INTEGER }));
    await runJob(createMeteringJob({ batchSize: 600 }), app, orm);
    await runJob(createMeteringJob({ batchSize: 600 }), app, orm);
    await insertRequestLogs(orm.em.fork(), logs(light, 2, hour(8), { bytesOut: 5 }));
    await runJob(meteringJob, app, orm);
    const records = await app.sql<{ customer_id: string; n: string; b: string }>(
      `select customer_id, sum(request_count)::text as n, sum(bytes_transferred)::text as b from usage_records group by customer_id`,
    );
    expect(Object.fromEntries(records.map((row) => [row.customer_id, [row.n, row.b]]))).toEqual({
      [heavy]: ['1025', '9223372036854775807'],
      [light]: ['2', '10'],
    });
    expect(await meteringWatermark(orm.em.fork())).toBe('1027');
  });

  it('counts every row exactly once however often it runs (retries)', async () => {
    const customer = randomUUID();
    await insertRequestLogs(orm.em.fork(), logs(customer, 250, hour(9)));
    const job = createMeteringJob({ batchSize: 40 });
    await runJob(job, app, orm);
    await runJob(job, app, orm);
    await insertRequestLogs(orm.em.fork(), logs(customer, 30, hour(9)));
    await runJob(job, app, orm);
    await runJob(job, app, orm);
    const { recorded, expected } = await totals();
    expect(recorded).toEqual(expected);
    expect(recorded[`${customer}/seal/09`]?.[0]).toBe(280);
    expect(await meteringWatermark(orm.em.fork())).toBe('280');
  });

  it('a run that crashes mid-batch keeps what it committed and the next run counts the rest exactly once', async () => {
    const customer = randomUUID();
    await insertRequestLogs(orm.em.fork(), logs(customer, 500, hour(8)));
    let batches = 0;
    const crashing = createMeteringJob({
      batchSize: 100,
      beforeCommit: () => {
        batches += 1;
        // The third batch has written its counts and moved the watermark, then the process "dies" before commit.
        if (batches === 3) throw new Error('simulated crash before commit');
      },
    });
    await expect(runJob(crashing, app, orm)).rejects.toThrow('simulated crash');
    expect(await meteringWatermark(orm.em.fork())).toBe('200');
    expect((await totals()).recorded[`${customer}/seal/08`]?.[0]).toBe(200);

    await runJob(createMeteringJob({ batchSize: 100 }), app, orm);
    const { recorded, expected } = await totals();
    expect(recorded).toEqual(expected);
    expect(recorded[`${customer}/seal/08`]?.[0]).toBe(500);
  });

  it('ten concurrent runs count every row exactly once', async () => {
    const customers = Array.from({ length: 4 }, () => randomUUID());
    const rows = customers.flatMap((customer, i) => [
      ...logs(customer, 400 + i, hour(12)),
      ...logs(customer, 150, hour(13), { serviceType: 'compute' }),
    ]);
    await insertRequestLogs(orm.em.fork(), rows);
    const job = createMeteringJob({ batchSize: 50 });
    const results = await Promise.all(Array.from({ length: 10 }, () => runJob(job, app, orm)));
    expect(results.reduce((sum, r) => sum + r.rows, 0)).toBe(rows.length);
    const { recorded, expected } = await totals();
    expect(recorded).toEqual(expected);
    expect(Object.values(recorded).reduce((sum, [n]) => sum + n, 0)).toBe(rows.length);
  });

  it('never skips rows committed while runs are in progress (concurrent writers and runs)', async () => {
    const customers = Array.from({ length: 3 }, () => randomUUID());
    let writing = true;
    const writers = customers.map(async (customer) => {
      for (let i = 0; i < 25; i++) await insertRequestLogs(orm.em.fork(), logs(customer, 20, hour(14 + (i % 3))));
    });
    const job = createMeteringJob({ batchSize: 30 });
    const meters = Array.from({ length: 3 }, async () => {
      while (writing) await runJob(job, app, orm);
    });
    await Promise.all(writers);
    writing = false;
    await Promise.all(meters);
    await runJob(job, app, orm);
    const { recorded, expected } = await totals();
    expect(recorded).toEqual(expected);
    expect(Object.values(recorded).reduce((sum, [n]) => sum + n, 0)).toBe(3 * 25 * 20);
  });

  it('never moves the watermark past a row whose transaction commits later than a newer one', async () => {
    const customer = randomUUID();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let aInserted = false;
    // Transaction A takes ids first and stays open; B inserts after it and would commit first.
    const a = inTransaction(orm.em, async (tx) => {
      await insertRequestLogs(tx, logs(customer, 5, hour(16)));
      aInserted = true;
      await held;
    });
    await waitFor(async () => aInserted);
    let bDone = false;
    const b = insertRequestLogs(orm.em.fork(), logs(customer, 7, hour(16))).then(() => (bDone = true));
    // B has either committed (no ordering) or is queued behind A's insert lock.
    await waitFor(
      async () =>
        bDone ||
        Number((await app.sql<{ n: string }>(`select count(*) as n from pg_locks where locktype = 'advisory' and not granted`))[0]!.n) > 0,
    );
    await runJob(meteringJob, app, orm);
    release();
    await Promise.all([a, b]);
    await runJob(meteringJob, app, orm);
    const { recorded } = await totals();
    expect(recorded[`${customer}/seal/16`]?.[0]).toBe(12);
  });

  it('never changes a charged or claimed record: late rows for its window open a new record', async () => {
    const customer = randomUUID();
    await insertRequestLogs(orm.em.fork(), logs(customer, 10, hour(15, 10), { bytesOut: 1 }));
    await runJob(meteringJob, app, orm);
    const [charged] = await app.sql<{ id: string }>(
      `update usage_records set charged_usd_cents = 3 where customer_id = $1 returning id::text`,
      [customer],
    );
    const before = await app.sql(`select * from usage_records where id = $1`, [charged!.id]);

    await insertRequestLogs(orm.em.fork(), logs(customer, 4, hour(15, 50), { bytesOut: 1 }));
    await runJob(meteringJob, app, orm);
    expect(await app.sql(`select * from usage_records where id = $1`, [charged!.id])).toEqual(before);
    const open = await app.sql(`select request_count::int as n, charged_usd_cents from usage_records where customer_id = $1 and id <> $2`, [
      customer,
      charged!.id,
    ]);
    expect(open).toEqual([{ n: 4, charged_usd_cents: null }]);

    // A record claimed by a pending charge is as frozen as a charged one.
    const [claimed] = await app.sql<{ id: string }>(
      `update usage_records set charge_id = gen_random_uuid() where customer_id = $1 and charged_usd_cents is null returning id::text`,
      [customer],
    );
    const claimedBefore = await app.sql(`select * from usage_records where id = $1`, [claimed!.id]);
    await insertRequestLogs(orm.em.fork(), logs(customer, 2, hour(15, 55), { bytesOut: 1 }));
    await runJob(meteringJob, app, orm);
    expect(await app.sql(`select * from usage_records where id = $1`, [claimed!.id])).toEqual(claimedBefore);
    const windows = await app.sql<{ n: string }>(`select sum(request_count) as n from usage_records where customer_id = $1`, [customer]);
    expect(Number(windows[0]!.n)).toBe(16);
  });
});
