/**
 * `npx tsx ops/bench/history-job-costs.ts`: what two platform jobs cost the worker that runs them when the tables
 * they read have grown large — the vault export over VAULT_KEYS live API keys (default 144,000: 7,200 starters
 * at their cap of 20), and retention's refresh-token step over EXPIRED_TOKENS expired tokens (default 500,000)
 * beside 20,000 live ones. For the export: its time, the longest its event loop was held (what every other job
 * on that worker waited) and how much its memory grew; for retention: its steps and their times. Runs in a
 * scratch database on DATABASE_URL's server (REDIS_URL, unused by both, completes the job context); prints one
 * JSON line.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import pino from 'pino';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { expireRefreshTokensStep } from '../../db/repositories/accounts.js';
import { vaultExportJob } from '../../jobs/vault-export/vault-export.job.js';
import { createMigratedDatabase, percentile, round } from './harness.js';
import { loadConfig } from '../../config.js';
import { InvocationCache } from '../../db/invocation-cache.js';
import { createRedis } from '../../lib/redis.js';
import { standaloneJobContext } from '../standalone-job-context.js';

const vaultKeys = Number(process.env.VAULT_KEYS ?? 144_000);
const expiredTokens = Number(process.env.EXPIRED_TOKENS ?? 500_000);
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function vaultExportCost(orm: Orm) {
  const sql = orm.em.getConnection();
  const customers = Math.ceil(vaultKeys / 20);
  await sql.execute(`insert into customers (id, name) select gen_random_uuid(), 'vault ' || g from generate_series(1, ${customers}) g`);
  await sql.execute(
    `insert into service_instances (customer_id, service_type, tier, enabled) select id, 'compute', 'starter', true from customers`,
  );
  // Ciphertext-shaped base64 (64 characters), as an encrypted key is stored.
  await sql.execute(
    `insert into api_keys (id, customer_id, name, service_type, prefix, key_hash, encrypted_key)
     select gen_random_uuid(), c.id, 'key', 'compute', 'sk_live_' || g, md5(c.id::text || g),
            encode(decode(md5(g::text || c.id::text) || md5(c.id::text) || md5(g::text), 'hex'), 'base64')
       from customers c cross join generate_series(1, 20) g limit ${vaultKeys}`,
  );
  await sql.execute('analyze');
  const folder = await mkdtemp(path.join(tmpdir(), 'chrysalis-vault-cost-'));
  const config = loadConfig({ ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, VAULT_PATH: path.join(folder, 'vault.csv') });
  // The job context's Redis and cache (the export uses neither).
  const redis = createRedis(config.redis);
  try {
    const ctx = standaloneJobContext({
      logger: pino({ level: 'warn' }),
      em: orm.em.fork(),
      redis,
      config,
      cache: new InvocationCache(redis, config.queuePrefix),
    });
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 5);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const started = performance.now();
    const result = await vaultExportJob.process({}, ctx);
    const ms = performance.now() - started;
    loop.disable();
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    return {
      keys: result.rows,
      bytes: result.bytes,
      ms: Math.round(ms),
      loop_held_max_ms: round(loop.max / 1e6, 1),
      rss_growth_mib: Math.round((rssPeak - rssBefore) / 2 ** 20),
    };
  } finally {
    redis.disconnect();
    await rm(folder, { recursive: true, force: true });
  }
}

async function refreshTokenRetentionCost(orm: Orm) {
  const sql = orm.em.getConnection();
  // UUIDv7-shaped ids minted 40 days ago (expired 10 days ago) and now (live), as logins and refreshes mint them.
  const mintedAt = (at: Date) => uuidv7Floor(at).slice(0, 13);
  const insert = (count: number, prefix: string, expires: string) =>
    sql.execute(
      `insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at)
       select overlay(gen_random_uuid()::text placing '${prefix}' from 1 for 13)::uuid, gen_random_uuid(), gen_random_uuid(),
              md5(random()::text) || g, ${expires}
         from generate_series(1, ${count}) g`,
    );
  await insert(expiredTokens, mintedAt(new Date(Date.now() - 40 * 86_400_000)), `now() - interval '10 days'`);
  await insert(20_000, mintedAt(new Date()), `now() + interval '20 days'`);
  await sql.execute('analyze refresh_tokens');
  const stepTimes: number[] = [];
  let deleted = 0;
  const started = performance.now();
  for (let afterId: string | null = null; ;) {
    const stepStarted = performance.now();
    const step = await expireRefreshTokensStep(orm.em, { afterId, stepRows: 5000 });
    stepTimes.push(performance.now() - stepStarted);
    deleted += step.deleted;
    if (step.done) break;
    afterId = step.lastId;
  }
  const ms = performance.now() - started;
  const [left] = await sql.execute<Array<{ n: number }>>('select count(*)::int as n from refresh_tokens');
  stepTimes.sort((a, b) => a - b);
  return {
    deleted,
    left: left?.n ?? 0,
    steps: stepTimes.length,
    ms: Math.round(ms),
    step_p50_ms: round(percentile(stepTimes, 50), 1),
    step_max_ms: round(stepTimes.at(-1) ?? 0, 1),
  };
}

async function main(): Promise<void> {
  const adminUrl = new URL(databaseUrl);
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  const database = `chrysalis_history_costs_${randomBytes(4).toString('hex')}`;
  try {
    const orm = await createOrm(await createMigratedDatabase(admin, adminUrl, database), { poolMax: 4 });
    try {
      const figures = {
        scenario: 'history-job-costs',
        'vault export': await vaultExportCost(orm),
        'refresh-token retention (steps of 5,000)': await refreshTokenRetentionCost(orm),
      };
      process.stdout.write(`${JSON.stringify(figures)}\n`);
    } finally {
      await orm.close();
    }
  } finally {
    await admin.query(`drop database if exists ${database} with (force)`);
    await admin.end();
  }
}

await main();
