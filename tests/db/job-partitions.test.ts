import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { findJobStatement } from '../../db/jobs/find-jobs.js';
import { ensureJobPartitions, jobPartitionName, listJobPartitions } from '../../db/jobs/job-partitions.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { createRetentionJob } from '../../jobs/retention/retention.job.js';
import { runJob } from '../billing/back-office-fixtures.js';
import type { TestUser } from '../helpers/accounts.js';
import { registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let orm: Orm;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  // Every tier keeps finished jobs 30 days, so partitions older than that may go whole.
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false', JOB_RETENTION_DAYS: '30' });
  orm = await createOrm(app.config.databaseUrl, { poolMax: 6 });
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

const day = 86_400_000;
const week = 7 * day;
const daysAgo = (days: number) => new Date(Date.now() - days * day);
const hex = (digits: number) => randomBytes(8).toString('hex').slice(0, digits);
/** A UUIDv7 as one minted at `at` would be. */
const idAt = (at: Date) => `${uuidv7Floor(at).slice(0, 14)}7${hex(3)}-8${hex(3)}-${hex(12)}`;
const partitionOf = (at: Date) => jobPartitionName(Math.floor(at.getTime() / week) * week);
const partitionNames = async () => (await listJobPartitions(orm.em.fork())).map((partition) => partition.name);

/** The partitions of `jobs` (by name) a plan's nodes read, from EXPLAIN's JSON. */
function relationsOf(plan: unknown): string[] {
  const found: string[] = [];
  const walk = (node: Record<string, unknown>) => {
    if (typeof node['Relation Name'] === 'string' && node['Actual Loops'] !== 0) found.push(node['Relation Name']);
    for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(child);
  };
  walk((plan as Array<{ Plan: Record<string, unknown> }>)[0]!.Plan);
  return found;
}

describe('partitions of jobs and batch_items', () => {
  it('exist for the current week and the next two, with a DEFAULT partition each, right after migrating', async () => {
    const names = await partitionNames();
    for (const offset of [0, 1, 2]) expect(names).toContain(partitionOf(new Date(Date.now() + offset * week)));
    const defaults = await app.sql<{ name: string }>(
      `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent in ('jobs'::regclass, 'batch_items'::regclass) and pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' order by 1`,
    );
    expect(defaults.map((row) => row.name)).toEqual(['batch_items_default', 'jobs_default']);
  });

  it('GET /jobs/:id reads one partition, with the id as a literal and as a parameter of a generic plan', async () => {
    const user = await registerUser(request);
    const substrateId = await createExpressionSubstrate(request, user.accessToken, 'x + 1');
    const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: user.accessToken,
      body: { parameters: { x: 1 } },
    });
    expect(submitted.status).toBe(202);
    const [{ customer_id: customerId }] = (await app.sql<{ customer_id: string }>(`select customer_id from jobs where id = $1`, [
      submitted.body.id,
    ])) as [{ customer_id: string }];

    const literal = await app.sql<{ 'QUERY PLAN': unknown }>(
      `explain (analyze, format json) ${findJobStatement.replace('$1', `'${submitted.body.id}'`).replace('$2', `'${customerId}'`)}`,
    );
    expect(relationsOf(literal[0]!['QUERY PLAN'])).toEqual([partitionOf(new Date())]);

    // The API runs it as a prepared statement: after a few runs PostgreSQL may plan it once for any id, and then
    // prunes at execution (the other partitions' scans never start).
    const generic = await genericPlan(submitted.body.id as string, customerId);
    expect(generic.planned.length, 'a generic plan lists every partition').toBeGreaterThan(1);
    expect(generic.executed).toEqual([partitionOf(new Date())]);
  });

  it('keeps partitions coming: idempotent, concurrent callers create each once, old ranges on request', async () => {
    const later = new Date(Date.now() + 5 * week);
    const runs = await Promise.all(
      [0, 1, 2].map(() => ensureJobPartitions(orm.em.fork(), { partitionDays: 7, daySeconds: 86_400, now: later })),
    );
    const created = runs.flat();
    expect(new Set(created).size).toBe(created.length);
    for (const offset of [5, 6, 7]) expect(await partitionNames()).toContain(partitionOf(new Date(Date.now() + offset * week)));
    expect(await ensureJobPartitions(orm.em.fork(), { partitionDays: 7, daySeconds: 86_400, now: later })).toEqual([]);

    // A job and its batch items in a range made now land in it.
    await ensureJobPartitions(orm.em.fork(), { partitionDays: 7, daySeconds: 86_400, now: daysAgo(200), ahead: 0 });
    const id = idAt(daysAgo(200));
    await app.sql(`insert into jobs (id, customer_id, type, state, payload) values ($1, $2, 'batch', 'completed', '{}')`, [
      id,
      randomUUID(),
    ]);
    await app.sql(`insert into batch_items (batch_id, index, substrate_id, state) values ($1, 0, 's', 'completed')`, [id]);
    const [where] = await app.sql<{ job: string; item: string }>(
      `select (select tableoid::regclass::text from jobs where id = $1) as job, (select tableoid::regclass::text from batch_items where batch_id = $1) as item`,
      [id],
    );
    expect(where).toEqual({ job: partitionOf(daysAgo(200)), item: partitionOf(daysAgo(200)).replace('jobs_', 'batch_items_') });
  });
});

