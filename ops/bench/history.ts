/**
 * `npm run bench -- --history=N` (issue 18 item 4): how the platform's cost grows with the history it keeps.
 *
 * The same figures twice in one run on the same processes: first on the bench's empty tables, then after N
 * finished jobs (and two request logs each) were preloaded and churned. Figures: queue-drain (bulk-submitted
 * invokes until every row is final), http-submit (autocannon, 64 connections, queues paused), `GET
 * /jobs?state=failed&created_after=…` over HTTP (sequential, p50/p99), sweeper passes (`Sweeper.sweep`, timed
 * in this process), and one run of the retention job's processor while a fixed rate of submits goes on, with
 * that load's p99 beside the same load's p99 without retention. Each figure is reported with the empty-table
 * one as its `baseline`, then the table and index sizes.
 *
 * The history: ids are UUIDv7 of their creation times (as the API makes them, so id ranges are time ranges),
 * created over the 6 weeks before an hour ago; 40 % the bench customer's, the rest 49 other customers'; 93 %
 * completed, 5 % failed with an error text, 2 % cancelled. Loaded with set-based INSERT … SELECT
 * generate_series in chunks. Churn, per chunk: 20 % of the rows updated once (a write after the insert, as
 * every job's state changes are) and 5 % deleted. Then ANALYZE but no VACUUM: the tables carry those dead rows
 * (and unset visibility-map pages) as a table does between autovacuum runs — autovacuum starts at 20 % dead
 * rows by default, this is 25 %. Where the server's autovacuum is on, it may clean up during the measurement;
 * the figures print `autovacuum` and the dead rows before and after.
 */
import autocannon from 'autocannon';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Config } from '../../config.js';
import type { InvocationCache } from '../../db/invocation-cache.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { meterNextBatch } from '../../db/repositories/metering.js';
import { createRetentionJob, type RetentionResult } from '../../jobs/retention/retention.job.js';
import { standaloneJobContext } from '../standalone-job-context.js';
import type { FairQueues } from '../../queue/fair-share/fair-queues.js';
import type { JobQueues } from '../../queue/queues.js';
import { Sweeper } from '../../workers/sweeper.js';
import { unfinishedJobsStatement } from '../../db/jobs/recovery.js';
import { percentile, round, uuidv7Sql, type BenchCustomer, type ScenarioResult } from './harness.js';
import { submitRequest, type HttpSubmitMeasurement } from './http-submit.js';
import { tableStats } from './table-stats.js';

export interface HistoryBench {
  /** Finished jobs to preload. */
  rows: number;
  quick: boolean;
  /** The API's base URL (`…/api/v1`). */
  api: string;
  db: pg.Pool;
  orm: Orm;
  redis: Redis;
  queuePrefix: string;
  queues: JobQueues;
  fair: FairQueues | null;
  /** The platform's configuration (the retention run reads its days from it). */
  config: Config;
  cache: InvocationCache;
  customer: BenchCustomer;
  /** Full collections in the API and worker processes. */
  settle(): Promise<unknown>;
  /** Bulk-submits `n` invokes and waits until each is final; seconds. */
  drain(n: number): Promise<number>;
  /** http-submit's platform side (measureHttpSubmit). */
  submit(): Promise<HttpSubmitMeasurement>;
  log(message: string): void;
}

const historyDays = 42;
const chunkRows = 500_000;

interface Figures {
  drainJobsPerSecond: number;
  submit: HttpSubmitMeasurement;
  list: { p50: number; p99: number; items: number; requests: number };
  sweeps: {
    medianMs: number;
    maxMs: number;
    firstPassMs: number;
    checked: number;
    /** A new connection's `select 1`, then its first plan over the partitioned `jobs` (its catalog read in). */
    connectMs: number;
    firstPlanMs: number;
  };
  retention: { seconds: number; result: RetentionResult; submitDuring: LoadFigures; submitWithout: LoadFigures };
}

