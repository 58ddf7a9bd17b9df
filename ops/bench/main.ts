/**
 * `npm run bench`: the platform end to end and, in the same run on the same services, the same work
 * through a minimal raw-BullMQ program. Prints one JSON object per scenario, then a table.
 *
 *   npm run bench                      # every scenario at full size
 *   npm run bench -- --quick           # smaller N (a smoke run)
 *   npm run bench -- --only=wait-latency,batch-10k
 *   npm run bench -- --only=peers      # queue-drain beside raw BullMQ, graphile-worker and pg-boss
 *   npm run bench -- --only=request-latency  # p50/p99 of /health, GET /jobs/:id, POST /jobs, a 429, with server stages
 *   npm run bench -- --cluster         # adds cluster-drain and cluster-http-submit: queue-drain and http-submit on a local
 *                                      # 3-master Redis Cluster beside single-node, per-master commands (also --only=cluster-drain,…)
 *   npm run bench -- --only=noisy      # issue 15's attacks at full size, a victim's latency measured (NOISY_SCALE, NOISY_WINDOW_SECONDS;
 *                                      # NOISY_ATTACKS=enterprise-reads,… runs only those)
 *   npm run bench -- --only=bulk-submit  # POST /jobs/bulk beside a raw addBulk + multi-row INSERT program
 *   npm run bench -- --only=fairness   # issue 16: A's 40,000 bulk invokes, B's Prefer: wait calls, fair sharing vs FIFO (--quick: 4,000)
 *   npm run bench -- --only=fairness --fair-workers=2  # the same with two worker processes per mode
 *   npm run bench -- --only=fairness --fair-rounds=5   # more rounds for a steadier median (default 3)
 *   npm run bench -- --history=1000000  # issue 18: drain, submit, GET /jobs, sweeper, retention on empty tables, then
 *                                      # again after 1,000,000 churned finished jobs were preloaded (ops/bench/history.ts)
 */
