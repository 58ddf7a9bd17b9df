import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/** The tiers FAIR_WEIGHTS names (db/entities/service-instance.entity.ts's Tier; config.ts imports nothing of ours). */
const fairTiers = ['starter', 'pro', 'enterprise'] as const;
export type FairWeights = Record<(typeof fairTiers)[number], number>;

/** `starter=1,pro=4,enterprise=16`: every tier once, each a positive number. */
const fairWeights = z.string().transform((value, ctx): FairWeights => {
  const weights: Partial<FairWeights> = {};
  for (const entry of value.split(',').map((part) => part.trim())) {
    const [tier, weight, extra] = entry.split('=').map((part) => part.trim());
    const number = Number(weight);
    if (
      !fairTiers.includes(tier as never) ||
      extra !== undefined ||
      weight === '' ||
      !Number.isFinite(number) ||
      number <= 0 ||
      number > 1_000_000
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not tier=weight (tiers ${fairTiers.join(', ')}; weight a positive number up to 1,000,000)`,
      });
      return z.NEVER;
    }
    if (weights[tier as keyof FairWeights] !== undefined) {
      ctx.addIssue({ code: 'custom', message: `names ${tier} twice` });
      return z.NEVER;
    }
    weights[tier as keyof FairWeights] = number;
  }
  const missing = fairTiers.filter((tier) => weights[tier] === undefined);
  if (missing.length > 0) {
    ctx.addIssue({ code: 'custom', message: `names no weight for ${missing.join(', ')}` });
    return z.NEVER;
  }
  return weights as FairWeights;
});

const hexKey = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (32 bytes)');

/** The service tiers (db/entities/service-instance.entity.ts names the same three; config.ts imports nothing of ours). */
export const configTiers = ['starter', 'pro', 'enterprise'] as const;
export type ConfigTier = (typeof configTiers)[number];
export type PerTier<T> = Record<ConfigTier, T>;

/**
 * A per-tier setting written `starter=1000,pro=20000,enterprise=100000`: a tier left out keeps its default;
 * an unknown tier, a repeated one or a value that is not a whole number ≥ `min` is refused, naming it.
 */
function perTierCounts(defaults: PerTier<number>, min = 1) {
  return z
    .string()
    .optional()
    .transform((text, ctx): PerTier<number> => {
      const values = { ...defaults };
      const seen = new Set<string>();
      for (const part of (text ?? '')
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean)) {
        const [tier, raw, ...rest] = part.split('=').map((item) => item.trim());
        if (!configTiers.includes(tier as ConfigTier) || seen.has(tier as string)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${part}": expected tier=value with a tier of ${configTiers.join(', ')}, each at most once`,
          });
          return z.NEVER;
        }
        const value = Number(raw);
        if (rest.length > 0 || !Number.isInteger(value) || value < min) {
          ctx.addIssue({ code: 'custom', message: `"${part}": the value must be a whole number ≥ ${min}` });
          return z.NEVER;
        }
        seen.add(tier as string);
        values[tier as ConfigTier] = value;
      }
      return values;
    });
}