interface LoadFigures {
  rate: number;
  seconds: number;
  ok: number;
  non2xx: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Both sides are measured after a checkpoint: the preload dirties gigabytes that the server would otherwise write
 * back during the measured phases, so they would measure loading the history rather than its size.
 */
async function checkpoint(bench: HistoryBench, when: string): Promise<void> {
  const started = performance.now();
  await bench.db.query('checkpoint');
  bench.log(`history: checkpoint ${when} took ${round((performance.now() - started) / 1000, 1)} s`);
}

export async function runHistory(bench: HistoryBench): Promise<{ results: ScenarioResult[]; sizes: Record<string, unknown> }> {
  const { db, log } = bench;
  const autovacuum = (await db.query<{ autovacuum: string }>('show autovacuum')).rows[0]?.autovacuum;
  log(`history: the figures on the empty tables first (autovacuum ${autovacuum})`);
  await checkpoint(bench, 'before the empty-table figures');
  // Before the first figure the API serves every kind of request both phases make (GET /jobs lists, submits): the
  // routes a process has served change what a submit costs it (~100 µs of CPU more once another router has run,
  // README "Performance"), so the empty tables were otherwise measured in another JIT state than the history.
  await listFailed(bench);
  const empty = await measure(bench);
  const sizesEmpty = await tableStats(db);

  log(`history: preloading ${bench.rows.toLocaleString('en-US')} finished jobs and twice as many request logs, then churn`);
  const load = await preload(bench);
  const sizesLoaded = await tableStats(db);
  log(`history: loaded in ${load.seconds} s; jobs ${JSON.stringify(sizesLoaded[0])}`);
  await checkpoint(bench, 'after the preload');

  const loaded = await measure(bench);
  const sizesAfter = await tableStats(db);

  const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 3) : null);
  const drainRatio = ratio(loaded.drainJobsPerSecond, empty.drainJobsPerSecond);
  const submitRatio = ratio(loaded.submit.acceptedPerSecond, empty.submit.acceptedPerSecond);
  const rows = bench.rows;
  const results: ScenarioResult[] = [
    {
      scenario: 'history-queue-drain',
      n: rows,
      unit: 'jobs/s',
      platform: round(loaded.drainJobsPerSecond),
      baseline: round(empty.drainJobsPerSecond),
      ratio: drainRatio,
      target: 'ratio (with history / empty) >= 0.9',
      met: (drainRatio ?? 0) >= 0.9,
    },
    {
      scenario: 'history-http-submit',
      n: rows,
      unit: 'accepted/s',
      platform: round(loaded.submit.acceptedPerSecond),
      baseline: round(empty.submit.acceptedPerSecond),
      ratio: submitRatio,
      target: 'ratio (with history / empty) >= 0.9',
      met: (submitRatio ?? 0) >= 0.9 && loaded.submit.completed === loaded.submit.acceptedRows,
      details: {
        p99_ms: { empty: empty.submit.p99Ms, history: loaded.submit.p99Ms },
        non_2xx: { empty: empty.submit.non2xx, history: loaded.submit.non2xx },
      },
    },
    {
      scenario: 'history-list-failed',
      n: rows,
      unit: 'ms p99',
      platform: loaded.list.p99,
      baseline: empty.list.p99,
      ratio: ratio(loaded.list.p99, empty.list.p99),
      target: 'GET /jobs?state=failed&created_after=… p99 <= 20 ms',
      met: loaded.list.p99 <= 20,
      details: { p50_ms: { empty: empty.list.p50, history: loaded.list.p50 }, items: loaded.list.items, requests: loaded.list.requests },
    },
    {
      scenario: 'history-sweeper',
      n: rows,
      unit: 'ms a pass (median)',
      platform: loaded.sweeps.medianMs,
      baseline: empty.sweeps.medianMs,
      ratio: ratio(loaded.sweeps.medianMs, empty.sweeps.medianMs),
      target: 'one sweeper pass <= 50 ms',
      met: loaded.sweeps.maxMs <= 50,
      details: {
        max_ms: { empty: empty.sweeps.maxMs, history: loaded.sweeps.maxMs },
        first_pass_ms: { empty: empty.sweeps.firstPassMs, history: loaded.sweeps.firstPassMs },
        unfinished_checked: loaded.sweeps.checked,
        new_connection_not_a_pass: {
          connect_ms: { empty: empty.sweeps.connectMs, history: loaded.sweeps.connectMs },
          first_plan_ms: { empty: empty.sweeps.firstPlanMs, history: loaded.sweeps.firstPlanMs },
        },
      },
    },
    {
      scenario: 'history-retention',
      n: rows,
      unit: 'ms submit p99 during retention',
      platform: loaded.retention.submitDuring.p99Ms,
      baseline: empty.retention.submitDuring.p99Ms,
      ratio: ratio(loaded.retention.submitDuring.p99Ms, empty.retention.submitDuring.p99Ms),
      target: 'retention finishes; every submit meanwhile answered 2xx',
      met: loaded.retention.submitDuring.non2xx === 0 && loaded.retention.submitDuring.errors === 0,
      details: {
        retention_seconds: { empty: empty.retention.seconds, history: loaded.retention.seconds },
        deleted: loaded.retention.result,
        rows_deleted_per_second: round(
          (loaded.retention.result.jobs + loaded.retention.result.request_logs + loaded.retention.result.batch_items) /
            loaded.retention.seconds,
        ),
        submits_during: { empty: empty.retention.submitDuring, history: loaded.retention.submitDuring },
        submits_without_retention: { empty: empty.retention.submitWithout, history: loaded.retention.submitWithout },
      },
    },
  ];
  const sizes = {
    scenario: 'history-sizes',
    rows,
    autovacuum,
    preload_seconds: load.seconds,
    churn: load.churn,
    empty: sizesEmpty,
    loaded: sizesLoaded,
    after_measuring_and_retention: sizesAfter,
  };
  return { results, sizes };
}