import autocannon from 'autocannon';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { pino } from 'pino';
import { createOrm, migrate } from '../../db/orm.js';
import { InvocationCache } from '../../db/invocation-cache.js';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { createQueues } from '../../queue/queues.js';
import { createFairQueues } from '../../queue/fair-share/fair-queues.js';
import { loadConfig } from '../../config.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { ensureServicesForEnv, loadDotEnv } from '../local-services.js';
import { runPeers } from './peers/scenario.js';
import { runNoisy } from './noisy/scenario.js';
import { runRequestLatency } from './request-latency.js';
import { measureWaitStages } from './wait-stages.js';
import { runClusterDrain, runClusterHttpSubmit } from './cluster.js';
import { measureHttpSubmit, type HttpSubmitMeasurement } from './http-submit.js';
import { runFairness } from './fairness.js';
import { runHistory } from './history.js';
import { sizesFromEnv } from './noisy/sizes.js';
import {
  benchCustomer,
  collectGarbage,
  createMigratedDatabase,
  deleteKeys,
  apiJson,
  cpuBreakdown,
  cpuSeconds,
  postJson,
  cpuSecondsMatching,
  percentile,
  redisActivity,
  redisCostPerJob,
  type RedisActivity,
  round,
  numberOption,
  settle,
  rssMiB,
  startChild,
  waitForCount,
  waitUntil,
  type Child,
  type ScenarioResult,
} from './harness.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args
  .find((arg) => arg.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
/** Run only with --cluster or when named in --only: each starts a local Redis Cluster. */
const clusterScenarios = ['cluster-drain', 'cluster-http-submit'];
/** --history=N: finished jobs to preload; the other scenarios then run only when named in --only. */
const history = numberOption(args, 'history', 0);
/** Worker processes per mode and rounds of the fairness scenario (read here, so a bad value stops the run before it starts). */
const fairWorkers = numberOption(args, 'fair-workers', 1, 1);
// Three rounds by default: on this noisy 2-core machine one round's drain ratio moved by ±0.1.
const fairRounds = numberOption(args, 'fair-rounds', 3, 1);
const wanted = (name: string) =>
  (!only && !history && !clusterScenarios.includes(name)) ||
  (only?.includes(name) ?? false) ||
  (clusterScenarios.includes(name) && args.includes('--cluster'));
/** Load runs start after this much of the same load on the same side, so neither is measured while its JIT warms up. */
const warmUpSeconds = quick ? 1 : 3;
import { readFileSync } from 'node:fs';
const packageVersion = (name: string): string =>
  JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
const versions = {
  node: process.version,
  bullmq: packageVersion('bullmq'),
  piscina: packageVersion('piscina'),
  express: packageVersion('express'),
};

const apiPort = 3900 + Math.floor(Math.random() * 50);
const basePort = apiPort + 50;
const api = `http://127.0.0.1:${apiPort}/api/v1`;
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

const json = (method: string, path: string, body?: unknown, token?: string) => apiJson(api, method, path, body, token);

async function main(): Promise<void> {
  loadDotEnv();
  const services = await ensureServicesForEnv(process.env, { log });
  const adminUrl = new URL(process.env.DATABASE_URL as string);
  const database = `chrysalis_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`create database ${database}`);
  const databaseUrl = Object.assign(new URL(adminUrl), { pathname: `/${database}` }).toString();
  const db = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  db.on('error', () => undefined); // idle clients see the server stop at the end of the run
  const orm = await createOrm(databaseUrl, { poolMax: 4 });
  await migrate(orm);
  await db.query('create table bench_results (id text primary key, value jsonb)');
  // The durable wait baseline's jobs (wait-latency): a row per job, its outcome written by the raw worker.
  await db.query(
    `create table bench_jobs (id uuid primary key, payload jsonb, state text not null default 'queued', result jsonb,
       created_at timestamptz not null default now(), finished_at timestamptz)`,
  );

  const redisUrl = process.env.REDIS_URL as string;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  // Plain prefixes, as in production: the platform's queue names carry their own hash tags.
  const prefix = `bench-${randomBytes(3).toString('hex')}`;
  const basePrefix = `${prefix}-base`;
  /** The fairness scenario's own prefixes: each mode runs an API and a worker of its own. */
  const fairnessPrefixOf = (fairSharing: boolean) => `${prefix}-fair${fairSharing ? 'on' : 'off'}`;
  /** QUEUE_SHARDS from the environment (default 16), so a run can compare shard counts. */
  const queueShards = Number(process.env.QUEUE_SHARDS ?? 16);
  const platformEnv = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    QUEUE_SHARDS: String(queueShards),
    PORT: String(apiPort),
    LOG_LEVEL: 'warn',
    WORKER_METRICS_PORT: '0',
    READY_REQUIRES_WORKER: 'false',
    RATE_LIMIT_REGISTER_PER_MIN: '1000',
    RATE_LIMIT_LOGIN_PER_MIN: '1000',
    RATE_LIMIT_KEY_LOOKUPS_PER_MIN: '100000',
    // The noisy scenario's webhook receivers and hanging endpoints are loopback servers.
    WEBHOOK_ALLOW_PRIVATE: 'true',
    // The history bench runs retention itself, timed; the worker's own schedule stays out of its way.
    ...(history ? { RETENTION_EVERY_MS: '86400000' } : {}),
  };
  const children: Child[] = [];
  const results: ScenarioResult[] = [];
  const report = (result: ScenarioResult) => {
    results.push(result);
    console.log(JSON.stringify({ ...result, versions }));
  };

  try {
    log(`platform: API on :${apiPort}, one worker process; database ${database}; prefix ${prefix}; ${queueShards} shards`);
    const apiChild = startChild('api/main.ts', platformEnv, 'api');
    const workerChild = startChild('workers/main.ts', platformEnv, 'worker');
    children.push(apiChild, workerChild);
    await waitUntil(async () => (await fetch(`${api}/ready`).catch(() => null))?.status === 200, 60_000, 200);

    const { customerId, key, substrateId } = await benchCustomer(api, db);

    const platformConfig = loadConfig({ ...process.env, ...platformEnv });
    // Bundles as the API makes them (JOB_BUNDLE_SIZE); queue-drain also runs with every job carried alone, the code before bundles.
    const platformQueues = createQueues(redis, { queuePrefix: prefix, queueShards, jobBundleSize: platformConfig.jobBundleSize });
    const unbundledQueues = createQueues(redis, { queuePrefix: prefix, queueShards, jobBundleSize: 1 });
    const invokeQueues = platformQueues.ofType('invoke');
    // The worker child's fair sharing (FAIR_SHARING, default on), as its API would admit: the bench submits in bulk itself.
    const platformFair = createFairQueues(redis, platformConfig, platformQueues);
    const cpuGroups = {
      api: () => cpuSeconds(apiChild.process.pid),
      worker: () => cpuSeconds(workerChild.process.pid),
      postgres: () => cpuSecondsMatching(/^postgres/),
      redis: () => cpuSecondsMatching(/^redis-server/),
      bench: () => cpuSeconds(process.pid),
    };
    const em = orm.em.fork();
    const logger = pino({ level: 'warn' });
    const invoke = getJobDefinition('invoke')!;
    const cache = new InvocationCache(redis, prefix);
    /**
     * The bench customer's jobs submitted since `since` that are final, counted once none of them is unfinished
     * (0 until then): every caller waits for all of its jobs. Its rows are found by id (UUIDv7, minted on this
     * machine's clock), which the partitions prune, and the check every 100 ms stops at the first row still
     * unfinished (EXISTS on the customer's partial index of those); the final rows are counted once. A count of
     * the unfinished rows there read ~25,000 index entries a check on average over a 50,000-job drain. Before
     * that it was `count(*) … created_at >= since and state in ('completed', 'failed')` on every
     * check: no partition prunes by created_at, and once ANALYZE had run each check read every row of the
     * customer in the current partition (~180,000 after the empty-table figures, 200 ms a check), loading the
     * PostgreSQL whose drain it timed.
     */
    const countFinished = async (since: Date) => {
      const floor = uuidv7Floor(since);
      const unfinished = await db.query<{ left: boolean }>(
        `select exists (select 1 from jobs where customer_id = $1 and id >= $2 and state in ('queued', 'delayed', 'active')) as left`,
        [customerId, floor],
      );
      if (unfinished.rows[0]!.left) return 0;
      const finished = await db.query<{ n: string }>(
        `select count(*) as n from jobs where customer_id = $1 and id >= $2 and state in ('completed', 'failed')`,
        [customerId, floor],
      );
      return Number(finished.rows[0]!.n);
    };
    const countBaseline = async () => Number((await db.query('select count(*) as n from bench_results')).rows[0].n);

    // Each side starts each scenario from a collected heap. A process whose V8 heap still holds its start-up
    // garbage when load begins ran up to ~50% slower per request for minutes (until V8's idle-time GC), so
    // runs were fast or slow by chance. The baseline processes get the same.
    const settlePlatform = () => Promise.all([collectGarbage(apiChild.process.pid), collectGarbage(workerChild.process.pid)]);

    /** The channel the durable wait baseline's worker announces stored rows on (bare-server.ts `/wait`). */
    const durableWaitChannel = 'bench_job_stored';
    const baselineWorker = async (queue: string, mode: 'persist' | 'evaluate' | 'notify') => {
      const child = startChild(
        'ops/bench/baseline/raw-worker.ts',
        {
          DATABASE_URL: databaseUrl,
          REDIS_URL: redisUrl,
          BENCH_QUEUE: queue,
          BENCH_PREFIX: basePrefix,
          BENCH_MODE: mode,
          BENCH_CHANNEL: durableWaitChannel,
        },
        'raw worker',
      );
      const probe = new Queue(queue, { connection: redis, prefix: basePrefix });
      await waitUntil(async () => (await probe.getWorkers()).length > 0, 30_000, 100);
      await collectGarbage(child.process.pid);
      return { child, queue: probe };
    };
    const bareServer = async (queue = 'bench-submit', port = basePort): Promise<Child> => {
      const bare = startChild(
        'ops/bench/baseline/bare-server.ts',
        {
          REDIS_URL: redisUrl,
          DATABASE_URL: databaseUrl,
          BENCH_CHANNEL: durableWaitChannel,
          BENCH_QUEUE: queue,
          BENCH_PREFIX: basePrefix,
          PORT: String(port),
        },
        'bare server',
      );
      await waitUntil(
        async () => (await fetch(`http://127.0.0.1:${port}/cached`, { method: 'POST' }).catch(() => null))?.status === 200,
        30_000,
        100,
      );
      await collectGarbage(bare.process.pid);
      return bare;
    };

    /** Platform: bulk-submit N invokes and wait until every row is final. Baseline: addBulk + raw worker + batched insert. */
    const drain = async (n: number, queues = platformQueues, y = 3) => {
      const since = new Date();
      const started = performance.now();
      await submitJobsBulk(
        { em, queues, fair: platformFair, logger, cache },
        customerId,
        invoke,
        Array.from({ length: n }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y } })),
        platformFair?.weightOf('enterprise') ?? 1,
      );
      await waitUntil(async () => (await countFinished(since)) >= n, 600_000, 100);
      return (performance.now() - started) / 1000;
    };

    /** The single-node platform's queue-drain of this run (jobs/s), for cluster-drain's ratio. */
    let singleNodeDrain: number | null = null;
    /** Where the single-node drain's CPU and Redis commands went (the cluster run reports its own beside them). */
    let singleNodeDrainCost: Record<string, unknown> = {};
    if (wanted('queue-drain')) {
      const n = quick ? 10_000 : 50_000;
      log(`queue-drain: ${n} jobs`);
      await settlePlatform();
      const platformRedisBefore = await redisActivity(redis);
      const { result: platformSeconds, cpu } = await cpuBreakdown(cpuGroups, () => drain(n));
      const platformRedis = redisCostPerJob(platformRedisBefore, await redisActivity(redis), n);
      const base = await baselineWorker('bench-drain', 'persist');
      await db.query('truncate bench_results');
      const baselineCpuGroups = {
        worker: () => cpuSeconds(base.child.process.pid),
        postgres: cpuGroups.postgres,
        redis: cpuGroups.redis,
        bench: cpuGroups.bench,
      };
      const baselineRedisBefore = await redisActivity(redis);
      const { result: baselineSeconds, cpu: baselineCpu } = await cpuBreakdown(baselineCpuGroups, async () => {
        const started = performance.now();
        for (let i = 0; i < n; i += 1000) {
          await base.queue.addBulk(
            Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
              name: 'invoke',
              data: { expression: 'x * y', parameters: { x: i + j, y: 3 } },
            })),
          );
        }
        await waitForCount(countBaseline, n, 600_000);
        return (performance.now() - started) / 1000;
      });
      const baselineRedis = redisCostPerJob(baselineRedisBefore, await redisActivity(redis), n);
      await base.child.stop();
      await base.queue.obliterate({ force: true });
      // The code before bundles, same run: every job carried alone (JOB_BUNDLE_SIZE=1), other parameters (no cache hits).
      await settlePlatform();
      const unbundledRedisBefore = await redisActivity(redis);
      const { result: unbundledSeconds, cpu: unbundledCpu } = await cpuBreakdown(cpuGroups, () => drain(n, unbundledQueues, 7));
      const unbundledRedis = redisCostPerJob(unbundledRedisBefore, await redisActivity(redis), n);
      const platform = n / platformSeconds;
      const baseline = n / baselineSeconds;
      log(
        `queue-drain: Redis per job: platform ${platformRedis.commands_per_job} commands, ${platformRedis.redis_cpu_us_per_job} µs CPU; ` +
          `every job alone (before bundles) ${unbundledRedis.commands_per_job} commands, ${unbundledRedis.redis_cpu_us_per_job} µs CPU, ` +
          `${round(n / unbundledSeconds)} jobs/s; raw BullMQ ${baselineRedis.commands_per_job} commands, ${baselineRedis.redis_cpu_us_per_job} µs CPU`,
      );
      singleNodeDrain = platform;
      singleNodeDrainCost = { cpu_seconds: cpu, redis_per_job: platformRedis };
      report({
        scenario: 'queue-drain',
        n,
        unit: 'jobs/s',
        platform: round(platform),
        baseline: round(baseline),
        ratio: round(platform / baseline, 3),
        target: 'ratio >= 0.8',
        met: platform / baseline >= 0.8,
        details: {
          platform_seconds: round(platformSeconds, 3),
          baseline_seconds: round(baselineSeconds, 3),
          cpu_seconds_during_platform_run: cpu,
          cpu_seconds_during_baseline_run: baselineCpu,
          redis_per_job_platform: platformRedis,
          redis_per_job_baseline: baselineRedis,
          bundle_size: platformConfig.jobBundleSize,
          unbundled: {
            jobs_per_second: round(n / unbundledSeconds),
            ratio: round(n / unbundledSeconds / baseline, 3),
            cpu_seconds: unbundledCpu,
            redis_per_job: unbundledRedis,
          },
          redis_commands_per_job_vs_unbundled: round(platformRedis.commands_per_job / unbundledRedis.commands_per_job, 3),
        },
      });
    }

    if (wanted('cluster-drain')) {
      const n = quick ? 10_000 : 50_000;
      if (singleNodeDrain === null) {
        log(`cluster-drain: single-node queue-drain first, ${n} jobs`);
        await settlePlatform();
        const redisBefore = await redisActivity(redis);
        const { result: seconds, cpu } = await cpuBreakdown(cpuGroups, () => drain(n));
        singleNodeDrain = n / seconds;
        singleNodeDrainCost = { cpu_seconds: cpu, redis_per_job: redisCostPerJob(redisBefore, await redisActivity(redis), n) };
      }
      // The single-node worker idles meanwhile (its queues are empty); the cluster's worker is a process of its own.
      report(
        await runClusterDrain({
          n,
          singleNodeJobsPerSecond: singleNodeDrain,
          singleNodeCost: singleNodeDrainCost,
          platformEnv,
          em,
          logger,
          cache,
          invoke,
          customerId,
          substrateId,
          countFinished,
          singleNodeWorkerPid: workerChild.process.pid!,
          log,
        }),
      );
    }

    if (wanted('peers')) {
      const n = quick ? 10_000 : 50_000;
      const chrysalis = async () => {
        await settlePlatform();
        // Parameters of its own: queue-drain's results are in the invocation cache by now.
        const { result: seconds, cpu } = await cpuBreakdown(cpuGroups, () => drain(n, platformQueues, 11));
        return { seconds, cpu };
      };
      const print = (side: object) => console.log(JSON.stringify({ ...side, versions }));
      report(
        await runPeers({
          n,
          adminUrl: adminUrl.toString(),
          databasePrefix: database,
          redisUrl,
          queuePrefix: basePrefix,
          chrysalis,
          sharedCpu: cpuGroups,
          log,
          print,
        }),
      );
    }

    /** The single-node API's submit load (platform side), shared by http-submit and cluster-http-submit. */
    const submitDuration = quick ? 5 : 10;
    const countRows = async (since: Date) => {
      const rows = (
        await db.query(
          `select count(*) filter (where state = 'completed') as completed, count(*) as total from jobs where customer_id = $1 and id >= $2`,
          [customerId, uuidv7Floor(since)],
        )
      ).rows[0];
      return { total: Number(rows.total), completed: Number(rows.completed) };
    };
    const submitLoad = { key, duration: submitDuration, warmUpSeconds, countFinished, countRows };
    const singleNodeSubmit = () =>
      measureHttpSubmit({
        ...submitLoad,
        url: `${api}/substrates/${substrateId}/invoke`,
        invokeQueues,
        settle: settlePlatform,
        cpuGroups,
      });
    /** The single-node platform's http-submit of this run, for cluster-http-submit's ratio. */
    let singleNodeSubmitRun: HttpSubmitMeasurement | null = null;

    if (wanted('http-submit')) {
      const duration = submitDuration;
      log(`http-submit: 64 connections for ${duration} s (after ${warmUpSeconds} s of warm-up on each side)`);
      // Like the baseline (which has no consumer), the API takes the load alone: the invoke queues are
      // paused while autocannon runs, then resumed and drained (measureHttpSubmit).
      const platformRun = await singleNodeSubmit();
      singleNodeSubmitRun = platformRun;
      const bare = await bareServer();
      const baseSubmitOptions = {
        url: `http://127.0.0.1:${basePort}/submit`,
        method: 'POST' as const,
        connections: 64,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ parameters: { x: 5, y: 7 } }),
      };
      await autocannon({ ...baseSubmitOptions, duration: warmUpSeconds });
      const baseRun = await autocannon({ ...baseSubmitOptions, duration });
      await bare.stop();
      await new Queue('bench-submit', { connection: redis, prefix: basePrefix }).obliterate({ force: true });
      const platform = platformRun.acceptedPerSecond;
      const baseline = baseRun['2xx'] / duration;
      report({
        scenario: 'http-submit',
        n: platformRun.accepted,
        unit: 'accepted/s',
        platform: round(platform),
        baseline: round(baseline),
        ratio: round(platform / baseline, 3),
        target: 'ratio >= 0.5; every accepted job completed',
        met: platform / baseline >= 0.5 && platformRun.completed === platformRun.acceptedRows,
        details: {
          accepted: platformRun.accepted,
          accepted_rows: platformRun.acceptedRows,
          completed: platformRun.completed,
          non_2xx: platformRun.non2xx,
          statuses: platformRun.statuses,
          problem: platformRun.problem,
          errors: platformRun.errors,
          drain_seconds: platformRun.drainSeconds,
          platform_p99_ms: platformRun.p99Ms,
          baseline_p99_ms: baseRun.latency.p99,
          cpu_seconds_during_load: platformRun.cpu,
        },
      });
    }

    if (wanted('cluster-http-submit')) {
      if (singleNodeSubmitRun === null) {
        log(`cluster-http-submit: single-node http-submit first, 64 connections for ${submitDuration} s`);
        singleNodeSubmitRun = await singleNodeSubmit();
      }
      log(
        `cluster-http-submit: single node accepted ${round(singleNodeSubmitRun.acceptedPerSecond)}/s ` +
          `(${singleNodeSubmitRun.completed} of ${singleNodeSubmitRun.acceptedRows} rows completed)`,
      );
      report(
        await runClusterHttpSubmit({
          singleNode: singleNodeSubmitRun,
          apiPort: basePort + 3,
          substrateId,
          load: submitLoad,
          platformEnv,
          singleNodeWorkerPid: workerChild.process.pid!,
          log,
        }),
      );
    }

    if (wanted('wait-latency')) {
      const n = quick ? 300 : 1000;
      // Each side is warmed the same way before it is measured: at least `warmUpCalls` sequential calls and
      // about `warmUpSecondsEach` s of them. The raw worker is a fresh process (its JIT, its Piscina threads,
      // its Redis connections cold) while the platform's has run the earlier scenarios: a warm-up of 1–3 s
      // left the raw side's figures inflated for tens of seconds, which flattered the ratio.
      const warmUpCalls = Number(process.env.BENCH_WAIT_WARMUP ?? n);
      const warmUpSecondsEach = Number(process.env.BENCH_WAIT_WARMUP_SECONDS ?? (quick ? 10 : 30));
      log(
        `wait-latency: ${n} sequential Prefer: wait calls, the two sides in turns, each after >= ${warmUpCalls} calls and >= ${warmUpSecondsEach} s of them`,
      );
      // One keep-alive connection through node:http: fetch's own overhead here was ~0.5 ms a call.
      const connection = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const call = async (x: number) => {
        const { status, body } = await postJson(
          connection,
          `${api}/substrates/${substrateId}/invoke`,
          { parameters: { x, y: 11 } },
          { authorization: `Bearer ${key}`, prefer: 'wait=5' },
        );
        const answer = JSON.parse(body) as { state?: string };
        if (status !== 200 || answer.state !== 'completed') throw new Error(`wait call answered ${status} ${answer.state}`);
      };
      // Every call's parameters are new (no cache hit) until the cached pass; the warm-up's come from below.
      const offset = 10_000_000 + Math.floor(Math.random() * 1_000_000);
      const base = await baselineWorker('bench-wait', 'evaluate');
      const events = new QueueEvents('bench-wait', { connection: { url: redisUrl }, prefix: basePrefix });
      await events.waitUntilReady();
      const rawCall = async (x: number) => {
        const job = await base.queue.add('invoke', { expression: 'x * y', parameters: { x, y: 11 } }, { removeOnComplete: { age: 60 } });
        await job.waitUntilFinished(events, 5000);
      };
      // The same call through a bare HTTP server that keeps the platform's promises and nothing more (a row
      // before the add, the stored outcome row as the answer): what those promises cost on this machine.
      const durable = await baselineWorker('bench-wait-durable', 'notify');
      const durableBare = await bareServer('bench-wait-durable', basePort + 6);
      const durableCall = async (x: number) => {
        const { status, body } = await postJson(connection, `http://127.0.0.1:${basePort + 6}/wait`, { parameters: { x, y: 11 } }, {});
        const answer = JSON.parse(body) as { state?: string };
        if (status !== 200 || answer.state !== 'completed') throw new Error(`durable wait call answered ${status} ${answer.state}`);
      };
      await settlePlatform();
      // At rest: what an earlier scenario left behind (autovacuum of its rows, a trim pass) is not measured here.
      log(`wait-latency: waited ${await settle()} ms for a quiet machine`);
      // What each process burns with nothing to do (ms of CPU a second): on two cores it is taken from the calls.
      const idleSeconds = quick ? 3 : 10;
      const idle = await cpuBreakdown(cpuGroups, () => new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000)));
      const idleCpuMsPerSecond = Object.fromEntries(
        Object.entries(idle.cpu).map(([name, seconds]) => [name, round((seconds / idleSeconds) * 1000, 1)]),
      );
      log(`wait-latency: idle CPU, ms a second: ${JSON.stringify(idleCpuMsPerSecond)}`);
      // Both sides in turns of `block` calls, warm-up and measured run alike: on a shared machine whatever
      // else runs meanwhile then weighs on both sides alike, not on whichever happened to run during it.
      const block = 10;
      const platformLatencies: number[] = [];
      const baselineLatencies: number[] = [];
      const durableLatencies: number[] = [];
      const timed = async (calls: number, first: number, one: (x: number) => Promise<void>, into: number[] | null) => {
        for (let x = first; x < first + calls; x++) {
          const started = performance.now();
          await one(x);
          into?.push(performance.now() - started);
        }
      };
      const warmUpUntil = performance.now() + warmUpSecondsEach * 2 * 1000;
      let warmUpCallsEach = 0;
      while (warmUpCallsEach < warmUpCalls || performance.now() < warmUpUntil) {
        warmUpCallsEach += block;
        await timed(block, offset - warmUpCallsEach, call, null);
        await timed(block, offset - warmUpCallsEach, rawCall, null);
        await timed(block, offset - warmUpCallsEach, durableCall, null);
      }
      // CPU per call of each process on each side, summed over the measured blocks (a /proc read between blocks).
      const platformCpu: Record<string, number> = {};
      const baselineCpu: Record<string, number> = {};
      const baselineCpuGroups = {
        worker: () => cpuSeconds(base.child.process.pid),
        redis: cpuGroups.redis,
        bench: cpuGroups.bench,
      };
      const addCpu = (into: Record<string, number>, cpu: Record<string, number>) => {
        for (const [name, seconds] of Object.entries(cpu)) into[name] = (into[name] ?? 0) + seconds;
      };
      // Redis commands per call of each side, likewise (INFO commandstats between blocks).
      const platformRedis: RedisActivity = { calls: {}, cpuSeconds: 0 };
      const baselineRedis: RedisActivity = { calls: {}, cpuSeconds: 0 };
      const durableRedis: RedisActivity = { calls: {}, cpuSeconds: 0 };
      const durableCpu: Record<string, number> = {};
      const durableCpuGroups = {
        server: () => cpuSeconds(durableBare.process.pid),
        worker: () => cpuSeconds(durable.child.process.pid),
        postgres: cpuGroups.postgres,
        redis: cpuGroups.redis,
        bench: cpuGroups.bench,
      };
      const measured = async (
        groups: Record<string, () => number>,
        cpuInto: Record<string, number>,
        redisInto: RedisActivity,
        run: () => Promise<void>,
      ) => {
        const before = await redisActivity(redis);
        addCpu(cpuInto, (await cpuBreakdown(groups, run)).cpu);
        const after = await redisActivity(redis);
        for (const [name, calls] of Object.entries(after.calls))
          redisInto.calls[name] = (redisInto.calls[name] ?? 0) + calls - (before.calls[name] ?? 0);
        // The INFO read itself.
        redisInto.calls.info = (redisInto.calls.info ?? 0) - 1;
        redisInto.cpuSeconds += after.cpuSeconds - before.cpuSeconds;
      };
      for (let i = 0; i < n; i += block) {
        const calls = Math.min(block, n - i);
        await measured(cpuGroups, platformCpu, platformRedis, () => timed(calls, offset + i, call, platformLatencies));
        await measured(baselineCpuGroups, baselineCpu, baselineRedis, () => timed(calls, offset + i, rawCall, baselineLatencies));
        await measured(durableCpuGroups, durableCpu, durableRedis, () => timed(calls, offset + i, durableCall, durableLatencies));
      }
      // What the measured blocks added up to, per call (harness.ts `redisCostPerJob`, from nothing to their sum).
      const redisPerCall = (activity: RedisActivity) => redisCostPerJob({ calls: {}, cpuSeconds: 0 }, activity, n);
      const microsecondsPerCall = (cpu: Record<string, number>) =>
        Object.fromEntries(Object.entries(cpu).map(([name, seconds]) => [name, Math.round((seconds / n) * 1e6)]));
      await events.close();
      await base.child.stop();
      await base.queue.obliterate({ force: true });
      await durableBare.stop();
      await durable.child.stop();
      await durable.queue.obliterate({ force: true });
      // The same calls again: now every one is answered from the invocation cache.
      const cachedLatencies: number[] = [];
      await timed(n, offset, call, cachedLatencies);
      connection.destroy();
      cachedLatencies.sort((a, b) => a - b);
      platformLatencies.sort((a, b) => a - b);
      baselineLatencies.sort((a, b) => a - b);
      durableLatencies.sort((a, b) => a - b);
      const durableP50 = percentile(durableLatencies, 50);
      const durableP99 = percentile(durableLatencies, 99);
      const p50 = percentile(platformLatencies, 50);
      const p99 = percentile(platformLatencies, 99);
      const baseP50 = percentile(baselineLatencies, 50);
      const baseP99 = percentile(baselineLatencies, 99);
      const p50Ratio = round(p50 / baseP50, 3);
      const p99Ratio = round(p99 / baseP99, 3);
      log(`wait-latency: p50 ${p50} ms vs raw ${baseP50} ms (${p50Ratio}x); p99 ${p99} ms vs raw ${baseP99} ms (${p99Ratio}x)`);
      log(
        `wait-latency: bare HTTP + row + BullMQ + stored outcome: p50 ${durableP50} ms (${round(durableP50 / baseP50, 3)}x raw), p99 ${durableP99} ms; the platform is ${round(p50 / durableP50, 3)}x its p50`,
      );
      // Where a call's milliseconds go, through a second API with SERVER_TIMING on (ops/bench/wait-stages.ts).
      const stages = await measureWaitStages(
        {
          platformEnv,
          port: basePort + 4,
          redis,
          queuePrefix: prefix,
          key,
          substrateId,
          warmUp: quick ? 300 : 1000,
          calls: quick ? 200 : 500,
          offset: offset + 2 * n,
        },
        log,
      );
      report({
        scenario: 'wait-latency',
        n,
        unit: 'ms p50',
        platform: p50,
        baseline: baseP50,
        ratio: p50Ratio,
        target: 'p50 <= 2x raw; p99 <= 3x raw',
        met: p50 / baseP50 <= 2 && p99 / baseP99 <= 3,
        details: {
          p50_ratio: p50Ratio,
          p99_ratio: p99Ratio,
          platform_p99_ms: p99,
          baseline_p99_ms: baseP99,
          platform_p90_ms: percentile(platformLatencies, 90),
          baseline_p90_ms: percentile(baselineLatencies, 90),
          cached_p50_ms: percentile(cachedLatencies, 50),
          cached_p99_ms: percentile(cachedLatencies, 99),
          durable_baseline_p50_ms: durableP50,
          durable_baseline_p99_ms: durableP99,
          durable_baseline_p50_ratio: round(durableP50 / baseP50, 3),
          p50_over_durable_baseline: round(p50 / durableP50, 3),
          durable_baseline_cpu_us_per_call: microsecondsPerCall(durableCpu),
          durable_baseline_redis_commands_per_call: redisPerCall(durableRedis),
          cpu_us_per_call: microsecondsPerCall(platformCpu),
          idle_cpu_ms_per_s: idleCpuMsPerSecond,
          redis_commands_per_call: redisPerCall(platformRedis),
          baseline_redis_commands_per_call: redisPerCall(baselineRedis),
          baseline_cpu_us_per_call: microsecondsPerCall(baselineCpu),
          warm_up_calls_each: warmUpCallsEach,
          stages,
        },
      });
    }

    if (wanted('request-latency')) {
      log('request-latency: sequential and at 64 connections, beside a bare node:http server');
      report(
        await runRequestLatency({
          platformEnv,
          port: basePort + 1,
          barePort: basePort + 2,
          redis,
          queuePrefix: prefix,
          setTier: async (id, tier) => void (await db.query('update service_instances set tier = $2 where customer_id = $1', [id, tier])),
          pauseWorker: async () => void (await Promise.all(invokeQueues.map((queue) => queue.pause()))),
          resumeWorker: async () => void (await Promise.all(invokeQueues.map((queue) => queue.resume()))),
          sequential: quick ? 500 : 2000,
          concurrent: quick ? 2000 : 10_000,
          log,
        }),
      );
    }

    if (wanted('batch-10k')) {
      const n = 10_000;
      log('batch-10k: one batch of 10,000 vs 10,000 raw BullMQ jobs');
      const invocations = Array.from({ length: n }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 13 } }));
      await settlePlatform();
      const started = performance.now();
      const response = await fetch(`${api}/batches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', prefer: 'wait=30' },
        body: JSON.stringify({ invocations }),
      });
      const batch = (await response.json()) as { id: string };
      await waitForCount(
        async () => Number((await db.query('select count(*) as n from batch_items where batch_id = $1', [batch.id])).rows[0].n),
        n,
        120_000,
      );
      const platformSeconds = (performance.now() - started) / 1000;
      const base = await baselineWorker('bench-batch', 'persist');
      await db.query('truncate bench_results');
      const baseStarted = performance.now();
      await base.queue.addBulk(
        invocations.map((item, i) => ({ name: 'invoke', data: { expression: 'x * y', parameters: { x: i, y: 13 } } })),
      );
      await waitForCount(countBaseline, n, 600_000);
      const baselineSeconds = (performance.now() - baseStarted) / 1000;
      await base.child.stop();
      await base.queue.obliterate({ force: true });
      report({
        scenario: 'batch-10k',
        n,
        unit: 's',
        platform: round(platformSeconds, 3),
        baseline: round(baselineSeconds, 3),
        ratio: round(baselineSeconds / platformSeconds, 3),
        target: '>= 2x faster than the baseline (ratio = baseline s / platform s)',
        met: baselineSeconds / platformSeconds >= 2,
      });
    }

    if (wanted('cached-invoke')) {
      const duration = quick ? 5 : 10;
      log(`cached-invoke: 64 connections for ${duration} s (after ${warmUpSeconds} s of warm-up on each side)`);
      const body = JSON.stringify({ parameters: { x: 5, y: 7 } });
      await fetch(`${api}/substrates/${substrateId}/invoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', prefer: 'wait=5' },
        body,
      });
      const cachedOptions = {
        url: `${api}/substrates/${substrateId}/invoke`,
        method: 'POST' as const,
        connections: 64,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', prefer: 'wait=5' },
        body,
      };
      await settlePlatform();
      await autocannon({ ...cachedOptions, duration: warmUpSeconds });
      const { result: platformRun, cpu } = await cpuBreakdown(cpuGroups, () => autocannon({ ...cachedOptions, duration }));
      const bare = await bareServer();
      const baseCachedOptions = {
        url: `http://127.0.0.1:${basePort}/cached`,
        method: 'POST' as const,
        connections: 64,
        headers: { 'content-type': 'application/json' },
        body,
      };
      await autocannon({ ...baseCachedOptions, duration: warmUpSeconds });
      const baseRun = await autocannon({ ...baseCachedOptions, duration });
      await bare.stop();
      const platform = platformRun['2xx'] / duration;
      const baseline = baseRun['2xx'] / duration;
      report({
        scenario: 'cached-invoke',
        n: platformRun['2xx'],
        unit: 'req/s',
        platform: round(platform),
        baseline: round(baseline),
        ratio: round(platform / baseline, 3),
        target: 'ratio >= 0.6',
        met: platform / baseline >= 0.6,
        details: {
          non_2xx: platformRun.non2xx,
          platform_p99_ms: platformRun.latency.p99,
          baseline_p99_ms: baseRun.latency.p99,
          cpu_seconds_during_load: cpu,
        },
      });
    }

    if (wanted('memory')) {
      const first = quick ? 5_000 : 20_000;
      const total = quick ? 50_000 : 200_000;
      log(`memory: after ${first} and after ${total} jobs`);
      // Each figure is the median of three readings, each after a full collection in the process:
      // memory held, not where the collector happened to be at one instant.
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
      const sample = async () => {
        const readings: Array<{ api: number; worker: number; redis: number }> = [];
        for (let i = 0; i < 3; i++) {
          await settlePlatform();
          const redisUsed = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0) / 1048576;
          readings.push({ api: rssMiB(apiChild.process.pid), worker: rssMiB(workerChild.process.pid), redis: redisUsed });
        }
        return {
          api_rss_mib: median(readings.map((r) => r.api)),
          worker_rss_mib: median(readings.map((r) => r.worker)),
          redis_used_mib: round(median(readings.map((r) => r.redis)), 1),
        };
      };
      await drain(first);
      const early = await sample();
      const steps: Array<Awaited<ReturnType<typeof sample>> & { jobs: number }> = [];
      for (let done = first; done < total; done += 50_000) {
        await drain(Math.min(50_000, total - done));
        steps.push({ jobs: Math.min(done + 50_000, total), ...(await sample()) });
      }
      const late = await sample();
      const growth = (key: keyof typeof early) => round((late[key] - early[key]) / early[key], 3);
      const worst = Math.max(growth('api_rss_mib'), growth('worker_rss_mib'), growth('redis_used_mib'));
      report({
        scenario: 'memory',
        n: total,
        unit: 'growth (fraction)',
        platform: worst,
        baseline: null,
        ratio: null,
        target: 'growth <= 0.15',
        met: worst <= 0.15,
        details: {
          [`after_${first}`]: early,
          [`after_${total}`]: late,
          steps,
          growth: { api: growth('api_rss_mib'), worker: growth('worker_rss_mib'), redis: growth('redis_used_mib') },
        },
      });
    }

    if (wanted('noisy')) {
      // Last: the attacks leave work behind (webhook retries to endpoints that are gone, substrates).
      const sizes = sizesFromEnv(
        process.env,
        quick ? { scale: 0.2, windowSeconds: 12, drainSeconds: 30 } : { scale: 1, windowSeconds: 45, drainSeconds: 120 },
      );
      await settlePlatform();
      const unfinishedJobs = async () =>
        Number((await db.query(`select count(*) as n from jobs where state in ('queued', 'delayed', 'active')`)).rows[0].n);
      report(
        await runNoisy(
          { api, redis, unfinishedJobs, config: platformConfig, log: (message) => log(`noisy: ${message}`) },
          sizes,
          (attack) => console.log(JSON.stringify({ scenario: 'noisy', ...attack, versions })),
          process.env.NOISY_ATTACKS?.split(',').map((name) => name.trim()),
        ),
      );
    }

    if (wanted('bulk-submit')) {
      // POST /jobs/bulk (1,000 jobs a request, 4 requests at a time) against a raw program doing per chunk
      // what the platform must at least do: one multi-row INSERT and one addBulk. Like http-submit, the
      // invoke queues are paused while the API takes the load, then resumed and drained. Two rounds, each
      // side in turn (platform, raw, platform, raw), and the rates over both: on this kind of machine one
      // side's single round varied up to 2× from run to run (mostly the raw side's commit waits).
      const requests = quick ? 10 : 50;
      const rounds = quick ? 1 : 2;
      const chunk = 1000;
      const parallel = 4;
      log(`bulk-submit: ${rounds} × ${requests} requests of ${chunk} jobs, ${parallel} at a time, beside addBulk + INSERT`);
      const inParallel = async (count: number, one: (i: number) => Promise<unknown>) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: parallel }, async () => {
            while (next < count) await one(next++);
          }),
        );
      };
      const jobsOf = (i: number, y: number) =>
        Array.from({ length: chunk }, (_, j) => ({
          type: 'invoke',
          payload: { substrate_id: substrateId, parameters: { x: i * chunk + j, y } },
        }));
      const platformSubmit = (count: number, y: number) =>
        inParallel(count, (i) => json('POST', '/jobs/bulk', { jobs: jobsOf(i, y) }, key));
      /** Seconds `submit` took, and the CPU seconds of each process meanwhile. */
      const timed = (submit: () => Promise<void>) =>
        cpuBreakdown(cpuGroups, async () => {
          const started = performance.now();
          await submit();
          return (performance.now() - started) / 1000;
        });
      const platformRound = async (y: number) => {
        const since = new Date();
        await Promise.all(invokeQueues.map((queue) => queue.pause()));
        const measured = await timed(() => platformSubmit(requests, y));
        await Promise.all(invokeQueues.map((queue) => queue.resume()));
        await waitUntil(async () => (await countFinished(since)) >= requests * chunk, 600_000, 200);
        return measured;
      };

      await db.query(
        'create table bench_bulk (id uuid primary key, customer_id text not null, type text not null, payload jsonb not null, state text not null, created_at timestamptz not null default now())',
      );
      const rawQueue = new Queue('bench-bulk', { connection: redis, prefix: basePrefix });
      const rawSubmit = (count: number, y: number) =>
        inParallel(count, async (i) => {
          const jobs = jobsOf(i, y).map((job) => ({ id: randomUUID(), ...job }));
          await db.query(
            `insert into bench_bulk (id, customer_id, type, payload, state) select id, $1, type, payload, 'queued'
               from jsonb_to_recordset($2::jsonb) as t(id uuid, type text, payload jsonb)`,
            [customerId, JSON.stringify(jobs)],
          );
          await rawQueue.addBulk(jobs.map((job) => ({ name: job.type, data: job.payload, opts: { jobId: job.id } })));
        });

      await settlePlatform();
      const warmSince = new Date();
      await platformSubmit(parallel, 20_000);
      await waitUntil(async () => (await countFinished(warmSince)) >= parallel * chunk, 600_000, 100);
      await rawSubmit(parallel, 0);
      const platformRounds: Array<Awaited<ReturnType<typeof timed>>> = [];
      const rawRounds: Array<Awaited<ReturnType<typeof timed>>> = [];
      for (let turn = 0; turn < rounds; turn++) {
        platformRounds.push(await platformRound(20_001 + turn));
        rawRounds.push(await timed(() => rawSubmit(requests, 1 + turn)));
      }
      await rawQueue.obliterate({ force: true });
      await rawQueue.close();
      const totalSeconds = (list: Array<{ result: number }>) => list.reduce((sum, { result }) => sum + result, 0);
      const cpuTotals = (list: Array<{ cpu: Record<string, number> }>) => {
        const totals: Record<string, number> = {};
        for (const { cpu } of list) for (const [name, seconds] of Object.entries(cpu)) totals[name] = round((totals[name] ?? 0) + seconds);
        return totals;
      };
      const platformSeconds = totalSeconds(platformRounds);
      const baselineSeconds = totalSeconds(rawRounds);
      const platform = (rounds * requests * chunk) / platformSeconds;
      const baseline = (rounds * requests * chunk) / baselineSeconds;
      report({
        scenario: 'bulk-submit',
        n: rounds * requests * chunk,
        unit: 'jobs/s',
        platform: round(platform),
        baseline: round(baseline),
        ratio: round(platform / baseline, 3),
        target: 'ratio >= 0.5',
        met: platform / baseline >= 0.5,
        details: {
          fair_sharing: platformFair !== null,
          rounds,
          platform_seconds: round(platformSeconds, 3),
          baseline_seconds: round(baselineSeconds, 3),
          ratio_per_round: platformRounds.map((each, i) => round(rawRounds[i]!.result / each.result, 3)),
          cpu_seconds_during_platform_run: cpuTotals(platformRounds),
          cpu_seconds_during_baseline_run: cpuTotals(rawRounds),
        },
      });
    }

    if (history > 0) {
      const { results: historyResults, sizes } = await runHistory({
        rows: history,
        quick,
        api,
        db,
        orm,
        redis,
        queuePrefix: prefix,
        queues: platformQueues,
        fair: platformFair,
        config: platformConfig,
        cache,
        customer: { customerId, key, substrateId },
        settle: settlePlatform,
        drain,
        submit: singleNodeSubmit,
        log,
      });
      for (const result of historyResults) report(result);
      console.log(JSON.stringify({ ...sizes, versions }));
    }

    if (wanted('fairness')) {
      // Last: it stops the run's API and worker, and starts a pair per FAIR_SHARING mode instead.
      await apiChild.stop();
      await workerChild.stop();
      report(
        await runFairness({
          platformEnv,
          prefixOf: fairnessPrefixOf,
          apiPort,
          db,
          redis,
          backlog: quick ? 4000 : 40_000,
          workerProcesses: fairWorkers,
          rounds: quick ? 1 : fairRounds,
          newDatabase: async (suffix) => {
            const name = `${database}_${suffix}`;
            const url = await createMigratedDatabase(admin, adminUrl, name);
            const pool = new pg.Pool({ connectionString: url, max: 4 });
            pool.on('error', () => undefined);
            return {
              url,
              db: pool,
              drop: async () => {
                await pool.end();
                await admin.query(`drop database if exists ${name} with (force)`).catch(() => undefined);
              },
            };
          },
          log,
        }),
      );
    }

    await platformQueues.close();
    await unbundledQueues.close();
  } finally {
    for (const child of children.reverse()) await child.stop();
    // Leave the shared Redis as we found it: every key under this run's prefixes goes.
    await deleteKeys(redis, [`${prefix}:*`, `${basePrefix}:*`, `${fairnessPrefixOf(true)}:*`, `${fairnessPrefixOf(false)}:*`]);
    await orm.close();
    await db.end();
    await redis.quit();
    await admin.query(`drop database if exists ${database} with (force)`).catch(() => undefined);
    await admin.end();
    await services.stop();
  }

  console.log('\nscenario        platform        baseline        ratio    target                                   met');
  for (const r of results) {
    console.log(
      `${r.scenario.padEnd(15)} ${`${r.platform} ${r.unit}`.padEnd(15)} ${String(r.baseline ?? '—').padEnd(15)} ${String(r.ratio ?? '—').padEnd(8)} ${r.target.padEnd(40)} ${r.met ? 'yes' : 'NO'}`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
