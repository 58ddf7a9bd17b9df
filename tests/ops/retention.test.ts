import { randomBytes, randomUUID } from 'node:crypto';
import { newApiKey } from '../../api/auth/credentials.js';
import { sha256 } from '../../lib/crypto.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { insertRequestLogs, type NewRequestLog } from '../../db/repositories/request-logs.js';
import { billingJob } from '../../jobs/billing/billing.job.js';
import { meteringJob } from '../../jobs/metering/metering.job.js';
import { createRetentionJob, retentionJob } from '../../jobs/retention/retention.job.js';
import { runJob, seedCustomer } from '../billing/back-office-fixtures.js';
import { registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let orm: Orm;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  // Starter jobs live 7 days, pro ones the default 30, enterprise ones for good.
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false', JOB_RETENTION_DAYS: '30', JOB_RETENTION_DAYS_BY_TIER: 'starter=7,enterprise=0' });
  orm = await createOrm(app.config.databaseUrl, { poolMax: 10 });
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

beforeEach(async () => {
  await app.sql(
    'truncate jobs, batch_items, request_logs, usage_records, metering_watermarks, webhook_deliveries, webhook_attempts cascade',
  );
});

const day = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * day);
const hex = (digits: number) => randomBytes(8).toString('hex').slice(0, digits);
/** A UUIDv7 as one minted at `at` would be. */
const idAt = (at: Date) => `${uuidv7Floor(at).slice(0, 14)}7${hex(3)}-8${hex(3)}-${hex(12)}`;

async function customerOfTier(tier: 'starter' | 'pro' | 'enterprise' | null): Promise<string> {
  const id = randomUUID();
  if (tier) await app.sql(`insert into service_instances (customer_id, service_type, tier) values ($1, 'compute', $2)`, [id, tier]);
  return id;
}

interface JobRow {
  customerId: string;
  state: 'queued' | 'delayed' | 'active' | 'completed' | 'failed' | 'cancelled';
  createdDaysAgo: number;
  /** Default: finished when created, if final. */
  finishedDaysAgo?: number;
  type?: string;
  items?: number;
}

/** Inserts a job row (with `items` batch items) as one created and finished those days ago; returns its id. */
async function insertJob(job: JobRow): Promise<string> {
  const created = daysAgo(job.createdDaysAgo);
  const final = ['completed', 'failed', 'cancelled'].includes(job.state);
  const finished = final ? daysAgo(job.finishedDaysAgo ?? job.createdDaysAgo) : null;
  const id = idAt(created);
  await app.sql(
    `insert into jobs (id, customer_id, type, state, payload, created_at, started_at, finished_at)
     values ($1, $2, $3, $4, '{}', $5, $6, $6)`,
    [id, job.customerId, job.type ?? 'invoke', job.state, created.toISOString(), finished?.toISOString() ?? null],
  );
  if (job.items)
    await app.sql(
      `insert into batch_items (batch_id, index, substrate_id, state, result)
       select $1, i, 'sub', 'completed', '1' from generate_series(0, $2 - 1) as i`,
      [id, job.items],
    );
  return id;
}

const remainingJobs = async (ids: string[]) =>
  (await app.sql<{ id: string }>(`select id from jobs where id = any($1::uuid[])`, [ids])).map((row) => row.id).sort();
const itemsOf = async (id: string) =>
  Number((await app.sql<{ n: string }>(`select count(*) as n from batch_items where batch_id = $1`, [id]))[0]!.n);

const hourOf = (at: Date) => new Date(Math.floor(at.getTime() / 3_600_000) * 3_600_000 + 60_000);

function logs(customerId: string, count: number, at: Date, statusCode = 200): NewRequestLog[] {
  return Array.from({ length: count }, () => ({
    timestamp: at,
    customerId,
    serviceType: 'seal',
    method: 'GET',
    statusCode,
    bytesOut: 1_000_000_000,
  }));
}

/** Request logs arrive as they happened: received at their own timestamp. */
async function insertLogs(rows: NewRequestLog[]): Promise<void> {
  await insertRequestLogs(orm.em.fork(), rows);
  await app.sql(`update request_logs set received_at = timestamp where received_at > timestamp`);
}

const countLogs = async (customerId: string) =>
  Number((await app.sql<{ n: string }>(`select count(*) as n from request_logs where customer_id = $1`, [customerId]))[0]!.n);