async function measure(bench: HistoryBench): Promise<Figures> {
  const n = bench.quick ? 10_000 : 50_000;
  bench.log(`history: queue-drain of ${n}`);
  await bench.settle();
  const drainJobsPerSecond = n / (await bench.drain(n));
  bench.log(`history: http-submit (${round(drainJobsPerSecond)} jobs/s drained)`);
  const submit = await bench.submit();
  bench.log(`history: GET /jobs?state=failed&created_after=… (${round(submit.acceptedPerSecond)} accepted/s)`);
  const list = await listFailed(bench);
  const sweeps = await sweepPasses(bench);
  bench.log(`history: list p99 ${list.p99} ms; sweeper pass ${sweeps.medianMs} ms; retention under submits`);
  const retention = await retentionUnderLoad(bench);
  return { drainJobsPerSecond, submit, list, sweeps, retention };
}

async function listFailed(bench: HistoryBench): Promise<Figures['list']> {
  const requests = bench.quick ? 200 : 500;
  const createdAfter = new Date(Date.now() - 7 * 86_400_000).toISOString();
  const url = `${bench.api}/jobs?state=failed&created_after=${encodeURIComponent(createdAfter)}`;
  const headers = { authorization: `Bearer ${bench.customer.key}` };
  const times: number[] = [];
  let items = 0;
  for (let i = -20; i < requests; i++) {
    const started = performance.now();
    const response = await fetch(url, { headers });
    const body = (await response.json()) as { items?: unknown[] };
    if (response.status !== 200) throw new Error(`GET /jobs answered ${response.status} ${JSON.stringify(body)}`);
    if (i >= 0) times.push(performance.now() - started);
    items = body.items?.length ?? 0;
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), items, requests };
}

/**
 * Seven sweeper passes over the unfinished jobs, right after http-submit finished (the entries its jobs left in
 * the partial indexes are still there). The passes run on one connection of their own whose catalog is warm, as
 * the platform's sweeper borrows a worker's pool connection whose state writes planned over every partition: a
 * new connection's first plan over the partitioned table (its catalog read in) is printed apart, not as a pass.
 */