/** EXPLAIN ANALYZE of GET /jobs/:id's statement, prepared and forced to a generic plan, on one connection. */
async function genericPlan(id: string, customerId: string): Promise<{ planned: string[]; executed: string[] }> {
  const knex = orm.em.getConnection().getKnex();
  return knex.transaction(async (trx) => {
    await trx.raw(`set local plan_cache_mode = force_generic_plan`);
    await trx.raw(`prepare find_job_probe as ${findJobStatement}`);
    const result = (await trx.raw(`explain (analyze, format json) execute find_job_probe('${id}', '${customerId}')`)) as {
      rows: Array<{ 'QUERY PLAN': unknown }>;
    };
    await trx.raw(`deallocate find_job_probe`);
    const plan = result.rows[0]!['QUERY PLAN'];
    const planned: string[] = [];
    const walk = (node: Record<string, unknown>) => {
      if (typeof node['Relation Name'] === 'string') planned.push(node['Relation Name']);
      // Partitions pruned when the plan starts are left out of it, counted here.
      for (let i = 0; i < Number(node['Subplans Removed'] ?? 0); i++) planned.push('(pruned)');
      for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(child);
    };
    walk((plan as Array<{ Plan: Record<string, unknown> }>)[0]!.Plan);
    return { planned, executed: relationsOf(plan) };
  });
}