async function billingEvidence() {
  const [row] = await app.sql<Record<string, string>>(
    `select (select count(*) from usage_records) as usage_records, (select coalesce(sum(request_count), 0) from usage_records) as requests,
            (select count(*) from billing_charges) as charges, (select count(*) from escrow_transactions) as transactions,
            (select count(*) from escrow_entries) as entries`,
  );
  return row;
}

// First in the file: the API's own request-log rows (later tests call it) must not land among these.
describe('retention of request logs', () => {
  it('deletes old logs only once metered and billed; unbilled, unmetered and young ones stay, and billing evidence stays', async () => {
    const billed = await seedCustomer(app, { depositUsdCents: 100_000 });
    const unbilled = await seedCustomer(app); // no balance: billing cannot charge it
    const unmetered = await seedCustomer(app, { depositUsdCents: 100_000 });
    const young = await seedCustomer(app, { depositUsdCents: 100_000 });
    const old = hourOf(daysAgo(100));
    await insertLogs([
      ...logs(billed, 5, old),
      ...logs(billed, 2, old, 429), // never billable: goes once metered
      ...logs(unbilled, 3, old),
      ...logs(young, 4, hourOf(daysAgo(10))),
    ]);
    await runJob(meteringJob, app, orm);
    await runJob(billingJob, app, orm);
    // Past the watermark: not metered yet, whatever its age.
    await insertLogs(logs(unmetered, 6, old));
    const unbilledRecords = await app.sql(`select 1 from usage_records where customer_id = $1 and charged_usd_cents is null`, [unbilled]);
    expect(unbilledRecords.length, 'the customer without balance has unbilled usage').toBe(1);
    const evidence = await billingEvidence();
    expect(Number(evidence!.charges)).toBeGreaterThan(0);

    const result = await runJob(createRetentionJob({ stepRows: 4 }), app, orm);

    expect(result.request_logs).toBe(7);
    expect([await countLogs(billed), await countLogs(unbilled), await countLogs(unmetered), await countLogs(young)]).toEqual([0, 3, 6, 4]);
    expect(await billingEvidence()).toEqual(evidence);
  });
});