async function sweepPasses(bench: HistoryBench): Promise<Figures['sweeps']> {
  const orm = await createOrm(bench.config.databaseUrl, { poolMax: 1 });
  try {
    const sweeper = new Sweeper({
      orm,
      redis: bench.redis,
      queues: bench.queues,
      fair: bench.fair,
      prefix: bench.queuePrefix,
      logger: pino({ level: 'warn' }),
    });
    const connecting = performance.now();
    await orm.em.getConnection().execute('select 1');
    const planning = performance.now();
    // Planning only: the passes still meet every entry the finished jobs left.
    await orm.em
      .getConnection()
      .execute(`explain ${unfinishedJobsStatement.replace(/\$\d/g, '?')}`, [
        10_000,
        '-infinity',
        '00000000-0000-0000-0000-000000000000',
        500,
      ]);
    const firstPlanMs = round(performance.now() - planning);
    const connectMs = round(planning - connecting);
    const times: number[] = [];
    let checked = 0;
    for (let i = 0; i < 7; i++) {
      const started = performance.now();
      checked = (await sweeper.sweep()).checked;
      times.push(performance.now() - started);
    }
    const firstPassMs = round(times[0]!);
    times.sort((a, b) => a - b);
    return { medianMs: percentile(times, 50), maxMs: percentile(times, 100), firstPassMs, checked, connectMs, firstPlanMs };
  } finally {
    await orm.close();
  }
}

/** Submits at a fixed rate (16 connections, queues running) until `during` settles; its result and the load's figures. */
async function submitsWhile<T>(bench: HistoryBench, rate: number, during: () => Promise<T>): Promise<{ value: T; load: LoadFigures }> {
  const started = performance.now();
  let stop = () => undefined as void;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        ...submitRequest(`${bench.api}/substrates/${bench.customer.substrateId}/invoke`, bench.customer.key),
        connections: 16,
        overallRate: rate,
        duration: 3600,
      },
      (error: unknown, result) => (error ? reject(error) : resolve(result)),
    );
    stop = () => instance.stop();
  });
  try {
    return { value: await during(), load: await stopped() };
  } catch (error) {
    await stopped().catch(() => undefined);
    throw error;
  }

  async function stopped(): Promise<LoadFigures> {
    stop();
    const result = await finished;
    return {
      rate,
      seconds: round((performance.now() - started) / 1000, 2),
      ok: result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
    };
  }
}

async function retentionUnderLoad(bench: HistoryBench): Promise<Figures['retention']> {
  const rate = bench.quick ? 200 : 500;
  const referenceSeconds = bench.quick ? 5 : 10;
  const { load: submitWithout } = await submitsWhile(
    bench,
    rate,
    () => new Promise((resolve) => setTimeout(resolve, referenceSeconds * 1000)),
  );
  // Request logs at the jobs' days unless REQUEST_LOG_RETENTION_DAYS is set: the default 90 finds nothing in 6 weeks of history.
  const config: Config = process.env.REQUEST_LOG_RETENTION_DAYS
    ? bench.config
    : {
        ...bench.config,
        requestLogRetentionDays: Math.min(...Object.values(bench.config.jobRetentionDays).filter((days) => days > 0), 90),
      };
  const retention = createRetentionJob();
  const context = standaloneJobContext({
    logger: pino({ level: 'warn' }),
    em: bench.orm.em.fork(),
    redis: bench.redis,
    config,
    cache: bench.cache,
  });
  const { value, load: submitDuring } = await submitsWhile(bench, rate, async () => {
    const started = performance.now();
    const result = await retention.process({}, context);
    return { result, seconds: round((performance.now() - started) / 1000, 2) };
  });
  return { ...value, submitDuring, submitWithout };
}

