/**
 * `npm run soak` (issue 18 item 5): does disk stay bounded under steady load with retention on?
 *
 * Starts a PostgreSQL of its own (embedded, under SOAK_DATA_DIR, default `.data/soak`: a shared server may run
 * with autovacuum off, and autovacuum keeping up is part of what is measured) unless SOAK_DATABASE_URL names
 * one, a fresh database on it, and an API and a worker process on REDIS_URL (or a local Redis) under a queue
 * prefix of their own. Retention is shortened: a retention "day" is SOAK_DAY_SECONDS (120) via
 * RETENTION_DAY_SECONDS, jobs, request logs and webhook deliveries are kept one such day, the retention job
 * runs every 15 s, metering every 10 s and billing every 30 s (request logs go only once metered and billed).
 *
 * Load, for SOAK_MINUTES (30): SOAK_RATE (200) uncached invokes a second (autocannon, 16 connections; the
 * worker drains them as they come) and one batch of 100 invocations every 10 s. Every SOAK_SAMPLE_SECONDS
 * (60): table and index sizes, live and dead rows and autovacuum runs (pg_stat_user_tables) of the history
 * tables, and the API's and the worker's RSS after a full collection in each (memory held, not where the
 * collector happened to be). Prints one JSON line a sample, a table at the end and a JSON summary: each
 * figure's mean over the first and the last third of the samples, and the growth between them.
 */
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ensureLocalServices } from '../local-services.js';
import {
  benchCustomer,
  collectGarbage,
  createMigratedDatabase,
  deleteKeys,
  percentile,
  round,
  rssMiB,
  startChild,
  waitUntil,
  type Child,
} from './harness.js';
import { submitRequest } from './http-submit.js';
import { tableStats, type TableStats } from './table-stats.js';

const number = (name: string, fallback: number) => Number(process.env[name] || fallback);
const minutes = number('SOAK_MINUTES', 30);
const rate = number('SOAK_RATE', 200);
const sampleSeconds = number('SOAK_SAMPLE_SECONDS', 60);
const daySeconds = number('SOAK_DAY_SECONDS', 120);
const log = (message: string) => process.stderr.write(`[soak] ${message}\n`);

interface Sample {
  minute: number;
  accepted: number;
  non_2xx: number;
  submit_p99_ms: number;
  tables: TableStats[];
  api_rss_mib: number;
  worker_rss_mib: number;
}