describe('retention drops whole partitions', () => {
  let user: TestUser;

  beforeAll(async () => {
    user = await registerUser(request);
  });

  beforeEach(async () => {
    await app.sql('truncate jobs, batch_items, job_idempotency_keys');
  });

  async function insertJob(created: Date, state: string, finished: Date | null, items = 0, key?: string): Promise<string> {
    const id = idAt(created);
    const customerId = randomUUID();
    await app.sql(
      `insert into jobs (id, customer_id, type, state, payload, created_at, finished_at, idempotency_key) values ($1, $2, 'batch', $3, '{}', $4, $5, $6)`,
      [id, customerId, state, created.toISOString(), finished?.toISOString() ?? null, key ?? null],
    );
    if (key)
      await app.sql(`insert into job_idempotency_keys (customer_id, idempotency_key, job_id) values ($1, $2, $3)`, [customerId, key, id]);
    if (items > 0)
      await app.sql(
        `insert into batch_items (batch_id, index, substrate_id, state) select $1, i, 's', 'completed' from generate_series(0, $2 - 1) i`,
        [id, items],
      );
    return id;
  }

  it('drops a partition only when every job in it finished before the longest retention; others lose their expired rows', async () => {
    // Three old weeks: one all expired, one holding a queued job, one holding a job finished last week.
    for (const days of [100, 80, 60])
      await ensureJobPartitions(orm.em.fork(), { partitionDays: 7, daySeconds: 86_400, now: daysAgo(days), ahead: 0 });
    const expired = [
      await insertJob(daysAgo(100), 'completed', daysAgo(100), 3, 'k-expired'),
      await insertJob(daysAgo(100), 'failed', daysAgo(99)),
    ];
    const withQueued = [
      await insertJob(daysAgo(80), 'queued', null),
      await insertJob(daysAgo(80), 'completed', daysAgo(80), 2, 'k-row-deleted'),
    ];
    const finishedLate = [await insertJob(daysAgo(60), 'completed', daysAgo(5)), await insertJob(daysAgo(60), 'cancelled', daysAgo(60))];
    const young = await insertJob(daysAgo(1), 'completed', daysAgo(1));

    const result = await runJob(createRetentionJob(), app, orm);

    // (Empty partitions older than the cutoff, made by earlier tests, go too.)
    expect(result.job_partitions_dropped).toBeGreaterThanOrEqual(1);
    const names = await partitionNames();
    expect(names).not.toContain(partitionOf(daysAgo(100)));
    expect(names).toContain(partitionOf(daysAgo(80)));
    expect(names).toContain(partitionOf(daysAgo(60)));
    const [twin] = await app.sql<{ present: boolean }>(`select to_regclass($1) is not null as present`, [
      partitionOf(daysAgo(100)).replace('jobs_', 'batch_items_'),
    ]);
    expect(twin?.present, 'the batch items partition goes with its jobs partition').toBe(false);
    // The kept partitions lost their expired rows the ordinary way; the unfinished job and the late one stay.
    const remaining = (await app.sql<{ id: string }>(`select id from jobs order by id`)).map((row) => row.id);
    expect(remaining.sort()).toEqual([withQueued[0]!, finishedLate[0]!, young].sort());
    expect(result.jobs).toBe(expired.length + 2);
    expect(result.batch_items).toBe(3 + 2);
    // One key went with its dropped partition, one with its deleted row.
    expect(result.idempotency_keys).toBe(2);
    expect(await app.sql(`select 1 from job_idempotency_keys`)).toEqual([]);
    expect(Number((await app.sql<{ n: string }>(`select count(*) as n from batch_items`))[0]!.n)).toBe(0);
    expect(result.job_partitions_created).toBeGreaterThanOrEqual(0);

    // Submits still work, and the next run has nothing to drop.
    const substrateId = await createExpressionSubstrate(request, user.accessToken, 'x');
    const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: user.accessToken,
      body: { parameters: { x: 1 } },
    });
    expect(submitted.status).toBe(202);
    expect((await runJob(createRetentionJob(), app, orm)).job_partitions_dropped).toBe(0);
  });

  it('drops no partition while a tier keeps its jobs for good', async () => {
    await ensureJobPartitions(orm.em.fork(), { partitionDays: 7, daySeconds: 86_400, now: daysAgo(120), ahead: 0 });
    await insertJob(daysAgo(120), 'completed', daysAgo(120));
    const keeps = await runJob(createRetentionJob(), app, orm, {
      config: { ...app.config, jobRetentionDays: { starter: 30, pro: 30, enterprise: 0 } },
    });
    expect(keeps.job_partitions_dropped).toBe(0);
    expect(await partitionNames()).toContain(partitionOf(daysAgo(120)));
  });

  it('counts a shortened retention day (RETENTION_DAY_SECONDS) in the partition cutoff', async () => {
    // With 60-second days and 1-day partitions, a minute of ids from 10 real days ago is 14,400 "days" old, and
    // a job finished 20 minutes ago 20 "days" (kept: 30 "days" of retention).
    const config = { ...app.config, retentionDaySeconds: 60, jobPartitionDays: 1 };
    const at = daysAgo(10);
    const minute = (when: Date) => jobPartitionName(Math.floor(when.getTime() / 60_000) * 60_000);
    const lateAt = new Date(at.getTime() + 120_000);
    for (const when of [at, lateAt]) await ensureJobPartitions(orm.em.fork(), { partitionDays: 1, daySeconds: 60, now: when, ahead: 0 });
    const id = await insertJob(at, 'completed', at);
    const late = await insertJob(lateAt, 'completed', new Date(Date.now() - 20 * 60_000));
    const [where] = await app.sql<{ partition: string }>(`select tableoid::regclass::text as partition from jobs where id = $1`, [id]);
    expect(where?.partition).toBe(minute(at));

    const result = await runJob(createRetentionJob(), app, orm, { config });

    const names = await partitionNames();
    expect(names).not.toContain(minute(at));
    expect(names).toContain(minute(lateAt));
    expect(result.job_partitions_dropped).toBeGreaterThanOrEqual(1);
    expect(await app.sql(`select 1 from jobs where id = $1`, [id])).toEqual([]);
    expect(await app.sql(`select 1 from jobs where id = $1`, [late])).toHaveLength(1);
  });

  it('takes the expired rows of the DEFAULT partition (ids no range covers) row by row, keeps the others there, and never drops it', async () => {
    // No partition covers 200 days ago: these rows sit in jobs_default, as rows do when partition upkeep lapses.
    const expired = await insertJob(daysAgo(200), 'completed', daysAgo(200), 2, 'k-default');
    const unfinished = await insertJob(daysAgo(200), 'queued', null);
    const young = await insertJob(daysAgo(200), 'failed', daysAgo(2));
    const where = await app.sql<{ partition: string }>(`select distinct tableoid::regclass::text as partition from jobs`);
    expect(where.map((row) => row.partition)).toEqual(['jobs_default']);

    const result = await runJob(createRetentionJob(), app, orm);

    expect(result).toMatchObject({ jobs: 1, batch_items: 2, idempotency_keys: 1 });
    const remaining = (await app.sql<{ id: string }>(`select id from jobs`)).map((row) => row.id);
    expect(remaining.sort()).toEqual([unfinished, young].sort());
    expect(remaining).not.toContain(expired);
    const defaults = await app.sql<{ name: string }>(
      `select relname as name from pg_class where relname in ('jobs_default', 'batch_items_default') order by 1`,
    );
    expect(defaults.map((row) => row.name)).toEqual(['batch_items_default', 'jobs_default']);
  });
});

