/**
 * What fair sharing costs per job in Redis, on one shard (a micro-measure beside `npm run bench`):
 *
 *   npx tsx ops/bench/fair-share-cost.ts            # REDIS_URL, else redis://127.0.0.1:6379
 *
 * - uncontended: one customer, a window with room: one admit call per job (released at once), one
 *   release call per finished job — the path a quiet platform pays on every job;
 * - backlogged: customer A holds N jobs (admitted in chunks of 1,000), B submits too; workers finish
 *   jobs in batches of 32 and each release call pops as many — the dispatcher's steady state.
 * Prints µs and Redis commands (those scripts run included) per job: wall time (round trips included; a PING's round trip beside it for scale) and the
 * scripts' own time in Redis (INFO commandstats: exact on a Redis of its own, e.g. REDIS_URL of a
 * `redis-server --port 6390`; other clients' scripts add to it on a shared one), and the Redis memory
 * of the held backlog.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { uuidv7 } from 'uuidv7';
import { createFairShare } from '../../queue/fair-share/fair-share.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const held = Number(process.argv.find((arg) => arg.startsWith('--held='))?.slice(7) ?? 20_000);
const shard = () => `fairbench${process.pid}:{bench-${randomUUID().slice(0, 8)}}`;
/** Microseconds Redis spent running scripts so far (INFO commandstats): the scripts' own cost, without round trips. */
async function scriptUsec(): Promise<number> {
  const stats = await redis.info('commandstats');
  return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=\d+,usec=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}
/** Commands Redis ran so far, those inside scripts included (INFO commandstats; INFO itself left out). */
async function commandCount(): Promise<number> {
  const stats = await redis.info('commandstats');
  return [...stats.matchAll(/^cmdstat_(?!info)[^:]+:calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}
const perJob = (startedAt: number, jobs: number) => Math.round(((performance.now() - startedAt) * 1000) / jobs);

async function uncontended(jobs: number) {
  const fair = createFairShare(redis, { windowMs: 50, minInflight: 2, defaultCostMs: 1 });
  const key = shard();
  const usec = await scriptUsec();
  const commands = await commandCount();
  const startedAt = performance.now();
  for (let i = 0; i < jobs; i++) {
    const id = uuidv7();
    await fair.admit(key, [{ id, customerId: 'solo', weight: 1 }]);
    await fair.releaseBatch(key, [{ id, customerId: 'solo', workMs: 1 }]);
  }
  const usPerJob = perJob(startedAt, jobs);
  return {
    key,
    usPerJob,
    serverUsPerJob: ((await scriptUsec()) - usec) / jobs,
    commandsPerJob: ((await commandCount()) - commands) / jobs,
  };
}

async function backlogged(jobs: number) {
  const fair = createFairShare(redis, { windowMs: 50, minInflight: 32, defaultCostMs: 1, maxReleasedPerCustomer: 0 });
  const key = shard();
  const ids = Array.from({ length: jobs }, () => uuidv7());
  const inFlight: Array<{ id: string; customerId: string }> = [];
  let usec = await scriptUsec();
  let commands = await commandCount();
  const admitStarted = performance.now();
  for (let start = 0; start < ids.length; start += 1000) {
    const chunk = ids
      .slice(start, start + 1000)
      .map((id, i) => ({ id, customerId: i % 10 === 0 ? 'B' : 'A', weight: i % 10 === 0 ? 1 : 16 }));
    const released = await fair.admit(key, chunk);
    const byId = new Map(chunk.map((job) => [job.id, job.customerId]));
    inFlight.push(...released.map((id) => ({ id, customerId: byId.get(id)! })));
  }
  const admitUs = perJob(admitStarted, jobs);
  const admitServerUs = ((await scriptUsec()) - usec) / jobs;
  const admitCommands = ((await commandCount()) - commands) / jobs;
  const heldBytes = (await redis.memory('USAGE', `${key}:fair:lane:A`)) ?? 0;
  const heldA = await redis.llen(`${key}:fair:lane:A`);

  usec = await scriptUsec();
  commands = await commandCount();
  const releaseStarted = performance.now();
  let finished = 0;
  while (inFlight.length > 0) {
    const batch = inFlight.splice(0, 32);
    const { released: next } = await fair.releaseBatch(
      key,
      batch.map((job) => ({ ...job, workMs: 1 })),
    );
    inFlight.push(...next);
    finished += batch.length;
  }
  const releaseUs = perJob(releaseStarted, finished);
  const releaseServerUs = ((await scriptUsec()) - usec) / finished;
  const releaseCommands = ((await commandCount()) - commands) / finished;
  return {
    key,
    admitUs,
    admitServerUs,
    admitCommands,
    releaseUs,
    releaseServerUs,
    releaseCommands,
    finished,
    bytesPerHeldId: Math.round(heldBytes / Math.max(1, heldA)),
  };
}

/** A round trip with no work, for scale: the machine's share of each figure that is not the scripts'. */
async function pingUs(count: number) {
  const startedAt = performance.now();
  for (let i = 0; i < count; i++) await redis.ping();
  return perJob(startedAt, count);
}

const round = (value: number) => Math.round(value * 10) / 10;
const ping = await pingUs(5_000);
const solo = await uncontended(5_000);
const backlog = await backlogged(held);
for (const key of [solo.key, backlog.key]) {
  const keys = await redis.keys(`${key}:*`);
  if (keys.length > 0) await redis.del(...keys);
}
console.log(
  JSON.stringify(
    {
      roundTripUs: ping,
      uncontended: {
        jobs: 5_000,
        usPerJobAdmitPlusRelease: solo.usPerJob,
        roundTrips: 2,
        scriptUsPerJob: round(solo.serverUsPerJob),
        commandsPerJob: round(solo.commandsPerJob),
      },
      backlogged: {
        jobs: held,
        usPerJobAdmitInChunksOf1000: backlog.admitUs,
        scriptUsPerJobAdmit: round(backlog.admitServerUs),
        commandsPerJobAdmit: round(backlog.admitCommands),
        usPerJobReleaseInBatchesOf32: backlog.releaseUs,
        scriptUsPerJobRelease: round(backlog.releaseServerUs),
        commandsPerJobRelease: round(backlog.releaseCommands),
        redisBytesPerHeldId: backlog.bytesPerHeldId,
      },
    },
    null,
    2,
  ),
);
await redis.quit();