async function main(): Promise<void> {
  const services = await ensureLocalServices({
    dataDir: path.resolve(process.env.SOAK_DATA_DIR || '.data/soak'),
    databaseUrl: process.env.SOAK_DATABASE_URL || undefined,
    redisUrl: process.env.REDIS_URL || undefined,
    log,
  });
  const adminUrl = new URL(services.databaseUrl);
  adminUrl.pathname = '/postgres';
  const database = `chrysalis_soak_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  const autovacuum = (await admin.query<{ autovacuum: string }>('show autovacuum')).rows[0]?.autovacuum;
  if (autovacuum !== 'on') log(`WARNING: autovacuum is ${autovacuum} on this server: dead rows will pile up`);
  const databaseUrl = await createMigratedDatabase(admin, adminUrl, database);
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  db.on('error', () => undefined);
  const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: null });
  const prefix = `soak-${randomBytes(3).toString('hex')}`;
  const port = 4000 + Math.floor(Math.random() * 500);
  const api = `http://127.0.0.1:${port}/api/v1`;
  const env = (name: string, fallback: string) => process.env[name] || fallback;
  const platformEnv = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: services.redisUrl,
    QUEUE_PREFIX: prefix,
    PORT: String(port),
    LOG_LEVEL: 'warn',
    WORKER_METRICS_PORT: '0',
    READY_REQUIRES_WORKER: 'false',
    RETENTION_DAY_SECONDS: String(daySeconds),
    JOB_RETENTION_DAYS: env('JOB_RETENTION_DAYS', '1'),
    REQUEST_LOG_RETENTION_DAYS: env('REQUEST_LOG_RETENTION_DAYS', '1'),
    WEBHOOK_RETENTION_DAYS: env('WEBHOOK_RETENTION_DAYS', '1'),
    RETENTION_EVERY_MS: env('RETENTION_EVERY_MS', '15000'),
    METERING_EVERY_MS: env('METERING_EVERY_MS', '10000'),
    BILLING_EVERY_MS: env('BILLING_EVERY_MS', '30000'),
  };
  const children: Child[] = [];
  const samples: Sample[] = [];
  try {
    log(
      `${minutes} min at ${rate} submits/s; a retention day of ${daySeconds} s; database ${database} (autovacuum ${autovacuum}); prefix ${prefix}`,
    );
    const apiChild = startChild('api/main.ts', platformEnv, 'api');
    const workerChild = startChild('workers/main.ts', platformEnv, 'worker');
    children.push(apiChild, workerChild);
    await waitUntil(async () => (await fetch(`${api}/ready`).catch(() => null))?.status === 200, 60_000, 200);
    const customer = await benchCustomer(api, db);

    let latencies: number[] = [];
    let accepted = 0;
    let rejected = 0;
    let x = 0;
    const request = submitRequest(`${api}/substrates/${customer.substrateId}/invoke`, customer.key);
    const finished = new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon(
        {
          ...request,
          connections: 16,
          overallRate: rate,
          duration: minutes * 60,
          // Distinct parameters: each submit is a job of its own, never an invocation-cache hit.
          requests: [
            { setupRequest: (req: autocannon.Request) => ({ ...req, body: JSON.stringify({ parameters: { x: (x += 1), y: 7 } }) }) },
          ],
        },
        (error: unknown, result) => (error ? reject(error) : resolve(result)),
      );
      instance.on('response', (_client, status: number, _bytes, responseTime: number) => {
        if (status >= 200 && status < 300) accepted += 1;
        else rejected += 1;
        latencies.push(responseTime);
      });
    });
    const batches = setInterval(() => {
      const invocations = Array.from({ length: 100 }, (_, i) => ({
        substrate_id: customer.substrateId,
        parameters: { x: (x += 1), y: i },
      }));
      void fetch(`${api}/batches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${customer.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ invocations }),
      }).then(
        async (response) => {
          if (!response.ok) rejected += 1;
          await response.arrayBuffer();
        },
        () => (rejected += 1),
      );
    }, 10_000);

    const started = Date.now();
    for (let i = 1; i <= Math.floor((minutes * 60) / sampleSeconds); i++) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + i * sampleSeconds * 1000 - Date.now())));
      const window = latencies.sort((a, b) => a - b);
      latencies = [];
      await Promise.all([collectGarbage(apiChild.process.pid), collectGarbage(workerChild.process.pid)]);
      const sample: Sample = {
        minute: round((Date.now() - started) / 60_000, 1),
        accepted,
        non_2xx: rejected,
        submit_p99_ms: percentile(window, 99),
        tables: await tableStats(db),
        api_rss_mib: rssMiB(apiChild.process.pid),
        worker_rss_mib: rssMiB(workerChild.process.pid),
      };
      samples.push(sample);
      console.log(JSON.stringify({ scenario: 'soak-sample', ...sample }));
    }
    clearInterval(batches);
    await finished;
    const retention = (
      await db.query(
        `select count(*)::int as runs, coalesce(sum((result->>'jobs')::int), 0)::int as jobs,
                coalesce(sum((result->>'request_logs')::int), 0)::int as request_logs, coalesce(sum((result->>'batch_items')::int), 0)::int as batch_items
           from jobs where type = 'retention' and state = 'completed'`,
      )
    ).rows[0];
    printTable(samples);
    console.log(JSON.stringify(summary(samples, { minutes, rate, daySeconds, autovacuum, retention })));
  } finally {
    for (const child of children.reverse()) await child.stop();
    await deleteKeys(redis, [`${prefix}:*`]);
    await redis.quit();
    await db.end();
    await admin.query(`drop database if exists ${database} with (force)`).catch(() => undefined);
    await admin.end();
    await services.stop();
  }
}

/** The figures the summary compares, read from one sample. */
const figures: Record<string, (sample: Sample) => number> = {
  all_tables_mib: (s) =>
    round(
      s.tables.reduce((sum, t) => sum + t.total_mib, 0),
      1,
    ),
  ...Object.fromEntries(
    ['jobs', 'batch_items', 'request_logs'].flatMap((table) => [
      [`${table}_mib`, (s: Sample) => s.tables.find((t) => t.table === table)?.total_mib ?? 0],
      [`${table}_live_rows`, (s: Sample) => s.tables.find((t) => t.table === table)?.live_rows ?? 0],
      [`${table}_dead_rows`, (s: Sample) => s.tables.find((t) => t.table === table)?.dead_rows ?? 0],
    ]),
  ),
  api_rss_mib: (s) => s.api_rss_mib,
  worker_rss_mib: (s) => s.worker_rss_mib,
  submit_p99_ms: (s) => s.submit_p99_ms,
};

function summary(samples: Sample[], run: Record<string, unknown>) {
  const third = Math.max(1, Math.floor(samples.length / 3));
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const growth = Object.fromEntries(
    Object.entries(figures).map(([name, read]) => {
      const first = mean(samples.slice(0, third).map(read));
      const last = mean(samples.slice(-third).map(read));
      return [
        name,
        { first_third: round(first, 1), last_third: round(last, 1), growth: first > 0 ? round((last - first) / first, 3) : null },
      ];
    }),
  );
  const end = samples.at(-1);
  return {
    scenario: 'soak',
    ...run,
    samples: samples.length,
    accepted: end?.accepted ?? 0,
    non_2xx: end?.non_2xx ?? 0,
    autovacuum_runs: Object.fromEntries((end?.tables ?? []).map((t) => [t.table, t.autovacuum_count])),
    growth,
  };
}

function printTable(samples: Sample[]): void {
  const of = (s: Sample, table: string) => s.tables.find((t) => t.table === table);
  const cells = (s: Sample) => {
    const jobs = of(s, 'jobs');
    const logs = of(s, 'request_logs');
    const items = of(s, 'batch_items');
    return [
      s.minute,
      s.accepted,
      s.submit_p99_ms,
      `${jobs?.heap_mib}+${jobs?.index_mib}`,
      `${jobs?.live_rows}/${jobs?.dead_rows}`,
      jobs?.autovacuum_count,
      `${logs?.heap_mib}+${logs?.index_mib}`,
      `${logs?.live_rows}/${logs?.dead_rows}`,
      logs?.autovacuum_count,
      items?.total_mib,
      s.api_rss_mib,
      s.worker_rss_mib,
    ].map(String);
  };
  const head = [
    'min',
    'accepted',
    'p99 ms',
    'jobs MiB heap+idx',
    'jobs live/dead',
    'av',
    'logs MiB heap+idx',
    'logs live/dead',
    'av',
    'items MiB',
    'api RSS',
    'worker RSS',
  ];
  const rows = [head, ...samples.map(cells)];
  const widths = head.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  console.log('\n' + rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')).join('\n'));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
