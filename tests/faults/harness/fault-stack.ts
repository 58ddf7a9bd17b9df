import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { inject } from 'vitest';
import { getJobDefinition } from '../../../jobs/registry.js';
import { queueName, shardOf } from '../../../queue/queue-names.js';
import { heartbeatIndexKey } from '../../../queue/worker-heartbeats.js';
import { registerUser, type TestUser } from '../../helpers/accounts.js';
import { httpClient, waitFor, type HttpResponse } from '../../helpers/http.js';
import { startLocalRedisCluster, type LocalRedisCluster, type LocalRedisClusterOptions } from '../../helpers/redis-cluster.js';
import { ChrysalisProcess } from './chrysalis-process.js';
import { freePort } from '../../../ops/local-services.js';
import { FaultPostgres } from './postgres-server.js';
import { FaultRedis } from './redis-server.js';

export interface FaultStackOptions {
  /** Extra environment for every process (lock settings, concurrency…). */
  env?: Record<string, string>;
  /**
   * Run on a Redis Cluster of the stack's own instead of one redis-server: every process gets
   * REDIS_CLUSTER_NODES (and the default 16 queue shards). `masters` defaults to 3.
   */
  cluster?: LocalRedisClusterOptions & { masters?: number };
}

export interface JobRow {
  id: string;
  type: string;
  state: string;
  payload: unknown;
  result: unknown;
  error: string | null;
  attempts_made: number;
  max_attempts: number;
  finished_at: Date | null;
}

/**
 * One Chrysalis as production runs it, with every part killable: the suite's own redis-server and
 * PostgreSQL, a real API process and as many real worker processes as a scenario starts. Each stack has
 * its own database (cloned from the migrated template) and its own BullMQ prefix.
 */
export class FaultStack {
  readonly workers: ChrysalisProcess[] = [];
  readonly request: ReturnType<typeof httpClient>;
  user!: TestUser;
  api!: ChrysalisProcess;
  private readonly pool: pg.Pool;
  /** A plain client (a cluster client on a cluster) for looking at BullMQ's keys from outside (only while Redis runs). */
  readonly inspector: Redis | Cluster;
  private workerCount = 0;

