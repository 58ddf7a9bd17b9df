import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFairShare } from '../../queue/fair-share/fair-share.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';

/**
 * What fair sharing costs Redis per job: commands counted by a redis-server of the test's own (INFO
 * commandstats counts every command a script runs), so no other client's traffic is in the count.
 */
let server: PrivateRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startPrivateRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  await redis?.quit();
  await server?.stop();
});

async function commandsSoFar(): Promise<number> {
  const stats = await redis.info('commandstats');
  return [...stats.matchAll(/^cmdstat_(?!info)[^:]+:calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

async function commandsOf(work: () => Promise<unknown>): Promise<number> {
  const before = await commandsSoFar();
  await work();
  return (await commandsSoFar()) - before;
}

const ids = (count: number) => Array.from({ length: count }, () => uuidv7());

describe('fair sharing: Redis commands per job', () => {
  it('admits a 1,000-job chunk in a few dozen commands, not several per job', async () => {
    const fair = createFairShare(redis, { windowMs: 50, minInflight: 4, maxReleasedPerCustomer: 16, defaultCostMs: 1 });
    const key = `cost:{${randomUUID().slice(0, 8)}}`;
    const chunk = ids(1000).map((id) => ({ id, customerId: 'A', weight: 16, hints: '{"cacheMissed":true}' }));
    let released: string[] = [];
    const commands = await commandsOf(async () => (released = await fair.admit(key, chunk)));
    expect(released).toHaveLength(16);
    expect(await redis.zcard(`${key}:fair:lane:A`)).toBe(984);
    expect(commands).toBeLessThan(60);
  });

  it('charges and releases a batch in a few commands per lane, not a dozen per job', async () => {
    const fair = createFairShare(redis, { windowMs: 50, minInflight: 4, maxReleasedPerCustomer: 16, defaultCostMs: 1 });
    const key = `cost:{${randomUUID().slice(0, 8)}}`;
    const owner = new Map<string, string>();
    const inFlight: string[] = [];
    for (const [customerId, weight] of [
      ['A', 16],
      ['B', 1],
    ] as const) {
      const backlog = ids(1000);
      for (const id of backlog) owner.set(id, customerId);
      inFlight.push(
        ...(await fair.admit(
          key,
          backlog.map((id) => ({ id, customerId, weight, hints: '{"cacheMissed":true}' })),
        )),
      );
    }
    // Workers report eight finished jobs per call; each call releases as many.
    let finished = 0;
    const seen = new Set(inFlight);
    const commands = await commandsOf(async () => {
      while (finished < 800) {
        const batch = inFlight.splice(0, 8);
        const outcome = await fair.releaseBatch(
          key,
          batch.map((id) => ({ id, customerId: owner.get(id)!, workMs: 1 })),
        );
        for (const job of outcome.released) {
          expect(seen.has(job.id)).toBe(false);
          seen.add(job.id);
          expect(job.hints).toBe('{"cacheMissed":true}');
        }
        inFlight.push(...outcome.released.map((job) => job.id));
        finished += batch.length;
      }
    });
    // Both customers kept getting released: the batch is still chosen lane by lane in vt order.
    const releasedOf = (customerId: string) => [...seen].filter((id) => owner.get(id) === customerId).length;
    expect(releasedOf('A')).toBeGreaterThan(400);
    expect(releasedOf('B')).toBeGreaterThan(100);
    expect(commands / finished).toBeLessThan(6);
  });
});