describe('retention of jobs', () => {
  it('deletes finished jobs past their tier’s retention and keeps unfinished ones, younger ones and kept tiers', async () => {
    const starter = await customerOfTier('starter');
    const noService = await customerOfTier(null); // counts as starter
    const pro = await customerOfTier('pro');
    const enterprise = await customerOfTier('enterprise');
    const gone = [
      await insertJob({ customerId: starter, state: 'completed', createdDaysAgo: 10 }),
      await insertJob({ customerId: starter, state: 'failed', createdDaysAgo: 9, finishedDaysAgo: 8 }),
      await insertJob({ customerId: starter, state: 'cancelled', createdDaysAgo: 8 }),
      await insertJob({ customerId: noService, state: 'completed', createdDaysAgo: 12 }),
      await insertJob({ customerId: pro, state: 'completed', createdDaysAgo: 40 }),
    ];
    const kept = [
      await insertJob({ customerId: starter, state: 'completed', createdDaysAgo: 3 }),
      // Created long ago, finished recently: retention counts from the finish.
      await insertJob({ customerId: starter, state: 'failed', createdDaysAgo: 20, finishedDaysAgo: 2 }),
      await insertJob({ customerId: starter, state: 'queued', createdDaysAgo: 40 }),
      await insertJob({ customerId: starter, state: 'delayed', createdDaysAgo: 40 }),
      await insertJob({ customerId: starter, state: 'active', createdDaysAgo: 40 }),
      await insertJob({ customerId: pro, state: 'completed', createdDaysAgo: 10 }),
      await insertJob({ customerId: enterprise, state: 'completed', createdDaysAgo: 400 }),
    ];

    const result = await runJob(retentionJob, app, orm);

    expect(result).toMatchObject({ jobs: gone.length, batch_items: 0 });
    expect(await remainingJobs([...gone, ...kept])).toEqual([...kept].sort());
    // A second run finds nothing more.
    expect(await runJob(retentionJob, app, orm)).toMatchObject({ jobs: 0 });
  });

  it('takes a batch’s items with their batch, and leaves a kept batch’s items alone', async () => {
    const starter = await customerOfTier('starter');
    const oldBatch = await insertJob({ customerId: starter, type: 'batch', state: 'completed', createdDaysAgo: 10, items: 25 });
    const newBatch = await insertJob({ customerId: starter, type: 'batch', state: 'completed', createdDaysAgo: 1, items: 4 });
    const runningBatch = await insertJob({ customerId: starter, type: 'batch', state: 'active', createdDaysAgo: 10, items: 6 });

    const result = await runJob(createRetentionJob({ stepRows: 7 }), app, orm);

    expect(result).toMatchObject({ jobs: 1, batch_items: 25 });
    expect(await remainingJobs([oldBatch, newBatch, runningBatch])).toEqual([newBatch, runningBatch].sort());
    expect([await itemsOf(oldBatch), await itemsOf(newBatch), await itemsOf(runningBatch)]).toEqual([0, 4, 6]);
  });

  it('works through the table in bounded steps and reports what it deleted', async () => {
    const starter = await customerOfTier('starter');
    for (let i = 0; i < 10; i++) await insertJob({ customerId: starter, state: 'completed', createdDaysAgo: 20 + i });
    for (let i = 0; i < 4; i++) await insertJob({ customerId: starter, state: 'queued', createdDaysAgo: 20 + i });

    const result = await runJob(createRetentionJob({ stepRows: 3 }), app, orm);

    // 14 rows read 3 at a time (5 steps, then one that finds nothing), for jobs; one step each for the empty logs and
    // deliveries, and for the refresh tokens (none expired).
    expect(result).toEqual({
      jobs: 10,
      batch_items: 0,
      request_logs: 0,
      webhook_deliveries: 0,
      webhook_attempts: 0,
      refresh_tokens: 0,
      idempotency_keys: 0,
      // A tier keeps its jobs for good (enterprise=0): no partition goes whole; the coming ones exist since migrating.
      job_partitions_dropped: 0,
      job_partitions_created: 0,
      steps: 9,
    });
    expect(Number((await app.sql<{ n: string }>(`select count(*) as n from jobs`))[0]!.n)).toBe(4);
  });

  it('keeps everything with JOB_RETENTION_DAYS=0', async () => {
    const starter = await customerOfTier('starter');
    const id = await insertJob({ customerId: starter, state: 'completed', createdDaysAgo: 1000 });
    const keepAll = { ...app.config, jobRetentionDays: { starter: 0, pro: 0, enterprise: 0 } };
    expect(await runJob(retentionJob, app, orm, { config: keepAll })).toMatchObject({ jobs: 0 });
    expect(await remainingJobs([id])).toEqual([id]);
  });

  it('answers 404 for a deleted job, keeps a retry’s dangling retry_of, and a replayed idempotency key makes a new job', async () => {
    const user = await registerUser(request);
    const substrateId = await createExpressionSubstrate(request, user.accessToken, 'x + 1');
    const body = { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1 } } };
    const submitted = await request('POST', '/api/v1/jobs', { token: user.accessToken, body, headers: { 'idempotency-key': 'replay-1' } });
    expect(submitted.status, submitted.text).toBe(202);
    // Age it: as if accepted and finished 40 days ago (a registered customer is on the starter tier: 7 days).
    const oldId = idAt(daysAgo(40));
    await app.sql(
      `update jobs set id = $2, state = 'failed', error = 'boom', created_at = now() - interval '40 days', finished_at = now() - interval '40 days' where id = $1`,
      [submitted.body.id, oldId],
    );
    const [{ customer_id: customerId } = { customer_id: '' }] = await app.sql<{ customer_id: string }>(
      `select customer_id from jobs where id = $1`,
      [oldId],
    );
    const retry = await insertJob({ customerId, state: 'completed', createdDaysAgo: 1 });
    await app.sql(`update jobs set retry_of = $1 where id = $2`, [oldId, retry]);
    expect((await request('GET', `/api/v1/jobs/${oldId}`, { token: user.accessToken })).status).toBe(200);

    expect(await runJob(retentionJob, app, orm)).toMatchObject({ jobs: 1 });

    expect((await request('GET', `/api/v1/jobs/${oldId}`, { token: user.accessToken })).status).toBe(404);
    const retried = await request('GET', `/api/v1/jobs/${retry}`, { token: user.accessToken });
    expect(retried.status).toBe(200);
    expect(retried.body.retry_of).toBe(oldId);
    const replay = await request('POST', '/api/v1/jobs', { token: user.accessToken, body, headers: { 'idempotency-key': 'replay-1' } });
    expect(replay.status, replay.text).toBe(202);
    expect(replay.body.id).not.toBe(oldId);
    expect(replay.body.id).not.toBe(submitted.body.id);
    const keys = await app.sql<{ job_id: string }>(`select job_id from job_idempotency_keys where idempotency_key = 'replay-1'`);
    expect(keys, 'the key names the new job').toEqual([{ job_id: replay.body.id }]);
  });
});

