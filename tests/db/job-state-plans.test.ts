import type { Knex } from '@mikro-orm/postgresql';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { findJobStatement, findReleasableJobs, releasableJobsStatement } from '../../db/jobs/find-jobs.js';
import { idRange } from '../../db/jobs/job-columns.js';
import { jobPartitionName } from '../../db/jobs/job-partitions.js';
import {
  activeStatesStatement,
  finalStatesStatement,
  progressStatement,
  writeActiveStates,
  writeFinalStates,
  writeProgress,
} from '../../db/jobs/job-states.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { listUnfinishedJobs, unfinishedJobsPlanSettings, unfinishedJobsStatement } from '../../db/jobs/recovery.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/**
 * The statements that find jobs by a list of ids (the workers' state writes, the fair-share release) find them
 * through the primary key of the partition their ids lie in, whatever the statistics say: a generic plan made
 * after ANALYZE saw few unfinished rows once read every unfinished row of the partition per batch (through the
 * partial indexes of unfinished rows), so a drain slowed as its backlog grew (issue 18).
 */

let app: TestApp;
let orm: Orm;

beforeAll(async () => {
  app = await startTestApp();
  orm = await createOrm(app.config.databaseUrl, { poolMax: 4 });
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

const week = 7 * 86_400_000;
const hex = (digits: number) => randomBytes(8).toString('hex').slice(0, digits);
/** A UUIDv7 as one minted at `at` would be. */
const idAt = (at: Date) => `${uuidv7Floor(at).slice(0, 14)}7${hex(3)}-8${hex(3)}-${hex(12)}`;
const partitionOf = (at: Date) => jobPartitionName(Math.floor(at.getTime() / week) * week);
/** Long before the first partition: such ids live in the DEFAULT partition, as a database's oldest history does. */
const longAgo = new Date('2024-03-01T00:00:00Z');

async function insertJobs(ids: readonly string[], state: string, attempts = 1): Promise<void> {
  await app.sql(
    `insert into jobs (id, customer_id, type, state, payload, attempts_made, max_attempts)
     select id, $2, 'invoke', $3, '{}', $4, 3 from unnest($1::uuid[]) id`,
    [ids, randomUUID(), state, attempts],
  );
}

const statesOf = async (ids: readonly string[]) =>
  Object.fromEntries(
    (await app.sql<{ id: string; state: string }>(`select id::text, state from jobs where id = any($1::uuid[])`, [ids])).map((row) => [
      row.id,
      row.state,
    ]),
  );

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Loops'?: number;
  'Subplans Removed'?: number;
  Plans?: PlanNode[];
}

/**
 * EXPLAIN ANALYZE of `statement` prepared and forced to a generic plan (or a custom one, as an unnamed statement
 * with parameters gets), after `settings`, in a transaction rolled back afterwards.
 */
async function genericPlan(
  statement: string,
  parameters: readonly string[],
  { settings, custom = false }: { settings?: string; custom?: boolean } = {},
): Promise<PlanNode> {
  return onPrepared(statement, custom ? 'force_custom_plan' : 'force_generic_plan', async (trx, execute) => {
    if (settings) await trx.raw(settings);
    const result = (await trx.raw(`explain (analyze, format json) ${execute(parameters)}`)) as {
      rows: Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>;
    };
    return result.rows[0]!['QUERY PLAN'][0]!.Plan;
  });
}

/**
 * Runs `use` with `statement` prepared as `plan_probe` (and `execute(parameters)`, its EXECUTE with the parameters
 * as literals), under `plan_cache_mode`, in a transaction rolled back afterwards.
 */
async function onPrepared<T>(
  statement: string,
  planCacheMode: 'auto' | 'force_custom_plan' | 'force_generic_plan',
  use: (trx: Knex.Transaction, execute: (parameters: readonly string[]) => string) => Promise<T>,
): Promise<T> {
  const trx = await orm.em.getConnection().getKnex().transaction();
  const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;
  try {
    await trx.raw(`set local plan_cache_mode = ${planCacheMode}`);
    await trx.raw(`prepare plan_probe as ${statement}`);
    const result = await use(trx, (parameters) => `execute plan_probe(${parameters.map(literal).join(', ')})`);
    await trx.raw('deallocate plan_probe');
    return result;
  } finally {
    await trx.rollback();
  }
}

/**
 * The plans PostgreSQL made for `statement` prepared and executed `times` times with `parameters`, the plan
 * cache left to choose (`plan_cache_mode = auto`), in a transaction rolled back afterwards.
 */
async function plansMade(statement: string, parameters: readonly string[], times: number): Promise<{ custom: number; generic: number }> {
  return onPrepared(statement, 'auto', async (trx, execute) => {
    for (let i = 0; i < times; i++) await trx.raw(execute(parameters));
    const result = (await trx.raw(`select custom_plans, generic_plans from pg_prepared_statements where name = 'plan_probe'`)) as {
      rows: Array<{ custom_plans: string; generic_plans: string }>;
    };
    return { custom: Number(result.rows[0]!.custom_plans), generic: Number(result.rows[0]!.generic_plans) };
  });
}

/** Every index the plan names on `jobs` is a primary key (the partitions the range excludes are skipped when it runs). */
function expectPrimaryKeys(indexes: readonly string[], message?: string): void {
  expect(indexes, message).toContain(`${partitionOf(new Date())}_pkey`);
  for (const index of indexes) expect(index, message).toMatch(/_pkey$/);
}

/** The indexes the plan reads `jobs` through, and the partitions it ran a scan of. */
function accessOf(plan: PlanNode): { indexes: string[]; scanned: string[] } {
  const indexes = new Set<string>();
  const scanned = new Set<string>();
  const walk = (node: PlanNode) => {
    if (node['Index Name']?.startsWith('jobs')) indexes.add(node['Index Name']);
    if (node['Node Type'].endsWith('Scan') && node['Relation Name']?.startsWith('jobs') && node['Actual Loops'] !== 0)
      scanned.add(node['Relation Name']);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan);
  return { indexes: [...indexes].sort(), scanned: [...scanned].sort() };
}

describe('jobs found by a list of ids', () => {
  const now = new Date();
  let backlog: string[];

  beforeEach(async () => {
    await app.sql('truncate jobs, batch_items, job_idempotency_keys');
    // Statistics of a partition whose rows are nearly all finished, as ANALYZE and autovacuum nearly always see
    // it; then a backlog arrives (a bulk submit) that the statistics do not know about.
    await insertJobs(
      Array.from({ length: 4000 }, () => idAt(now)),
      'completed',
    );
    await insertJobs(
      Array.from({ length: 20 }, () => idAt(now)),
      'failed',
    );
    await insertJobs(
      Array.from({ length: 4000 }, () => idAt(longAgo)),
      'completed',
    );
    await app.sql('analyze jobs');
    backlog = Array.from({ length: 4000 }, () => idAt(now));
    await insertJobs(backlog, 'queued');
  });

  const batch = () => backlog.slice(0, 300);
  const finals = () =>
    JSON.stringify(
      batch().map((id) => ({ id, state: 'completed', result: { x: 1 }, error: null, attempts: 1, notify: false, started: null })),
    );

  it('a generic plan of the final write reads the batch partition by primary key, not the backlog', async () => {
    const plan = await genericPlan(finalStatesStatement, [finals(), `{${batch().join(',')}}`, 'probe', ...idRange(batch())]);
    const { indexes, scanned } = accessOf(plan);
    expectPrimaryKeys(indexes);
    expect(scanned).toEqual([partitionOf(now)]);
  });

  it('is planned once per connection: the plan cache keeps the generic plan of each state write', async () => {
    // One job a write, as a waited job's outcome is written (a write of its own, at once).
    const one = backlog.slice(0, 1);
    const ids = `{${one.join(',')}}`;
    const final = JSON.stringify(
      one.map((id) => ({ id, state: 'completed', result: { x: 1 }, error: null, attempts: 1, notify: true, started: null })),
    );
    const actives = JSON.stringify(one.map((id) => ({ id, attempts: 1, started: Date.now() })));
    const progress = JSON.stringify(one.map((id) => ({ id, progress: { step: 1 } })));
    for (const [statement, parameters] of [
      [finalStatesStatement, [final, ids, 'probe', ...idRange(one)]],
      [activeStatesStatement, [actives, ids, ...idRange(one)]],
      [progressStatement, [progress, ids, ...idRange(one)]],
    ] as const) {
      expect(await plansMade(statement, [...parameters], 8), statement).toEqual({ custom: 5, generic: 3 });
    }
  });

  it("so are GET /jobs/:id's read and the fair-share release's", async () => {
    const [id] = backlog;
    const [row] = await app.sql<{ customer_id: string }>(`select customer_id from jobs where id = $1`, [id]);
    for (const [statement, parameters] of [
      [findJobStatement, [id!, row!.customer_id]],
      [releasableJobsStatement, [`{${id}}`, ...idRange([id!])]],
    ] as const) {
      expect(await plansMade(statement, [...parameters], 8), statement).toEqual({ custom: 5, generic: 3 });
    }
  });

  it('so do the active and progress writes and the fair-share release', async () => {
    const ids = `{${batch().join(',')}}`;
    const actives = JSON.stringify(batch().map((id) => ({ id, attempts: 1, started: Date.now() })));
    const progress = JSON.stringify(batch().map((id) => ({ id, progress: { step: 1 } })));
    for (const [statement, parameters] of [
      [activeStatesStatement, [actives, ids, ...idRange(batch())]],
      [progressStatement, [progress, ids, ...idRange(batch())]],
      [releasableJobsStatement, [ids, ...idRange(batch())]],
    ] as const) {
      const { indexes, scanned } = accessOf(await genericPlan(statement, [...parameters]));
      expectPrimaryKeys(indexes, statement);
      expect(scanned, statement).toEqual([partitionOf(now)]);
    }
  });

  it('writes every row of a batch whose ids span partitions, and only the rows still open', async () => {
    const old = [idAt(longAgo), idAt(longAgo)];
    await insertJobs(old, 'queued');
    const [done] = [idAt(now)];
    await insertJobs([done!], 'completed');
    const [failedOnce, failedTwice] = [idAt(now), idAt(now)];
    await insertJobs([failedOnce!, failedTwice!], 'failed', 2);
    // An id in capitals sorts before every lower-case one as text: the range must still reach its row.
    const shouted = backlog[1]!.toUpperCase();
    const em = orm.em.fork();

    await writeActiveStates(
      em,
      new Map([
        [backlog[0]!, { attempts: 1, started: Date.now() }],
        [old[0]!, { attempts: 1, started: Date.now() }],
        [failedOnce!, { attempts: 2, started: Date.now() }],
        [failedTwice!, { attempts: 3, started: Date.now() }],
        [done!, { attempts: 1, started: Date.now() }],
      ]),
    );
    expect(await statesOf([backlog[0]!, old[0]!, failedOnce!, failedTwice!, done!])).toEqual({
      [backlog[0]!]: 'active',
      [old[0]!]: 'active',
      [failedOnce!]: 'failed',
      [failedTwice!]: 'active',
      [done!]: 'completed',
    });

    await writeProgress(
      em,
      new Map([
        [backlog[0]!, { step: 1 }],
        [old[0]!, { step: 2 }],
        [backlog[2]!, { step: 3 }],
      ]),
    );
    const progress = await app.sql<{ id: string; progress: unknown }>(
      `select id::text, progress from jobs where id = any($1::uuid[]) order by id`,
      [[backlog[0]!, old[0]!, backlog[2]!]],
    );
    expect(Object.fromEntries(progress.map((row) => [row.id, row.progress]))).toEqual({
      [backlog[0]!]: { step: 1 },
      [old[0]!]: { step: 2 },
      [backlog[2]!]: null,
    });

    const final = (id: string, attemptsMade = 1) =>
      [id, { id, state: 'completed' as const, result: { ok: true }, error: null, attemptsMade, notify: false, startedAt: null }] as const;
    await writeFinalStates(
      em,
      new Map([
        final(backlog[0]!),
        final(old[0]!),
        final(old[1]!),
        final(shouted),
        final(done!),
        final(failedOnce!, 2),
        final(randomUUID()),
      ]),
      'probe',
    );
    expect(await statesOf([backlog[0]!, backlog[1]!, old[0]!, old[1]!, done!, failedOnce!])).toEqual({
      [backlog[0]!]: 'completed',
      [backlog[1]!]: 'completed',
      [old[0]!]: 'completed',
      [old[1]!]: 'completed',
      [done!]: 'completed',
      [failedOnce!]: 'failed',
    });

    const releasable = await findReleasableJobs(em, [backlog[3]!, old[0]!, backlog[0]!, backlog[4]!.toUpperCase(), randomUUID()]);
    expect(releasable.map((row) => row.id).sort()).toEqual([backlog[3]!, backlog[4]!].sort());
  });

  it('idRange: the least and greatest id, whatever their case; none is an error', () => {
    expect(
      idRange(['0190aaaa-0000-7000-8000-000000000002', '0190AAAA-0000-7000-8000-000000000003', '0190aaaa-0000-7000-8000-000000000001']),
    ).toEqual(['0190aaaa-0000-7000-8000-000000000001', '0190aaaa-0000-7000-8000-000000000003']);
    expect(() => idRange([])).toThrow('idRange of no ids');
  });
});

describe("the sweeper's pass over unfinished jobs", () => {
  const now = new Date();
  beforeEach(async () => {
    await app.sql('truncate jobs, batch_items, job_idempotency_keys');
  });

  it('reads them in one ordered scan of jobs_unfinished_index after a drain, never a bitmap scan', async () => {
    // A drain: the statistics saw the partition before the burst (a few finished jobs), then 4,000 jobs were
    // queued, ran and finished. Their queued and active versions' entries stay in the partial indexes until
    // VACUUM; a bitmap scan (the plan those statistics favour) visits them on every pass, a plain index scan
    // marks them dead the first time.
    await insertJobs(
      Array.from({ length: 50 }, () => idAt(now)),
      'completed',
    );
    await app.sql('analyze jobs');
    const drained = Array.from({ length: 4000 }, () => idAt(now));
    await insertJobs(drained, 'queued');
    await insertJobs([idAt(longAgo)], 'queued');
    await app.sql(`update jobs set state = 'active' where id = any($1::uuid[])`, [drained]);
    await app.sql(`update jobs set state = 'completed' where id = any($1::uuid[]) and id <> $2`, [drained, drained[0]]);

    // The sweeper's statement is prepared once per connection and its settings ask for the generic plan.
    const plan = await genericPlan(unfinishedJobsStatement, ['0', '-infinity', '00000000-0000-0000-0000-000000000000', '500'], {
      settings: unfinishedJobsPlanSettings,
    });
    const nodes: string[] = [];
    const walk = (node: PlanNode) => {
      nodes.push(node['Node Type']);
      for (const child of node.Plans ?? []) walk(child);
    };
    walk(plan);
    expect(nodes.filter((type) => type.includes('Bitmap') || type === 'Seq Scan' || type === 'Sort')).toEqual([]);
    expect(new Set(accessOf(plan).indexes.map((name) => name.replace(/^jobs_(p\d+|default)_/, '')))).toEqual(
      new Set(['created_at_id_idx']),
    );
  });

  it('pages through every unfinished job once, jobs created in the same instant included, and leaves the young ones', async () => {
    // One insert: one now(), so all 1,203 share created_at; pages of 500 must split them by id.
    const stuck = [...Array.from({ length: 1200 }, () => idAt(now)), idAt(longAgo), idAt(longAgo), idAt(longAgo)];
    await app.sql(
      `insert into jobs (id, customer_id, type, state, payload, attempts_made, max_attempts, created_at)
       select id, $2, 'invoke', 'queued', '{}', 0, 3, now() - interval '1 minute' from unnest($1::uuid[]) id`,
      [stuck, randomUUID()],
    );
    await insertJobs([idAt(now)], 'queued');
    await insertJobs([idAt(now)], 'completed');

    const seen: string[] = [];
    let after: Awaited<ReturnType<typeof listUnfinishedJobs>>['next'] = null;
    for (let pages = 0; pages < 10; pages++) {
      const { rows, next } = await listUnfinishedJobs(orm.em.fork(), 10_000, after, 500);
      if (rows.length === 0) break;
      seen.push(...rows.map((row) => row.id));
      after = next;
    }
    expect(seen).toHaveLength(stuck.length);
    expect(new Set(seen)).toEqual(new Set(stuck));
  });
});