describe('idempotency keys in their own table', () => {
  let user: TestUser;
  let substrateId: string;

  beforeAll(async () => {
    user = await registerUser(request);
    substrateId = await createExpressionSubstrate(request, user.accessToken, 'x * 2');
  });

  const submit = (key: string, x = 1) =>
    request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: user.accessToken,
      body: { parameters: { x } },
      headers: { 'idempotency-key': key },
    });

  it('names one job for concurrent submits with one key (one group commit may carry several)', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => submit('concurrent-key')));
    expect(answers.map((answer) => answer.status).every((status) => status === 202)).toBe(true);
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1);
    const keys = await app.sql<{ job_id: string }>(`select job_id from job_idempotency_keys where idempotency_key = 'concurrent-key'`);
    expect(keys).toEqual([{ job_id: answers[0]!.body.id }]);
  });

  it('lets a key name a new job after its 24 hours, and after its job is gone', async () => {
    const first = await submit('aging-key');
    await app.sql(`update job_idempotency_keys set created_at = now() - interval '25 hours' where idempotency_key = 'aging-key'`);
    await app.sql(`update jobs set created_at = now() - interval '25 hours' where id = $1`, [first.body.id]);
    const second = await submit('aging-key');
    expect(second.status).toBe(202);
    expect(second.body.id).not.toBe(first.body.id);
    expect((await submit('aging-key')).body.id, 'the key now names the new job').toBe(second.body.id);

    await app.sql(`delete from jobs where id = $1`, [second.body.id]);
    const third = await submit('aging-key');
    expect(third.body.id).not.toBe(second.body.id);
    expect(
      (await app.sql<{ job_id: string }>(`select job_id from job_idempotency_keys where idempotency_key = 'aging-key'`))[0]?.job_id,
    ).toBe(third.body.id);
  });

  it('replays and refuses bulk submits through the key table, all or nothing', async () => {
    const job = (x: number, key: string) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x } },
      idempotency_key: key,
    });
    const first = await request('POST', '/api/v1/jobs/bulk', { token: user.accessToken, body: { jobs: [job(1, 'b-1'), job(2, 'b-2')] } });
    expect(first.status).toBe(202);
    const again = await request('POST', '/api/v1/jobs/bulk', { token: user.accessToken, body: { jobs: [job(1, 'b-1'), job(3, 'b-3')] } });
    expect(again.status).toBe(202);
    expect(again.body.items[0].id).toBe(first.body.items[0].id);
    const conflict = await request('POST', '/api/v1/jobs/bulk', {
      token: user.accessToken,
      body: { jobs: [job(4, 'b-4'), job(9, 'b-2')] },
    });
    expect(conflict.status).toBe(422);
    expect(await app.sql(`select 1 from job_idempotency_keys where idempotency_key = 'b-4'`)).toEqual([]);
  });
});
