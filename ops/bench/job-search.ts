/**
 * Job search at scale (issue 19): `npx tsx ops/bench/job-search.ts [--rows=1000000] [--requests=300] [--keep]`.
 *
 * Builds a scratch database (`chrysalis_job_search_bench` on DATABASE_URL's server, default
 * postgresql://postgres@127.0.0.1:5432), migrates it, registers two customers and the admin through the API,
 * loads `rows` job rows with one generate_series INSERT (30 days of UUIDv7 ids and matching created_at; 60 %
 * of them the first customer's, the rest spread over 200 others; 90 % completed, 5 % failed with one of a few
 * error texts, 2 % cancelled, 3 % queued), prints EXPLAIN ANALYZE of the filter queries, then times GET /jobs
 * and GET /admin/jobs with filters over HTTP (one request at a time) and prints JSON with p50/p99 per case.
 * Drops the database afterwards unless `--keep`. Needs PostgreSQL and Redis running; it starts no worker.
 */
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createApiDeps } from '../../api/create-deps.js';
import { createApp } from '../../api/app.js';
import { ensureAdmin } from '../../api/auth/bootstrap-admin.js';
import { loadConfig } from '../../config.js';
import { createOrm, migrate } from '../../db/orm.js';
import { createLogger } from '../../lib/logger.js';
import { uuidv7Sql } from './harness.js';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const rows = arg('rows', 1_000_000);
const requests = arg('requests', 300);
const keep = process.argv.includes('--keep');
const server = new URL(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres');
const database = 'chrysalis_job_search_bench';
const urlOf = (name: string) => Object.assign(new URL(server.toString()), { pathname: `/${name}` }).toString();
const say = (message: string) => process.stderr.write(`[job-search] ${message}\n`);

const errors = [
  'modulus must not be 0',
  'the result is not a finite number',
  'evaluation timed out after 5000 ms',
  'substrate 0x%s not found',
  'no such key: y',
  'even root of a negative number',
];

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: urlOf('postgres') });
  await admin.connect();
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.query(`create database ${database}`);
  await admin.end();
  const databaseUrl = urlOf(database);
  const orm = await createOrm(databaseUrl, { poolMax: 2 });
  await migrate(orm);
  await orm.close();

  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: 'job-search-bench',
    ADMIN_EMAIL: 'admin@bench.test',
    ADMIN_PASSWORD: 'admin-password-123',
    LOG_LEVEL: 'silent',
    READY_REQUIRES_WORKER: 'false',
    PLATFORM_SCHEDULES: 'false',
    RATE_LIMIT_MULTIPLIER: '1000000',
    RATE_LIMIT_LOGIN_PER_MIN: '100000',
    RATE_LIMIT_KEY_LOOKUPS_PER_MIN: '100000',
    RATE_LIMIT_REGISTER_PER_MIN: '100000',
  });
  const deps = await createApiDeps(config, createLogger('silent', 'api'));
  await ensureAdmin(deps);
  const http = createApp(deps).listen(0);
  await new Promise<void>((resolve) => http.once('listening', resolve));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/api/v1`;
  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const login = async (email: string, password: string) =>
    (await call('POST', '/auth/login', undefined, { email, password })).access_token as string;
  const register = async (email: string) => {
    await call('POST', '/auth/register', undefined, { email, password: 'a long password', accept_tos: true, tos_version: '1.0.0' });
    return login(email, 'a long password');
  };
  const bigToken = await register('big@bench.test');
  const smallToken = await register('small@bench.test');
  const adminToken = await login('admin@bench.test', 'admin-password-123');
  const sql = new pg.Client({ connectionString: databaseUrl });
  await sql.connect();
  const customerOf = async (email: string) =>
    (await sql.query<{ customer_id: string }>('select customer_id from users where email = $1', [email])).rows[0]!.customer_id;
  const big = await customerOf('big@bench.test');
  const small = await customerOf('small@bench.test');

  say(`loading ${rows.toLocaleString('en-US')} jobs`);
  let started = performance.now();
  // Row n: created (rows - n) × step ago; its id is a UUIDv7 of that time. Customer: 60 % `big`, one row in
  // 10,000 `small`, the rest one of 200 others. State by n mod 100: 0–4 failed, 5–6 cancelled, 7–9 queued.
  await sql.query(
    `insert into jobs (id, customer_id, type, state, payload, result, error, attempts_made, max_attempts, created_at, started_at, finished_at)
     select ${uuidv7Sql('ms', 'h')},
            case when n % 10000 = 1 then $3::uuid when n % 10 < 6 then $2::uuid
                 else ('00000000-0000-4000-8000-' || lpad(to_hex(n % 200), 12, '0'))::uuid end,
            case when n % 7 = 0 then 'batch' else 'invoke' end,
            case when n % 100 < 5 then 'failed' when n % 100 < 7 then 'cancelled' when n % 100 < 10 then 'queued' else 'completed' end,
            '{"substrate_id":"0x0000000000000001","parameters":{"x":1}}'::jsonb,
            case when n % 100 >= 10 then '{"result":1}'::jsonb end,
            case when n % 100 < 5 then replace(($4::text[])[1 + (n / 100) % $5], '%s', to_hex(n)) || ' (attempt ' || (1 + n % 3) || ')'
                 when n % 100 < 7 then 'cancelled by the user' end,
            1, 3, at, case when n % 100 >= 10 or n % 100 < 5 then at end, case when n % 100 >= 10 or n % 100 < 7 then at end
       from generate_series(1, $1::int) n,
            lateral (select now() - make_interval(secs => ($1::int - n) * 2.5) as at) t,
            lateral (select (extract(epoch from t.at) * 1000)::bigint as ms, md5(n::text) as h) k`,
    [rows, big, small, errors, errors.length],
  );
  await sql.query('analyze jobs');
  say(`loaded in ${Math.round(performance.now() - started)} ms`);

  const weekAgo = new Date(Date.now() - 7 * 86400_000).toISOString();
  const twoWeeksAgo = new Date(Date.now() - 14 * 86400_000).toISOString();
  const cases: Array<{ name: string; path: string; token: string }> = [
    { name: 'GET /jobs (big customer, no filter)', path: '/jobs?limit=20', token: bigToken },
    { name: 'GET /jobs state=failed', path: '/jobs?state=failed&limit=20', token: bigToken },
    { name: 'GET /jobs state=failed,cancelled', path: '/jobs?state=failed,cancelled&limit=20', token: bigToken },
    { name: 'GET /jobs state=queued,failed type=batch', path: '/jobs?state=queued,failed&type=batch&limit=20', token: bigToken },
    {
      name: 'GET /jobs created in a week two weeks ago, failed',
      path: `/jobs?state=failed&created_after=${twoWeeksAgo}&created_before=${weekAgo}&limit=20`,
      token: bigToken,
    },
    { name: 'GET /jobs small customer (100 jobs among 1M) state=failed', path: '/jobs?state=failed&limit=20', token: smallToken },
    { name: 'GET /admin/jobs state=failed', path: '/admin/jobs?state=failed&limit=20', token: adminToken },
    { name: 'GET /admin/jobs error_contains', path: '/admin/jobs?error_contains=timed%20out&limit=20', token: adminToken },
    {
      name: 'GET /admin/jobs customer_id + state=failed + error_contains',
      path: `/admin/jobs?customer_id=${big}&state=failed&error_contains=modulus&limit=20`,
      token: adminToken,
    },
    {
      name: 'GET /admin/jobs rare error text (one row)',
      path: `/admin/jobs?state=failed&error_contains=${(rows - 100).toString(16)}%20not&limit=20`,
      token: adminToken,
    },
    // Failure groups read the newest 10,000 failed jobs that match and group them (the console's Failures page).
    { name: 'GET /admin/jobs/failure-groups (all customers)', path: '/admin/jobs/failure-groups', token: adminToken },
    { name: 'GET /admin/jobs/failure-groups customer_id', path: `/admin/jobs/failure-groups?customer_id=${big}`, token: adminToken },
    {
      name: 'GET /admin/jobs/failure-groups small customer, last 2 weeks',
      path: `/admin/jobs/failure-groups?customer_id=${small}&created_after=${twoWeeksAgo}`,
      token: adminToken,
    },
    {
      name: 'GET /admin/jobs type=batch created in a week, failed',
      path: `/admin/jobs?type=batch&state=failed&created_after=${twoWeeksAgo}&created_before=${weekAgo}&limit=20`,
      token: adminToken,
    },
  ];

  const plans: Record<string, string> = {};
  // The statements behind three of the cases, as the API runs them (db/jobs/search-jobs.ts).
  const explain = async (name: string, text: string, params: unknown[]) => {
    const plan = await sql.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${text}`, params);
    plans[name] = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
  };
  await explain(
    'customer, failed or cancelled',
    `select * from (
       (select id from jobs where customer_id = $1 and state = 'failed' order by id desc limit 21)
       union all (select id from jobs where customer_id = $1 and state = 'cancelled' order by id desc limit 21)) m order by id desc limit 21`,
    [big],
  );
  await explain(
    'all customers, failed, error ilike',
    `select id from jobs where state = 'failed' and error ilike $1 order by id desc limit 21`,
    ['%timed out%'],
  );
  await explain(
    'all customers, failed, rare error text',
    `select id from jobs where state = 'failed' and error ilike $1 order by id desc limit 21`,
    [`%${(rows - 100).toString(16)} not%`],
  );

  const results: Array<Record<string, unknown>> = [];
  for (const { name, path, token } of cases) {
    await call('GET', path, token); // warm
    const times: number[] = [];
    let items = 0;
    for (let i = 0; i < requests; i++) {
      started = performance.now();
      const answer = await call('GET', path, token);
      times.push(performance.now() - started);
      items = (answer.items as unknown[]).length;
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 100) / 100;
    results.push({ case: name, items, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) });
    say(`${name}: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms (${items} items)`);
  }
  for (const [name, plan] of Object.entries(plans)) process.stderr.write(`\n── EXPLAIN ANALYZE: ${name}\n${plan}\n`);
  console.log(JSON.stringify({ scenario: 'job-search', rows, requests_per_case: requests, target_p99_ms: 20, results }, null, 2));

  await sql.end();
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
  await deps.close();
  if (!keep) {
    const cleanup = new pg.Client({ connectionString: urlOf('postgres') });
    await cleanup.connect();
    await cleanup.query(`drop database if exists ${database} with (force)`);
    await cleanup.end();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
