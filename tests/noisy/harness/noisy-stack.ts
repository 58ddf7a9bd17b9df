import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../../config.js';
import type { NoisyPlatform } from '../../../ops/bench/noisy/run.js';
import { waitFor } from '../../helpers/http.js';
import { ChrysalisProcess } from '../../faults/harness/chrysalis-process.js';
import { freePort } from '../../../ops/local-services.js';
import { FaultRedis } from '../../faults/harness/redis-server.js';

/** The suite's redis-server is capped like a production one (`noeviction`), so filling it shows as refused writes. */
const redisMaxMemory = process.env.NOISY_REDIS_MAXMEMORY ?? '512mb';

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * One Chrysalis as production runs it: a real API process and a real worker process (so the API's event
 * loop is its own, as in a deployment), a redis-server of the suite's own with a `maxmemory` (so its
 * memory figures are this instance's alone) and a database cloned from the suite's migrated template.
 * Rate limits are production's (multiplier 1); only the per-address limits on register and login are
 * raised, because every customer of the suite, victim and attackers alike, calls from 127.0.0.1.
 */
export class NoisyStack implements NoisyPlatform {
  readonly redis: Redis;
  private readonly pool: pg.Pool;

  private constructor(
    readonly api: string,
    private readonly redisServer: FaultRedis,
    private readonly database: string,
    private readonly adminUrl: string,
    readonly processes: ChrysalisProcess[],
    private readonly runDir: string,
    readonly config: Config,
  ) {
    this.redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined);
    this.pool = new pg.Pool({ connectionString: withDatabase(adminUrl, database), max: 2 });
    this.pool.on('error', () => undefined);
  }

  static async start(env: Record<string, string> = {}): Promise<NoisyStack> {
    const suffix = randomBytes(4).toString('hex');
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-noisy-'));
    const redisServer = await FaultRedis.start(path.join(runDir, 'redis'), ['--maxmemory', redisMaxMemory]);
    const adminUrl = inject('adminDatabaseUrl');
    const database = `chrysalis_noisy_${suffix}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${database} template ${inject('templateDatabase')}`);
    await admin.end();
    const port = await freePort();
    const processEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'test',
      DATA_DIR: runDir,
      DATABASE_URL: withDatabase(adminUrl, database),
      REDIS_URL: redisServer.url,
      PORT: String(port),
      QUEUE_PREFIX: `n-${suffix}`,
      LOG_LEVEL: 'warn',
      JWT_SECRET: randomBytes(32).toString('hex'),
      METRICS_TOKEN: randomBytes(24).toString('hex'),
      VAULT_KEY: randomBytes(32).toString('hex'),
      VAULT_PATH: path.join(runDir, 'vault.csv'),
      ADMIN_EMAIL: 'admin@noisy.test',
      ADMIN_PASSWORD: 'noisy-admin-password',
      WORKER_METRICS_PORT: '0',
      PLATFORM_SCHEDULES: 'false',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      SHUTDOWN_TIMEOUT_MS: '2000',
      RATE_LIMIT_REGISTER_PER_MIN: '1000',
      RATE_LIMIT_LOGIN_PER_MIN: '1000',
      ...env,
    };
    const processes = [
      new ChrysalisProcess('worker', 'worker', processEnv, path.join(runDir, 'worker.log')),
      new ChrysalisProcess('api', 'api', processEnv, path.join(runDir, 'api.log')),
    ];
    const stack = new NoisyStack(
      `http://127.0.0.1:${port}/api/v1`,
      redisServer,
      database,
      adminUrl,
      processes,
      runDir,
      loadConfig(processEnv),
    );
    // /ready answers 200 once PostgreSQL and Redis answer and a worker's heartbeat is in Redis.
    await waitFor(
      async () => {
        for (const p of processes) if (!p.alive) throw new Error(`${p.name} exited (${p.exitStatus})\n${p.tail()}`);
        return (await fetch(`${stack.api}/ready`).catch(() => null))?.status === 200;
      },
      90_000,
      200,
    );
    return stack;
  }

  async unfinishedJobs(): Promise<number> {
    const rows = (await this.pool.query(`select count(*)::int as n from jobs where state in ('queued', 'delayed', 'active')`)).rows;
    return (rows[0] as { n: number }).n;
  }

  log(message: string): void {
    console.log(`[noisy] ${message}`);
  }

  /** The processes' last log lines (for a failing scenario). */
  logs(): string {
    return this.processes.map((p) => `--- ${p.name} (${p.exitStatus ?? 'running'})\n${p.tail(30)}`).join('\n');
  }

  async close(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill()));
    this.redis.disconnect();
    await this.pool.end().catch(() => undefined);
    await this.redisServer.kill();
    const admin = new pg.Client({ connectionString: this.adminUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${this.database} with (force)`);
    await admin.end();
    if (!process.env.NOISY_KEEP_DATA) fs.rmSync(this.runDir, { recursive: true, force: true });
    else console.log(`noisy suite logs kept in ${this.runDir}`);
  }
}