  private constructor(
    private readonly redisBackend: FaultRedis | LocalRedisCluster,
    readonly postgres: FaultPostgres,
    readonly databaseUrl: string,
    readonly prefix: string,
    readonly baseUrl: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly runDir: string,
  ) {
    this.request = httpClient(baseUrl);
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 3, connectionTimeoutMillis: 2000 });
    // The scenarios stop PostgreSQL under this pool on purpose.
    this.pool.on('error', () => undefined);
    this.inspector =
      redisBackend instanceof FaultRedis
        ? new Redis(redisBackend.url, { maxRetriesPerRequest: 1, retryStrategy: () => 200 })
        : new Cluster(
            redisBackend.ports.map((port) => ({ host: '127.0.0.1', port })),
            { clusterRetryStrategy: () => 200, retryDelayOnClusterDown: 300, redisOptions: { maxRetriesPerRequest: 1 } },
          );
    this.inspector.on('error', () => undefined);
  }

  /** The bearer token of the API's `/api/v1/metrics`. */
  get metricsToken(): string {
    return this.env.METRICS_TOKEN as string;
  }

  /** The stack's redis-server (a single-node stack only). */
  get redis(): FaultRedis {
    if (!(this.redisBackend instanceof FaultRedis)) throw new Error('this stack runs on a Redis Cluster: use stack.cluster');
    return this.redisBackend;
  }

  /** The stack's Redis Cluster (a stack started with `cluster`). */
  get cluster(): LocalRedisCluster {
    if (this.redisBackend instanceof FaultRedis) throw new Error('this stack runs on one redis-server: use stack.redis');
    return this.redisBackend;
  }

  static async start(options: FaultStackOptions = {}): Promise<FaultStack> {
    const suffix = randomBytes(4).toString('hex');
    const runDir = path.join(inject('faultsDataDir'), 'runs', suffix);
    fs.mkdirSync(runDir, { recursive: true });
    const redis = options.cluster
      ? await startLocalRedisCluster(options.cluster.masters ?? 3, options.cluster)
      : await FaultRedis.start(path.join(runDir, 'redis'));
    const postgres = new FaultPostgres(inject('faultsDataDir'));
    const databaseUrl = await postgres.createDatabase(`faults_${suffix}`, inject('faultsTemplateDatabase'));
    const port = await freePort();
    const prefix = `f-${suffix}`;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'test',
      DATA_DIR: runDir,
      DATABASE_URL: databaseUrl,
      ...(redis instanceof FaultRedis ? { REDIS_URL: redis.url } : { REDIS_CLUSTER_NODES: redis.nodes }),
      PORT: String(port),
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      JWT_SECRET: randomBytes(32).toString('hex'),
      METRICS_TOKEN: randomBytes(24).toString('hex'),
      VAULT_KEY: randomBytes(32).toString('hex'),
      ADMIN_EMAIL: 'admin@faults.test',
      ADMIN_PASSWORD: 'faults-admin-password',
      SWEEPER_INTERVAL_MS: '1000',
      WORKER_METRICS_PORT: '0',
      PLATFORM_SCHEDULES: 'false',
      PISCINA_THREADS: '1',
      WORKER_CONCURRENCY: '8',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      SHUTDOWN_TIMEOUT_MS: '2000',
      // The scenarios measure durability, not rate limiting.
      RATE_LIMIT_MULTIPLIER: '1000',
      RATE_LIMIT_REGISTER_PER_MIN: '1000',
      RATE_LIMIT_LOGIN_PER_MIN: '1000',
      // Likewise the per-customer caps: the scenarios fire hundreds of concurrent submits as one starter.
      TIER_MAX_IN_FLIGHT: 'starter=100000,pro=100000,enterprise=100000',
      TIER_MAX_STREAMS: 'starter=100000,pro=100000,enterprise=100000',
      TIER_MAX_BULK_IN_FLIGHT: 'starter=100000,pro=100000,enterprise=100000',
      TIER_MAX_QUEUED: 'starter=1000000,pro=1000000,enterprise=1000000',
      TIER_MAX_ACTIVE: 'starter=100000,pro=100000,enterprise=100000',
      ...options.env,
    };
    const stack = new FaultStack(redis, postgres, databaseUrl, prefix, `http://127.0.0.1:${port}`, env, runDir);
    stack.api = new ChrysalisProcess('api', 'api', env, path.join(runDir, 'api.log'));
    await waitFor(async () => (await stack.request('GET', '/api/v1/health').catch(() => null))?.status === 200, 60_000, 100).catch(
      (error: unknown) => {
        throw new Error(`the API did not start: ${String(error)}\n${stack.api.tail()}`);
      },
    );
    stack.user = await registerUser(stack.request);
    return stack;
  }

  /** Starts a worker process; resolves once its heartbeat is in Redis (its BullMQ workers are running). */
  async startWorker(env: Record<string, string> = {}): Promise<ChrysalisProcess> {
    const name = `worker-${++this.workerCount}`;
    const worker = new ChrysalisProcess('worker', name, { ...this.env, ...env }, path.join(this.runDir, `${name}.log`));
    this.workers.push(worker);
    const member = `${hostname()}-${worker.pid}`;
    await waitFor(
      async () => {
        if (!worker.alive) throw new Error(`${name} exited (${worker.exitStatus})`);
        return (await this.inspector.zscore(heartbeatIndexKey(this.prefix), member)) !== null;
      },
      60_000,
      100,
    ).catch((error: unknown) => {
      throw new Error(`${name} did not start: ${String(error)}\n${worker.tail()}`);
    });
    return worker;
  }

  /** Raw SQL against this stack's database (not while PostgreSQL is stopped). */
  async sql<Row = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.pool.query(text, params)).rows as Row[];
  }

  /** Creates a substrate as the stack's user; returns its id. */
  async substrate(
    body: { expression_type: 'constant'; value: number } | { expression_type: 'expression'; expression: string },
  ): Promise<string> {
    const created = await this.request('POST', '/api/v1/substrates', { token: this.user.accessToken, body });
    if (created.status !== 201 && created.status !== 200) throw new Error(`substrate not created: ${created.status} ${created.text}`);
    return created.body.substrate_id as string;
  }

  /** POST /jobs as the stack's user. */
  submit(type: string, payload: unknown, headers: Record<string, string> = {}): Promise<HttpResponse> {
    return this.request('POST', '/api/v1/jobs', { token: this.user.accessToken, body: { type, payload }, headers });
  }

  async jobRows(ids: string[]): Promise<JobRow[]> {
    return this.sql<JobRow>(
      `select id, type, state, payload, result, error, attempts_made, max_attempts, finished_at from jobs where id = any($1::uuid[])`,
      [ids],
    );
  }

  /** Waits until every one of these jobs is final in PostgreSQL; returns their rows. */
  async waitUntilFinal(ids: string[], timeoutMs: number): Promise<JobRow[]> {
    return waitFor(
      async () => {
        const rows = await this.jobRows(ids);
        return rows.length === ids.length && rows.every((row) => ['completed', 'failed', 'cancelled'].includes(row.state)) ? rows : null;
      },
      timeoutMs,
      250,
    ).catch(async (error: unknown) => {
      const rows = await this.jobRows(ids).catch(() => []);
      const states = rows.reduce<Record<string, number>>((acc, row) => ((acc[row.state] = (acc[row.state] ?? 0) + 1), acc), {});
      throw new Error(
        `${ids.length} jobs not all final: ${JSON.stringify(states)} (${ids.length - rows.length} rows missing): ${String(error)}`,
      );
    });
  }

  // BullMQ's keys, read from outside (`<prefix>:<queue>:<id>`, `…:active`, `…:completed`), where a sharded
  // type's queues are `{invoke.0}` … and a job lives on the shard its id names (queue/queue-names.ts).

  /** How many queues a sharded type has in this stack (QUEUE_SHARDS, default 1, 16 on a cluster: config.ts). */
  private get shards(): number {
    return Number(this.env.QUEUE_SHARDS ?? (this.env.REDIS_CLUSTER_NODES ? 16 : 1));
  }

  /** Every queue name of `type`. */
  queueNames(type: string): string[] {
    if (!getJobDefinition(type)?.queue.sharded) return [queueName(type, null)];
    return Array.from({ length: this.shards }, (_, shard) => queueName(type, shard));
  }

  /** The queue name job `id` of `type` lives on. */
  queueOf(type: string, id: string): string {
    return getJobDefinition(type)?.queue.sharded ? queueName(type, shardOf(id, this.shards)) : queueName(type, null);
  }

  bullJobKey(type: string, id: string): string {
    return `${this.prefix}:${this.queueOf(type, id)}:${id}`;
  }

  /** Ids active in BullMQ over every queue of `type` (one LRANGE per queue: no command spans queues). */
  async bullActive(type: string): Promise<string[]> {
    const perQueue = await Promise.all(this.queueNames(type).map((name) => this.inspector.lrange(`${this.prefix}:${name}:active`, 0, -1)));
    return perQueue.flat();
  }

  async bullCompleted(type: string): Promise<string[]> {
    const perQueue = await Promise.all(
      this.queueNames(type).map((name) => this.inspector.zrange(`${this.prefix}:${name}:completed`, '0', '-1')),
    );
    return perQueue.flat();
  }

  /** Whether job `id` of `type` is in its queue's failed set. */
  async bullFailed(type: string, id: string): Promise<boolean> {
    return (await this.inspector.zscore(`${this.prefix}:${this.queueOf(type, id)}:failed`, id)) !== null;
  }

  /** Every BullMQ job hash in Redis under this stack's prefix (keys ending in a job id), from every master. */
  async bullJobKeys(): Promise<string[]> {
    const keys: string[] = [];
    const nodes = this.inspector instanceof Cluster ? this.inspector.nodes('master') : [this.inspector];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', '1000');
        cursor = next;
        keys.push(...batch.filter((key) => /:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(key)));
      } while (cursor !== '0');
    }
    return keys;
  }

  /** Logs of every process, for a failing scenario. */
  logs(): string {
    return [this.api, ...this.workers]
      .map((p) => `--- ${p.name} (pid ${p.pid}, ${p.exitStatus ?? 'running'}) ${p.logFile}\n${p.tail(40)}`)
      .join('\n');
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers, this.api].filter(Boolean).map((p) => p.kill()));
    this.inspector.disconnect();
    await this.pool.end().catch(() => undefined);
    if (this.redisBackend instanceof FaultRedis) await this.redisBackend.kill();
    else await this.redisBackend.stop();
    await this.postgres.stop();
  }
}