async function insertDelivery(state: 'pending' | 'succeeded' | 'failed', createdDaysAgo: number, attempts: number): Promise<string> {
  const created = daysAgo(createdDaysAgo);
  const id = idAt(created);
  await app.sql(
    `insert into webhook_deliveries (id, customer_id, job_id, url, event_type, payload, message_id, dedupe_key, state, attempts, created_at, finished_at)
     values ($1, $2, $3, 'http://127.0.0.1:9/hook', 'job.completed', '{}', $4, $4, $5, $6, $7, case when $5 = 'pending' then null else $7::timestamptz end)`,
    [id, randomUUID(), randomUUID(), `msg_${id}`, state, attempts, created.toISOString()],
  );
  for (let attempt = 1; attempt <= attempts; attempt++)
    await app.sql(`insert into webhook_attempts (id, delivery_id, attempt, status_code, duration_ms, at) values ($1, $2, $3, 500, 5, $4)`, [
      idAt(created),
      id,
      attempt,
      created.toISOString(),
    ]);
  return id;
}

describe('retention of webhook deliveries', () => {
  it('deletes deliveries finished more than 30 days ago with their attempts, and keeps pending and recent ones', async () => {
    const gone = [await insertDelivery('succeeded', 40, 2), await insertDelivery('failed', 31, 5)];
    const kept = [await insertDelivery('pending', 40, 3), await insertDelivery('succeeded', 5, 1)];

    const result = await runJob(createRetentionJob({ stepRows: 2 }), app, orm);

    expect(result).toMatchObject({ webhook_deliveries: 2, webhook_attempts: 7 });
    const left = await app.sql<{ id: string; attempts: string }>(
      `select d.id, (select count(*) from webhook_attempts a where a.delivery_id = d.id) as attempts from webhook_deliveries d order by d.id`,
    );
    expect(left).toEqual(kept.map((id, i) => ({ id, attempts: String([3, 1][i]) })).sort((a, b) => a.id.localeCompare(b.id)));
    expect(gone.every((id) => !left.some((row) => row.id === id))).toBe(true);
  });
  it('deletes refresh tokens past their expiry, rotated, revoked or unused, in steps, and a live one still refreshes', async () => {
    const user = await registerUser(request);
    const [owner] = await app.sql<{ user_id: string; family_id: string }>(
      `select user_id, family_id from refresh_tokens where token_hash = $1`,
      [sha256(user.refreshToken)],
    );
    // A month-long lifetime: tokens minted 40 to 31 days ago expired 10 to 1 days ago.
    const expired: string[] = [];
    for (const [mintedDaysAgo, state] of [
      [40, 'rotated'],
      [39, 'revoked'],
      [38, null],
      [35, 'rotated'],
      [33, null],
      [32, 'revoked'],
      [31, null],
    ] as const) {
      const minted = daysAgo(mintedDaysAgo);
      const id = idAt(minted);
      expired.push(id);
      await app.sql(
        `insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at, rotated_at, revoked_at, created_at)
         values ($1, $2, $3, $4, $5::timestamptz + interval '30 days', $6, $7, $5)`,
        [
          id,
          owner!.user_id,
          owner!.family_id,
          sha256(newApiKey()),
          minted.toISOString(),
          state === 'rotated' ? minted : null,
          state === 'revoked' ? minted : null,
        ],
      );
    }
    const [before] = await app.sql<{ count: number }>(`select count(*)::int as count from refresh_tokens`);

    const result = await runJob(createRetentionJob({ stepRows: 3 }), app, orm);

    expect(result.refresh_tokens).toBe(7);
    const left = await app.sql<{ id: string; expires_at: Date }>(`select id, expires_at from refresh_tokens`);
    expect(left).toHaveLength(before!.count - 7);
    expect(left.some((row) => expired.includes(row.id))).toBe(false);
    expect(left.every((row) => row.expires_at.getTime() > Date.now())).toBe(true);
    const refreshed = await request('POST', '/api/v1/auth/refresh', { body: { refresh_token: user.refreshToken } });
    expect(refreshed.status, refreshed.text).toBe(200);
    // A second run finds nothing more to delete, in one step.
    expect((await runJob(createRetentionJob({ stepRows: 3 }), app, orm)).refresh_tokens).toBe(0);
  });
});