/** Every variable Chrysalis reads, with its default. Nothing else reads `process.env`. */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** HTTP port of the API. Default 3000. */
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** PostgreSQL URL. Unset: `npm start` launches embedded PostgreSQL under DATA_DIR. */
  DATABASE_URL: z.string().url().optional(),
  /** Redis URL. Unset: 127.0.0.1:6379 if it answers, else a local redis-server under DATA_DIR. */
  REDIS_URL: z.string().url().optional(),
  /**
   * Seed nodes of a Redis Cluster, `host:port[,host:port…]`. When set every Redis connection is a cluster
   * client and REDIS_URL is not used (SPEC §9).
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return undefined;
      const nodes: RedisNodeAddress[] = [];
      for (const part of text.split(',').map((item) => item.trim())) {
        const address = parseAddress(part);
        if (!address) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not host:port (port 1–65535)` });
          return z.NEVER;
        }
        nodes.push(address);
      }
      return nodes;
    }),
  /** Cluster only: `announced-host:port=reachable-host:port[,…]`, when nodes announce addresses this process cannot reach (Docker, NAT). */
  REDIS_CLUSTER_NAT_MAP: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return undefined;
      const map: Record<string, RedisNodeAddress> = {};
      for (const part of text.split(',').map((item) => item.trim())) {
        const [from, to, extra] = part.split('=').map((item) => item.trim());
        const target = to === undefined ? null : parseAddress(to);
        if (!from || !parseAddress(from) || !target || extra !== undefined) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not announced-host:port=reachable-host:port` });
          return z.NEVER;
        }
        map[from] = target;
      }
      return map;
    }),
  /** Cluster only: connect to every node over TLS. Default false. */
  REDIS_CLUSTER_TLS: booleanString.default(false),
  /** Cluster only: ACL user and password of every node (a single Redis takes them in REDIS_URL). */
  REDIS_CLUSTER_USERNAME: z.string().min(1).optional(),
  REDIS_CLUSTER_PASSWORD: z.string().min(1).optional(),
  /**
   * Plain prefix of every Redis key (BullMQ's and ours). Default `chrysalis`. No `{`/`}`: each queue name
   * carries its own hash tag (`chrysalis:{invoke.3}:wait`), and a tag in the prefix would put every queue on one slot.
   */
  QUEUE_PREFIX: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[^{}\s]+$/, 'must be plain: no braces (each queue name carries its own hash tag) and no spaces')
    .default('chrysalis'),
  /** Queues per sharded job type (invoke, divide, batch): `{invoke.0}` … `{invoke.N-1}`. Default 1 (16 on a Redis Cluster). */
  QUEUE_SHARDS: z.coerce.number().int().min(1).max(1024).optional(),
  /** HS256 secret for access tokens (≥ 32 characters). Generated into DATA_DIR in development. */
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters'),
  /** Bootstrap admin, created on start when absent. */
  ADMIN_EMAIL: z.string().email(),
  ADMIN_PASSWORD: z.string().min(8).max(72),
  /** Current terms-of-service version; moving it makes users accept again. Default `1.0.0`. */
  TOS_VERSION: z.string().min(1).default('1.0.0'),
  /** Bearer token for GET /metrics. Generated into DATA_DIR in development. */
  METRICS_TOKEN: z.string().min(16),
  /** Where vault-export writes the API-key CSV. Default `DATA_DIR/vault.csv`. */
  VAULT_PATH: z.string().min(1).optional(),
  /** AES-256-GCM key (64 hex characters) for API-key ciphertexts and the vault CSV. */
  VAULT_KEY: hexKey,
  /** Allow webhook URLs that resolve to private, loopback or link-local addresses. Default false. */
  WEBHOOK_ALLOW_PRIVATE: booleanString.default(false),
  /** First webhook retry delay in ms; each retry doubles it (capped at 6 h, +0–20 % jitter). Default 30000. */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(30_000),
  /**
   * How often each worker process looks for pending webhook deliveries whose BullMQ job is gone or failed without
   * settling them (Redis lost it, or the sending process died twice), and gives them back to the queue, in ms. Default 60000.
   */
  WEBHOOK_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** Webhook deliveries one worker process sends at once (apart from job concurrency). Default 32. */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(32),
  /** A receiver has this long to answer a webhook delivery, in ms. Default 10000. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** Deliveries in flight at once to one endpoint (or one job's `webhook_url`), across worker processes; more wait their turn. Default 4. */
  WEBHOOK_ENDPOINT_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(4),
  /** Deliveries in flight at once for one customer, across worker processes; more wait their turn. Default 8. */
  WEBHOOK_CUSTOMER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  /** Consecutive failed deliveries (errors, non-2xx, timeouts) that open an endpoint's circuit breaker. Default 5. */
  WEBHOOK_BREAKER_FAILURES: z.coerce.number().int().min(1).max(10_000).default(5),
  /** How long an open breaker holds an endpoint's deliveries back before one trial delivery (half-open), in ms. Default 60000. */
  WEBHOOK_BREAKER_COOLDOWN_MS: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
  /** Timeout of a half-open endpoint's trial delivery, in ms. Default 2000. */
  WEBHOOK_HALF_OPEN_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  /** An endpoint failing for this long without a success is disabled, in ms. Default 86400000 (24 h). */
  WEBHOOK_DISABLE_AFTER_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(30 * 86_400_000)
    .default(86_400_000),
  /** An endpoint with this many consecutive failed deliveries is disabled (whichever comes first with the time). Default 1000. */
  WEBHOOK_DISABLE_AFTER_FAILURES: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  /**
   * Largest job result a webhook event carries inline, in bytes of JSON; a bigger one is left out (`result_omitted`,
   * `result_bytes`) and read with GET /jobs/:id, so every stored delivery stays small. Default 65536.
   */
  WEBHOOK_RESULT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(64 * 1024),
  /** Largest job result (or batch item result) stored, in bytes of JSON; a bigger one fails its job with `result_too_large`. Default 1048576 (1 MiB). */
  RESULT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /**
   * Most bytes of JSON one batch stores as its items' results; once they are spent, each further item fails with
   * `result_too_large` (its result not stored). Default 67108864 (64 MiB: 10,000 items of ~6 KiB each).
   */
  BATCH_RESULTS_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  /** Largest invocation result the invocation cache keeps, in bytes of JSON; bigger ones are computed again each time. Default 16384. */
  INVOCATION_CACHE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(16 * 1024 * 1024)
    .default(16 * 1024),
  /**
   * Redis memory one customer's invocation cache may take, in bytes (each entry counted with Redis's per-entry
   * overhead); past it, new results replace random older ones. Default 8388608 (8 MiB).
   */
  INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER: z.coerce
    .number()
    .int()
    .min(0)
    .max(1024 * 1024 * 1024)
    .default(8 * 1024 * 1024),
  /** New work is refused (503, Retry-After) while Redis `used_memory` is above this share of its `maxmemory`; 0 turns the guard off. Default 0.8. */
  REDIS_MEMORY_GUARD: z.coerce.number().min(0).max(1).default(0.8),
  /**
   * Most jobs of one bulk submit one BullMQ job carries (a bundle, queue/bundles.ts; for job types that allow
   * it: invoke). 1 carries every job alone. Default 100: a bulk of 1,000 over 16 shards is ~62 jobs a shard, so one
   * bundle each (at 50, one of 50 and one of ~12, and every bundle costs a BullMQ add, fetch and finish).
   */
  JOB_BUNDLE_SIZE: z.coerce.number().int().min(1).max(500).default(100),
  /** Jobs one worker process runs at once per queue. Default 64. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(64),
  /** Piscina threads per worker process. Default: number of cores. */
  PISCINA_THREADS: z.coerce.number().int().min(1).max(256).default(Math.max(1, cpus().length)),
  /** Piscina task timeout in ms. Default 5000. */
  TASK_TIMEOUT_MS: z.coerce.number().int().min(10).max(600_000).default(5000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Every API answer carries a `Server-Timing` header with its stages' durations, and a `Prefer: wait` job's
   * API and worker stage marks are kept a minute in Redis (lib/stage-marks.ts; the bench reads them). A diagnostic. Default false.
   */
  SERVER_TIMING: booleanString.default(false),
  /** Express `trust proxy` setting: `false`, a hop count, or a comma-separated list of addresses/subnets. Default false. */
  TRUST_PROXY: z.string().default('false'),
  /** Reads and writes per minute per customer and service are the tier's figures (starter 1,000 and 100, pro 10,000 and 1,000) times this. Default 1. */
  RATE_LIMIT_MULTIPLIER: z.coerce.number().positive().max(1_000_000).default(1),
  /** Worker threads of the API's bcrypt pool (password hashing off the event loop). Default 1. */
  PASSWORD_HASH_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  /** bcrypt cost factor of new password hashes (stored hashes keep theirs). Production refuses below 10. Default 12. */
  PASSWORD_HASH_COST: z.coerce.number().int().min(4).max(15).default(12),
  /** Password hashes that may wait for a bcrypt thread; past it register/login answer 503 with Retry-After. Default 32. */
  PASSWORD_HASH_MAX_QUEUE: z.coerce.number().int().min(0).max(100_000).default(32),
  /** Requests one customer may have in flight at once, across all API processes, by tier; past it 429. Default `starter=10,pro=50,enterprise=200`. */
  TIER_MAX_IN_FLIGHT: perTierCounts({ starter: 10, pro: 50, enterprise: 200 }),
  /** Reads (GET requests but event streams) one API process runs at once, every customer's together; the others wait in their customer's line and free places go to the customers in turn. Default 6 (of the process's 10 database connections: the rest stay for writes). */
  API_READS_AT_ONCE: z.coerce.number().int().min(1).max(1000).default(6),
  /** Reads one customer may run at once in one API process (at most API_READS_AT_ONCE). Default 4. */
  API_READS_PER_CUSTOMER: z.coerce.number().int().min(1).max(1000).default(4),
  /** Milliseconds of request work an API process does before it reads its sockets again (a burst of thousands of requests is worked through in slices; /health and /ready never wait for one). 0 turns slicing off. Default 2. */
  API_SLICE_MS: z.coerce.number().min(0).max(1000).default(2),
  /**
   * How long a client may take to send a whole request (headers and body) to the API, in ms; past it 408 and the
   * connection closes. It times the request's arrival only, never its answer (an event stream, a `Prefer: wait`).
   * Its headers get at most 20 s of it. Default 60000: room for a 16 MiB body at about 2.2 Mbit/s.
   */
  API_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** Event streams (GET /jobs/:id/events) one customer may hold open at once, across all API processes, by tier; past it 429. Default `starter=5,pro=50,enterprise=500`. */
  TIER_MAX_STREAMS: perTierCounts({ starter: 5, pro: 50, enterprise: 500 }),
  /** Bulk writes (POST /jobs/bulk, /substrates/batch, /batches: up to 16 MiB each, one database connection each for their INSERT) one customer may have in flight at once, across all API processes, by tier; past it 429. Kept well below an API process's database pool (10), so one customer's slow bulks cannot hold every connection. Default `starter=2,pro=3,enterprise=4`. */
  TIER_MAX_BULK_IN_FLIGHT: perTierCounts({ starter: 2, pro: 3, enterprise: 4 }),
  /** How long a place in those limits outlives the process holding it (leases renewed every third of it), in ms. Default 30000. */
  CONCURRENCY_LEASE_MS: z.coerce.number().int().min(300).max(600_000).default(30_000),
  /** Batch items (a batch job's invocations; any other job 1) one customer's schedules may submit per minute, by tier; a schedule that alone would exceed it is refused with 422. Default `starter=1000,pro=20000,enterprise=200000`. */
  TIER_SCHEDULE_ITEMS_PER_MIN: perTierCounts({ starter: 1000, pro: 20_000, enterprise: 200_000 }),
  /** POST /auth/register attempts per minute per client IP. Default 5. */
  RATE_LIMIT_REGISTER_PER_MIN: z.coerce.number().int().min(1).max(1_000_000).default(5),
  /** POST /auth/login attempts per minute per client IP. Default 10. */
  RATE_LIMIT_LOGIN_PER_MIN: z.coerce.number().int().min(1).max(1_000_000).default(10),
  /**
   * POST /auth/refresh and /auth/logout attempts (together) per minute per client IP. Default 60. Neither needs an
   * access token and each is a PostgreSQL transaction: unlimited, one address's flood of made-up tokens slowed every
   * customer's reads.
   */
  RATE_LIMIT_REFRESH_PER_MIN: z.coerce.number().int().min(1).max(1_000_000).default(60),
  /**
   * Lookups of API keys this API process has no answer cached for, per minute per client IP. Default 600. Each reads
   * PostgreSQL: one address's flood of made-up keys (~630 a second) made another customer's reads ~4× slower.
   */
  RATE_LIMIT_KEY_LOOKUPS_PER_MIN: z.coerce.number().int().min(1).max(1_000_000).default(600),
  /** GET /ready also requires a live worker heartbeat (and no stuck backlog). Default true. */
  READY_REQUIRES_WORKER: booleanString.default(true),
  /** Port of a worker process's own Prometheus endpoint (`GET /metrics`, same bearer token). 0 disables it. Default 9464. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /**
   * How often a worker process leaves its series in Redis for the API's `GET /metrics`, in ms (the API shows a
   * snapshot up to three times this old). 0: not at all (scrape each worker's own port instead). Default 5000.
   */
  WORKER_METRICS_PUBLISH_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
  /** On SIGTERM/SIGINT, how long in-flight requests (API) or active jobs (workers) may run before they are cut off or handed back to the queue, in ms. Default 20000. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(25_000).default(20_000),
  /**
   * How often a worker checks PostgreSQL for accepted jobs Redis no longer holds, in ms. Default 5000: a pass
   * marks dead the index entries of every job finished since the last one (about 1 µs each), so passes often
   * keep each one short; an idle pass costs about 1 ms.
   */
  SWEEPER_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(5_000),
  /** How often a finished job is removed from BullMQ once its outcome is on disk in PostgreSQL, in ms; 0 leaves that to the retention limits. Default 1000. */
  FINISHED_JOB_TRIM_INTERVAL_MS: z.coerce.number().int().min(0).max(3_600_000).default(1000),
  /** How long a worker's lock on an active job lasts (renewed every half of it while the job runs), in ms. Default 30000. */
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(500).max(600_000).default(30_000),
  /** How often workers look for stalled jobs (active, lock expired: their worker died), in ms. Default 30000. */
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).max(600_000).default(30_000),
  /** Times a job may stall (its worker dies under it) before it fails instead of running again. Default 2. */
  WORKER_MAX_STALLED_COUNT: z.coerce.number().int().min(0).max(100).default(2),
  /** How often the platform's metering job runs, in ms. Default 300000 (5 min). */
  METERING_EVERY_MS: z.coerce.number().int().min(1000).max(86_400_000).default(300_000),
  /** How often the platform's billing job runs, in ms. Default 3600000 (1 h). */
  BILLING_EVERY_MS: z.coerce.number().int().min(1000).max(86_400_000).default(3_600_000),
  /** How often the platform's vault-export job runs, in ms. Default 300000 (5 min). */
  VAULT_EXPORT_EVERY_MS: z.coerce.number().int().min(1000).max(86_400_000).default(300_000),
  /** Cron pattern (UTC) of the month-rollover job. Default `0 0 1 * *` (the 1st, 00:00 UTC). */
  MONTH_ROLLOVER_CRON: z.string().min(9).max(100).default('0 0 1 * *'),
  /** Upsert the platform's job schedulers (metering, billing, vault-export, month-rollover, retention) when workers start. Default true. */
  PLATFORM_SCHEDULES: booleanString.default(true),
  /** How long billing waits for the escrow to answer a charge before retrying later, in ms. Default 10000. */
  ESCROW_TIMEOUT_MS: z.coerce.number().int().min(10).max(120_000).default(10_000),
  /**
   * What confirms a customer's `POST /billing/deposits`: `development` confirms at once (no money moves; refused
   * with NODE_ENV=production), `none` confirms nothing, so deposits answer 403 and admins credit accounts instead.
   * Default `development` outside production, `none` in production.
   */
  ESCROW_DEPOSITS: z.enum(['development', 'none']).optional(),
  /** Request-log rows the API keeps in memory awaiting a flush; beyond it new rows are dropped (and counted). Default 50000. */
  REQUEST_LOG_BUFFER_MAX: z.coerce.number().int().min(100).max(10_000_000).default(50_000),
  /** Longest a recorded request waits before its row is flushed to PostgreSQL, in ms. Default 1000. */
  REQUEST_LOG_FLUSH_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  /**
   * Share workers between customers by tier weight, measured in worker time (docs/design/queues-and-storage.md §2;
   * SPEC §9). Default true; false serves each queue first in, first out.
   */
  FAIR_SHARING: booleanString.default(true),
  /** Estimated worker time each queue shard releases to BullMQ before further jobs wait in their customer's lane, in ms. Default 50. */
  FAIR_WINDOW_MS: z.coerce.number().int().min(1).max(600_000).default(50),
  /** Worker ms fair sharing charges every job on top of its measured work (per-job overhead). Default 1. */
  FAIR_BASE_COST_MS: z.coerce.number().min(0).max(60_000).default(1),
  /** Most measured work fair sharing charges one job, in ms (damps outliers). Default 5000. */
  FAIR_MAX_CHARGE_MS: z.coerce.number().min(1).max(3_600_000).default(5000),
  /** Tier weights of fair sharing: backlogged customers get worker time in these ratios. Default `starter=1,pro=4,enterprise=16`. */
  FAIR_WEIGHTS: fairWeights.prefault('starter=1,pro=4,enterprise=16'),
  /**
   * Most released, unfinished jobs of one customer per job type, split between its shards (bounds what a
   * customer's jobs hold in Redis; payloads over 8 KiB stay in their rows); 0: no cap. A bundle held whole counts
   * as its members. Default 4096 (256 a shard of 16; counted before each release, it lets a sixth bundle of 50 in,
   * filling a shard worker's slots, spare ones included):
   * at 512, 32 a shard, a flood ran one bundle a shard and drained at ~0.75 of FIFO.
   */
  FAIR_MAX_RELEASED_PER_CUSTOMER: z.coerce.number().int().min(0).max(1_000_000).default(4096),
  /**
   * Most queued jobs (queued or delayed, not yet started) a customer may hold, per tier; a submit past it
   * answers 429. `tier=count` list; tiers left out keep their default. Default `starter=1000,pro=20000,enterprise=100000`.
   */
  TIER_MAX_QUEUED: perTierCounts({ starter: 1000, pro: 20_000, enterprise: 100_000 }),
  /** Most running jobs a customer may hold, per tier, before its submits answer 429. Default `starter=50,pro=500,enterprise=5000`. */
  TIER_MAX_ACTIVE: perTierCounts({ starter: 50, pro: 500, enterprise: 5000 }),
  /**
   * Most substrates one customer may keep, by tier: a create that would pass it answers 422 and stores nothing
   * (a batch's new substrates count together). Default `starter=10000,pro=100000,enterprise=1000000`.
   */
  TIER_MAX_SUBSTRATES: perTierCounts({ starter: 10_000, pro: 100_000, enterprise: 1_000_000 }),
  /**
   * Most live API keys (neither revoked nor expired) one customer may hold, by tier: a create past it answers 422
   * (every live key is a row of the vault the edge proxy loads). Default `starter=20,pro=100,enterprise=1000`.
   */
  TIER_MAX_API_KEYS: perTierCounts({ starter: 20, pro: 100, enterprise: 1000 }),
  /**
   * Most relationships one customer may keep, by tier: a create past it answers 422. Default
   * `starter=50000,pro=500000,enterprise=5000000` (five for each substrate a tier may keep).
   */
  TIER_MAX_RELATIONSHIPS: perTierCounts({ starter: 50_000, pro: 500_000, enterprise: 5_000_000 }),
  /** Days a finished job (and a batch's items) is kept after it finished; 0 keeps them. Default 30. */
  JOB_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  /**
   * JOB_RETENTION_DAYS per tier of the customer's compute service, e.g. `starter=7,pro=30,enterprise=90`;
   * 0 keeps that tier's jobs, and a tier left out keeps JOB_RETENTION_DAYS. Default: none.
   */
  JOB_RETENTION_DAYS_BY_TIER: perTierCounts({ starter: -1, pro: -1, enterprise: -1 }, 0),
  /** Days a request-log row is kept, counted from its timestamp, and then only once metered and billed; 0 keeps them. Default 90. */
  REQUEST_LOG_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(90),
  /** Days a finished webhook delivery (with its attempts) is kept after it finished; 0 keeps them. Default 30. */
  WEBHOOK_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  /** How often the platform's retention job runs, in ms. Default 3600000 (1 h). */
  RETENTION_EVERY_MS: z.coerce.number().int().min(1000).max(86_400_000).default(3_600_000),
  /** Rows retention reads or deletes per statement (each statement its own short transaction). Default 5000. */
  RETENTION_STEP_ROWS: z.coerce.number().int().min(1).max(100_000).default(5000),
  /** Test and soak only: the seconds in one retention "day", so a soak can expire history in minutes. Default 86400. */
  RETENTION_DAY_SECONDS: z.coerce.number().int().min(1).max(86_400).default(86_400),
  /**
   * Days of job ids one partition of `jobs` (and of `batch_items`) holds: retention drops a whole partition
   * once all of it is past the longest retention. Counted in RETENTION_DAY_SECONDS days. Default 7.
   */
  JOB_PARTITION_DAYS: z.coerce.number().int().min(1).max(366).default(7),
  /** Where local state lives (embedded PostgreSQL, redis-server, generated secrets). Default `.data`. */
  DATA_DIR: z.string().default('.data'),
});

export type RawEnv = z.input<typeof envSchema>;

/** One node of a Redis Cluster, as REDIS_CLUSTER_NODES and REDIS_CLUSTER_NAT_MAP name it. */
export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** A Redis Cluster (REDIS_CLUSTER_NODES): seed nodes; the client learns the rest from `CLUSTER SLOTS`. */
export interface RedisClusterTarget {
  nodes: RedisNodeAddress[];
  /** Address a node announces → address this process reaches it at (REDIS_CLUSTER_NAT_MAP). */
  natMap?: Record<string, RedisNodeAddress>;
  /** TLS to every node (REDIS_CLUSTER_TLS). */
  tls?: boolean;
  username?: string;
  password?: string;
}

/**
 * Where Redis is: a `redis://` / `rediss://` URL (one node, REDIS_URL), or a cluster (REDIS_CLUSTER_NODES).
 * Hand it to lib/redis.ts `createRedis`, never to ioredis.
 */
export type RedisTarget = string | RedisClusterTarget;

/** `host:port` (a bracketed IPv6 host too), or null. */
function parseAddress(text: string): RedisNodeAddress | null {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  databaseUrl: string;
  /** The Redis this process talks to: pass it to lib/redis.ts `createRedis` (every connection is made there). */
  redis: RedisTarget;
  queuePrefix: string;
  /** Queues per sharded job type. */
  queueShards: number;
  /** Most jobs of one bulk submit one BullMQ job carries (JOB_BUNDLE_SIZE). */
  jobBundleSize: number;
  jwtSecret: string;
  adminEmail: string;
  adminPassword: string;
  tosVersion: string;
  metricsToken: string;
  vaultPath: string;
  vaultKey: Buffer;
  webhookAllowPrivate: boolean;
  webhookRetryBaseMs: number;
  webhookConcurrency: number;
  webhookSweepIntervalMs: number;
  webhookTimeoutMs: number;
  webhookEndpointConcurrency: number;
  webhookCustomerConcurrency: number;
  webhookBreakerFailures: number;
  webhookBreakerCooldownMs: number;
  webhookHalfOpenTimeoutMs: number;
  webhookDisableAfterMs: number;
  webhookDisableAfterFailures: number;
  webhookResultMaxBytes: number;
  resultMaxBytes: number;
  batchResultsMaxBytes: number;
  invocationCacheMaxBytes: number;
  invocationCacheMaxBytesPerCustomer: number;
  /** Share of Redis maxmemory above which new work is refused; 0: off. */
  redisMemoryGuard: number;
  workerConcurrency: number;
  piscinaThreads: number;
  taskTimeoutMs: number;
  logLevel: string;
  /** SERVER_TIMING: answers carry a `Server-Timing` header (api/request-timing.ts). */
  serverTiming: boolean;
  trustProxy: boolean | number | string[];
  rateLimitMultiplier: number;
  passwordHashThreads: number;
  tierMaxInFlight: PerTier<number>;
  apiReadsAtOnce: number;
  apiReadsPerCustomer: number;
  apiSliceMs: number;
  apiRequestTimeoutMs: number;
  tierMaxStreams: PerTier<number>;
  tierMaxBulkInFlight: PerTier<number>;
  concurrencyLeaseMs: number;
  tierScheduleItemsPerMin: PerTier<number>;
  passwordHashMaxQueue: number;
  /** bcrypt cost of new password hashes. */
  passwordHashCost: number;
  rateLimitRegisterPerMin: number;
  rateLimitLoginPerMin: number;
  rateLimitRefreshPerMin: number;
  rateLimitKeyLookupsPerMin: number;
  readyRequiresWorker: boolean;
  workerMetricsPort: number;
  workerMetricsPublishMs: number;
  shutdownTimeoutMs: number;
  sweeperIntervalMs: number;
  finishedJobTrimIntervalMs: number;
  workerLockDurationMs: number;
  workerStalledIntervalMs: number;
  workerMaxStalledCount: number;
  meteringEveryMs: number;
  billingEveryMs: number;
  vaultExportEveryMs: number;
  monthRolloverCron: string;
  platformSchedules: boolean;
  escrowTimeoutMs: number;
  /** The adapter that confirms deposits; `none`: customers cannot deposit (403). */
  escrowDeposits: 'development' | 'none';
  requestLogBufferMax: number;
  requestLogFlushMs: number;
  fairSharing: boolean;
  fairWindowMs: number;
  fairBaseCostMs: number;
  fairMaxChargeMs: number;
  fairWeights: FairWeights;
  fairMaxReleasedPerCustomer: number;
  /** Admission control (queue/admission.ts): most queued jobs per customer, by tier. */
  tierMaxQueued: PerTier<number>;
  /** Admission control: most active (running) jobs per customer, by tier. */
  tierMaxActive: PerTier<number>;
  /** Most substrates a customer keeps, by tier (db/repositories/substrate-store.ts). */
  tierMaxSubstrates: PerTier<number>;
  tierMaxApiKeys: PerTier<number>;
  tierMaxRelationships: PerTier<number>;
  /** Days a finished job is kept, by the tier of its customer's compute service; 0 keeps them. */
  jobRetentionDays: PerTier<number>;
  /** Days a metered and billed request-log row is kept; 0 keeps them. */
  requestLogRetentionDays: number;
  /** Days a finished webhook delivery and its attempts are kept; 0 keeps them. */
  webhookRetentionDays: number;
  retentionEveryMs: number;
  retentionStepRows: number;
  retentionDaySeconds: number;
  /** Days of job ids per partition of `jobs` and `batch_items` (db/jobs/job-partitions.ts). */
  jobPartitionDays: number;
  dataDir: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const generatedSecretNames = ['JWT_SECRET', 'METRICS_TOKEN', 'VAULT_KEY', 'ADMIN_PASSWORD'] as const;

/** Development secrets are generated once and kept in DATA_DIR, so restarts keep sessions and keys valid. */
function developmentSecrets(dataDir: string): Record<(typeof generatedSecretNames)[number], string> {
  const file = path.join(dataDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  mkdirSync(dataDir, { recursive: true });
  const secrets = {
    JWT_SECRET: randomBytes(32).toString('hex'),
    METRICS_TOKEN: randomBytes(24).toString('hex'),
    VAULT_KEY: randomBytes(32).toString('hex'),
    ADMIN_PASSWORD: randomBytes(12).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

function parseTrustProxy(value: string): Config['trustProxy'] {
  if (value === 'false' || value === '') return false;
  if (value === 'true') throw new ConfigError('TRUST_PROXY: "true" trusts every hop; give a hop count or the proxy addresses');
  if (/^\d+$/.test(value)) return Number(value);
  return value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

/** PORT as loadConfig reads it, for `npm start` to check before launching anything; null when invalid (loadConfig names it). */
export function apiPortOf(env: NodeJS.ProcessEnv): number | null {
  const parsed = envSchema.shape.PORT.safeParse(env.PORT);
  return parsed.success ? parsed.data : null;
}

/**
 * Parses the environment once per entry point. A bad value throws a ConfigError naming the variable.
 * Outside production, unset secrets come from `DATA_DIR/secrets.json` (generated on first use).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const nodeEnv = env.NODE_ENV ?? 'development';
  const dataDir = path.resolve(env.DATA_DIR ?? '.data');
  const withDefaults: Record<string, string | undefined> = { ...env };
  if (nodeEnv !== 'production') {
    const secrets = developmentSecrets(dataDir);
    for (const name of generatedSecretNames) withDefaults[name] ??= secrets[name];
    withDefaults.ADMIN_EMAIL ??= 'admin@chrysalis.local';
  }
  const parsed = envSchema.safeParse(withDefaults);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration — ${problems.join('; ')}`);
  }
  const e = parsed.data;
  if (!e.DATABASE_URL) throw new ConfigError('DATABASE_URL: not set (npm start sets it when it launches the local database)');
  if (!e.REDIS_URL && !e.REDIS_CLUSTER_NODES)
    throw new ConfigError(
      'REDIS_URL: not set (npm start sets it when it finds or launches Redis; REDIS_CLUSTER_NODES names a cluster instead)',
    );
  const redis: RedisTarget = e.REDIS_CLUSTER_NODES
    ? {
        nodes: e.REDIS_CLUSTER_NODES,
        ...(e.REDIS_CLUSTER_NAT_MAP ? { natMap: e.REDIS_CLUSTER_NAT_MAP } : {}),
        ...(e.REDIS_CLUSTER_TLS ? { tls: true } : {}),
        ...(e.REDIS_CLUSTER_USERNAME ? { username: e.REDIS_CLUSTER_USERNAME } : {}),
        ...(e.REDIS_CLUSTER_PASSWORD ? { password: e.REDIS_CLUSTER_PASSWORD } : {}),
      }
    : (e.REDIS_URL as string);
  if (e.NODE_ENV === 'production' && e.PASSWORD_HASH_COST < 10) {
    throw new ConfigError('PASSWORD_HASH_COST: below 10 is for tests only; with NODE_ENV=production use 10 or more (default 12)');
  }
  if (e.NODE_ENV === 'production' && e.ESCROW_DEPOSITS === 'development') {
    throw new ConfigError(
      'ESCROW_DEPOSITS: the development adapter confirms deposits no money backs; with NODE_ENV=production use none (admins credit customers)',
    );
  }
  return {
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redis,
    queuePrefix: e.QUEUE_PREFIX,
    queueShards: e.QUEUE_SHARDS ?? (e.REDIS_CLUSTER_NODES ? 16 : 1),
    jobBundleSize: e.JOB_BUNDLE_SIZE,
    jwtSecret: e.JWT_SECRET,
    adminEmail: e.ADMIN_EMAIL.toLowerCase(),
    adminPassword: e.ADMIN_PASSWORD,
    tosVersion: e.TOS_VERSION,
    metricsToken: e.METRICS_TOKEN,
    vaultPath: path.resolve(e.VAULT_PATH ?? path.join(dataDir, 'vault.csv')),
    vaultKey: Buffer.from(e.VAULT_KEY, 'hex'),
    webhookAllowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
    webhookRetryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
    webhookConcurrency: e.WEBHOOK_CONCURRENCY,
    webhookSweepIntervalMs: e.WEBHOOK_SWEEP_INTERVAL_MS,
    webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS,
    webhookEndpointConcurrency: e.WEBHOOK_ENDPOINT_CONCURRENCY,
    webhookCustomerConcurrency: e.WEBHOOK_CUSTOMER_CONCURRENCY,
    webhookBreakerFailures: e.WEBHOOK_BREAKER_FAILURES,
    webhookBreakerCooldownMs: e.WEBHOOK_BREAKER_COOLDOWN_MS,
    webhookHalfOpenTimeoutMs: e.WEBHOOK_HALF_OPEN_TIMEOUT_MS,
    webhookDisableAfterMs: e.WEBHOOK_DISABLE_AFTER_MS,
    webhookDisableAfterFailures: e.WEBHOOK_DISABLE_AFTER_FAILURES,
    webhookResultMaxBytes: e.WEBHOOK_RESULT_MAX_BYTES,
    resultMaxBytes: e.RESULT_MAX_BYTES,
    batchResultsMaxBytes: e.BATCH_RESULTS_MAX_BYTES,
    invocationCacheMaxBytes: e.INVOCATION_CACHE_MAX_BYTES,
    invocationCacheMaxBytesPerCustomer: e.INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER,
    redisMemoryGuard: e.REDIS_MEMORY_GUARD,
    workerConcurrency: e.WORKER_CONCURRENCY,
    piscinaThreads: e.PISCINA_THREADS,
    taskTimeoutMs: e.TASK_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    serverTiming: e.SERVER_TIMING,
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    rateLimitMultiplier: e.RATE_LIMIT_MULTIPLIER,
    passwordHashThreads: e.PASSWORD_HASH_THREADS,
    tierMaxInFlight: e.TIER_MAX_IN_FLIGHT,
    apiReadsAtOnce: e.API_READS_AT_ONCE,
    apiReadsPerCustomer: e.API_READS_PER_CUSTOMER,
    apiSliceMs: e.API_SLICE_MS,
    apiRequestTimeoutMs: e.API_REQUEST_TIMEOUT_MS,
    tierMaxStreams: e.TIER_MAX_STREAMS,
    tierMaxBulkInFlight: e.TIER_MAX_BULK_IN_FLIGHT,
    concurrencyLeaseMs: e.CONCURRENCY_LEASE_MS,
    tierScheduleItemsPerMin: e.TIER_SCHEDULE_ITEMS_PER_MIN,
    passwordHashMaxQueue: e.PASSWORD_HASH_MAX_QUEUE,
    passwordHashCost: e.PASSWORD_HASH_COST,
    rateLimitRegisterPerMin: e.RATE_LIMIT_REGISTER_PER_MIN,
    rateLimitLoginPerMin: e.RATE_LIMIT_LOGIN_PER_MIN,
    rateLimitRefreshPerMin: e.RATE_LIMIT_REFRESH_PER_MIN,
    rateLimitKeyLookupsPerMin: e.RATE_LIMIT_KEY_LOOKUPS_PER_MIN,
    readyRequiresWorker: e.READY_REQUIRES_WORKER,
    workerMetricsPort: e.WORKER_METRICS_PORT,
    workerMetricsPublishMs: e.WORKER_METRICS_PUBLISH_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    sweeperIntervalMs: e.SWEEPER_INTERVAL_MS,
    finishedJobTrimIntervalMs: e.FINISHED_JOB_TRIM_INTERVAL_MS,
    workerLockDurationMs: e.WORKER_LOCK_DURATION_MS,
    workerStalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
    workerMaxStalledCount: e.WORKER_MAX_STALLED_COUNT,
    meteringEveryMs: e.METERING_EVERY_MS,
    billingEveryMs: e.BILLING_EVERY_MS,
    vaultExportEveryMs: e.VAULT_EXPORT_EVERY_MS,
    monthRolloverCron: e.MONTH_ROLLOVER_CRON,
    platformSchedules: e.PLATFORM_SCHEDULES,
    escrowTimeoutMs: e.ESCROW_TIMEOUT_MS,
    escrowDeposits: e.ESCROW_DEPOSITS ?? (e.NODE_ENV === 'production' ? 'none' : 'development'),
    requestLogBufferMax: e.REQUEST_LOG_BUFFER_MAX,
    requestLogFlushMs: e.REQUEST_LOG_FLUSH_MS,
    fairSharing: e.FAIR_SHARING,
    fairWindowMs: e.FAIR_WINDOW_MS,
    fairBaseCostMs: e.FAIR_BASE_COST_MS,
    fairMaxChargeMs: e.FAIR_MAX_CHARGE_MS,
    fairWeights: e.FAIR_WEIGHTS,
    fairMaxReleasedPerCustomer: e.FAIR_MAX_RELEASED_PER_CUSTOMER,
    tierMaxQueued: e.TIER_MAX_QUEUED,
    tierMaxActive: e.TIER_MAX_ACTIVE,
    tierMaxSubstrates: e.TIER_MAX_SUBSTRATES,
    tierMaxApiKeys: e.TIER_MAX_API_KEYS,
    tierMaxRelationships: e.TIER_MAX_RELATIONSHIPS,
    // A tier JOB_RETENTION_DAYS_BY_TIER leaves out (-1 from its parser) keeps JOB_RETENTION_DAYS.
    jobRetentionDays: Object.fromEntries(
      configTiers.map((tier) => [tier, e.JOB_RETENTION_DAYS_BY_TIER[tier] < 0 ? e.JOB_RETENTION_DAYS : e.JOB_RETENTION_DAYS_BY_TIER[tier]]),
    ) as PerTier<number>,
    requestLogRetentionDays: e.REQUEST_LOG_RETENTION_DAYS,
    webhookRetentionDays: e.WEBHOOK_RETENTION_DAYS,
    retentionEveryMs: e.RETENTION_EVERY_MS,
    retentionStepRows: e.RETENTION_STEP_ROWS,
    retentionDaySeconds: e.RETENTION_DAY_SECONDS,
    jobPartitionDays: e.JOB_PARTITION_DAYS,
    dataDir,
  };
}
