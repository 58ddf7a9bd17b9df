import path from 'node:path';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../config.js';
import { createApp } from '../../api/app.js';
import { createApiServer } from '../../api/http-server.js';
import { createApiDeps } from '../../api/create-deps.js';
import { ensureAdmin } from '../../api/auth/bootstrap-admin.js';
import type { ApiDeps } from '../../api/deps.js';
import { createLogger } from '../../lib/logger.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { createRedis } from '../../lib/redis.js';
import { deleteKeys } from './redis-cluster.js';
import { runWorkers, type RunningWorkers } from '../../workers/run-workers.js';

export interface TestApp {
  baseUrl: string;
  config: Config;
  deps: ApiDeps;
  /** Raw SQL against this file's own database. */
  sql<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>;
  /** Starts in-process workers on this file's queues (once). */
  startWorkers(overrides?: Partial<Config>): Promise<RunningWorkers>;
  /** Stops the in-process workers (a worker process going away); `startWorkers` then starts new ones. */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

/**
 * One step of closing a test app. A step still running after `reportAfterMs` is named on stderr and left
 * behind, so a stuck close says where it is stuck and does not end the file in a hook timeout (CI once
 * lost a run of 787 passed tests to an afterAll that hung for 120 s without a word).
 */
async function closeStep(step: string | (() => string), work: () => Promise<unknown>, reportAfterMs = 45_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), reportAfterMs)));
  try {
    if ((await Promise.race([work(), stuck])) === 'stuck') {
      const name = typeof step === 'string' ? step : step();
      console.error(`test app close: "${name}" still running after ${reportAfterMs} ms; going on without it`);
    }
  } finally {
    clearTimeout(timer);
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * An isolated Chrysalis for one test file: its own database cloned from the migrated template, its own
 * BullMQ key prefix, the API on port 0 and (on request) workers in this process.
 */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const suffix = randomBytes(5).toString('hex');
  const database = `chrysalis_t_${suffix}`;
  const adminUrl = inject('adminDatabaseUrl');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(`create database ${database} template ${inject('templateDatabase')}`);
      break;
    } catch (error) {
      // Two files cloning the template at the same instant: PostgreSQL refuses one; try again.
      if (attempt >= 20 || !/being accessed by other users/.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
  await admin.end();

  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: '.data/test',
    DATABASE_URL: withDatabase(adminUrl, database),
    REDIS_URL: inject('redisUrl'),
    // TEST_REDIS_CLUSTER=1 (global-setup): the run's local Redis Cluster instead (and its default 16 queue shards),
    // unless the test names a Redis of its own (a private redis-server it kills, say).
    ...(inject('redisClusterNodes') && !env.REDIS_URL ? { REDIS_CLUSTER_NODES: inject('redisClusterNodes') } : {}),
    QUEUE_PREFIX: `t-${suffix}`,
    ADMIN_EMAIL: 'admin@example.test',
    ADMIN_PASSWORD: 'admin-password-123',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PISCINA_THREADS: '2',
    WORKER_CONCURRENCY: '16',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    // Tests start the API without workers and make many calls from 127.0.0.1; tests/ops sets the real values.
    READY_REQUIRES_WORKER: 'false',
    PLATFORM_SCHEDULES: 'false',
    VAULT_PATH: path.join(tmpdir(), `chrysalis-vault-${suffix}.csv`),
    RATE_LIMIT_MULTIPLIER: '1000',
    RATE_LIMIT_REGISTER_PER_MIN: '100000',
    RATE_LIMIT_LOGIN_PER_MIN: '100000',
    RATE_LIMIT_KEY_LOOKUPS_PER_MIN: '100000',
    RATE_LIMIT_REFRESH_PER_MIN: '100000',
    // As with the rate limits: tests fire bursts as one customer; tests/isolation/concurrency-limits and bulk-write-limits set real figures.
    TIER_MAX_IN_FLIGHT: 'starter=100000,pro=100000,enterprise=100000',
    TIER_MAX_STREAMS: 'starter=100000,pro=100000,enterprise=100000',
    TIER_MAX_BULK_IN_FLIGHT: 'starter=100000,pro=100000,enterprise=100000',
    // Likewise admission (tests/jobs/admission sets real figures): its counts are cached up to 1 s with the jobs
    // admitted meanwhile added, so on one Redis, where bulk-submit's 1,000 jobs finish within that second, its next
    // tests were refused 429 too-many-jobs (`at least 1000 queued`; PostgreSQL held none).
    TIER_MAX_QUEUED: 'starter=100000,pro=100000,enterprise=100000',
    // bcrypt at cost 4 (~1 ms, not ~220 ms): every test app hashes its admin and users; tests/auth/password-pool sets 12.
    // Production refuses below 10 (a NODE_ENV=production test app gets the lowest it accepts).
    PASSWORD_HASH_COST: env.NODE_ENV === 'production' ? '10' : '4',
    ...env,
  });
  const logger = createLogger(config.logLevel, 'test');
  const deps = await createApiDeps(config, logger);
  await ensureAdmin(deps);
  const server: Server = createApiServer(createApp(deps), config).listen(0);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;

  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 2 });
  // pool.end() resolves before its sockets close; the forced DROP DATABASE below may end one mid-close.
  pool.on('error', () => undefined);
  let workers: RunningWorkers | null = null;
  let workerOrm: Orm | null = null;
  const stopWorkers = async () => {
    await workers?.close();
    await workerOrm?.close();
    workers = null;
    workerOrm = null;
  };

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    config,
    deps,
    async sql<Row>(text: string, params: unknown[] = []) {
      return (await pool.query(text, params)).rows as Row[];
    },
    async startWorkers(overrides = {}) {
      if (workers) return workers;
      workerOrm = await createOrm(config.databaseUrl);
      workers = await runWorkers({ config: { ...config, ...overrides }, orm: workerOrm, logger });
      return workers;
    },
    stopWorkers,
    async close() {
      await closeStep(() => (workers?.closingStep ? `workers: ${workers.closingStep}` : 'workers'), stopWorkers);
      server.closeAllConnections();
      await closeStep('http server', () => new Promise((resolve) => server.close(resolve)));
      await closeStep('api connections', () => deps.close());
      await closeStep('sql pool', () => pool.end());
      await closeStep('redis keys', async () => {
        const redis = createRedis(config.redis);
        await deleteKeys(redis, `${config.queuePrefix}:*`);
        await redis.quit();
      });
      await closeStep('database', async () => {
        const cleanup = new pg.Client({ connectionString: adminUrl });
        await cleanup.connect();
        await cleanup.query(`drop database if exists ${database} with (force)`);
        await cleanup.end();
      });
    },
  };
}