/** Loads the history (see the top of this file); seconds taken and what the churn did. */
async function preload(bench: HistoryBench): Promise<{ seconds: number; churn: { updated: number; deleted: number } }> {
  const { db, rows } = bench;
  const started = performance.now();
  const end = Date.now() - 3_600_000;
  const stepMs = (historyDays * 86_400_000) / rows;
  // Row n was created (rows - n) steps before `end`.
  const rowsOf = `generate_series($1::int, $2::int) n,
       lateral (select to_timestamp(($3::float8 - ($4::int - n) * $5::float8) / 1000) as at) t,
       lateral (select (extract(epoch from t.at) * 1000)::bigint as ms, md5('history' || n) as h) k,
       lateral (select case when n % 5 < 2 then $6::uuid
                            else ('00000000-0000-4000-8000-' || lpad(to_hex(1 + n % 49), 12, '0'))::uuid end as customer_id) c`;
  const chunks = Array.from({ length: Math.ceil(rows / chunkRows) }, (_, i) => {
    const from = i * chunkRows + 1;
    return {
      to: Math.min(rows, from + chunkRows - 1),
      params: [from, Math.min(rows, from + chunkRows - 1), end, rows, stepMs, bench.customer.customerId],
    };
  });
  const churn = { updated: 0, deleted: 0 };
  for (const { to, params } of chunks) {
    const inserted = await db.query<{ first: string; last: string }>(
      `with made as (
         insert into jobs (id, customer_id, type, state, payload, result, error, attempts_made, max_attempts, created_at, started_at, finished_at)
         select ${uuidv7Sql('k.ms', 'k.h')}, c.customer_id, 'invoke',
                case when n % 100 < 5 then 'failed' when n % 100 < 7 then 'cancelled' else 'completed' end,
                jsonb_build_object('substrate_id', '0x' || substr(k.h, 20, 12), 'parameters', jsonb_build_object('x', n, 'y', 3)),
                case when n % 100 >= 7 then jsonb_build_object('result', n * 3) end,
                case when n % 100 < 5 then 'evaluation timed out after 5000 ms (attempt ' || (1 + n % 3) || ')'
                     when n % 100 < 7 then 'cancelled by the user' end,
                case when n % 100 < 5 then 3 else 1 end, 3, t.at, t.at + interval '40 ms', t.at + interval '90 ms'
           from ${rowsOf}
         returning id)
       select min(id::text) as first, max(id::text) as last from made`,
      params,
    );
    const { first, last } = inserted.rows[0]!;
    // get_byte of the id's last (random) byte picks the churned rows.
    const updated = await db.query(
      `update jobs set progress = '{"step": 2}', attempts_made = attempts_made + 1
        where id between $1 and $2 and get_byte(uuid_send(id), 15) % 20 between 1 and 4`,
      [first, last],
    );
    const deleted = await db.query(`delete from jobs where id between $1 and $2 and get_byte(uuid_send(id), 15) % 20 = 0`, [first, last]);
    churn.updated += updated.rowCount ?? 0;
    churn.deleted += deleted.rowCount ?? 0;
    bench.log(`history: ${to.toLocaleString('en-US')} jobs (${round((performance.now() - started) / 1000, 1)} s)`);
  }

  // Request logs are history too: older than every live one, so their ids must come first (retention and metering
  // read them in id order), and metered long ago. One transaction holding the metering watermark: metering neither
  // counts them nor runs meanwhile; the live rows (all metered first) move behind them.
  const client = await db.connect();
  try {
    const em = bench.orm.em.fork();
    while (await meterNextBatch(em, { batchSize: 10_000 }));
    await client.query('begin');
    await client.query(`insert into metering_watermarks (name, last_id) values ('request_logs', 0) on conflict (name) do nothing`);
    await client.query(`select last_id from metering_watermarks where name = 'request_logs' for update`);
    const live = (await client.query<{ max: string }>('select coalesce(max(id), 0)::text as max from request_logs')).rows[0]!.max;
    for (const { to, params } of chunks) {
      await client.query(
        `insert into request_logs (timestamp, customer_id, service_type, method, status_code, bytes_out, received_at)
         select t.at + r.k * interval '500 ms', c.customer_id, 'compute', case r.k when 0 then 'POST' else 'GET' end,
                case r.k when 0 then 202 else 200 end, 280 + r.k * 200, t.at + r.k * interval '500 ms'
           from ${rowsOf}, generate_series(0, 1) r(k)
          order by n, r.k`,
        params,
      );
      bench.log(`history: ${(2 * to).toLocaleString('en-US')} request logs (${round((performance.now() - started) / 1000, 1)} s)`);
    }
    await client.query('update request_logs set id = default where id <= $1', [live]);
    await client.query(
      `update metering_watermarks set last_id = (select max(id) from request_logs), updated_at = now() where name = 'request_logs'`,
    );
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
  await db.query('analyze jobs, request_logs');
  return { seconds: round((performance.now() - started) / 1000, 1), churn };
}
