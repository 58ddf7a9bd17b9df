import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFairShare, packHints, unpackHints } from '../../queue/fair-share/fair-share.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { heldIds } from '../helpers/fair-lanes.js';

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
    expect(await heldIds(redis, key, 'A')).toHaveLength(984);
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

  it('holds a flood at ~40 bytes of Redis a job: a list entry of its id, its hint flags on the entry', async () => {
    const fair = createFairShare(redis, { windowMs: 50, minInflight: 4, maxReleasedPerCustomer: 16, defaultCostMs: 1 });
    const key = `cost:{${randomUUID().slice(0, 8)}}`;
    const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    const before = await usedMemory();
    const backlog = ids(20_000);
    for (let start = 0; start < backlog.length; start += 1000) {
      await fair.admit(
        key,
        backlog.slice(start, start + 1000).map((id) => ({ id, customerId: 'A', weight: 16, hints: packHints({ cacheMissed: true }) })),
      );
    }
    const perHeldJob = ((await usedMemory()) - before) / (backlog.length - 16);
    // A zset entry and a hash entry for its hints cost ~290 bytes a job (before lanes were lists).
    expect(perHeldJob).toBeLessThan(60);
    expect(await redis.exists(`${key}:fair:info`)).toBe(0);

    const { released } = await fair.releaseBatch(key, [{ id: backlog[0]!, customerId: 'A', workMs: 1 }]);
    expect(released.map((job) => job.id)).toEqual([backlog[16]]);
    expect(unpackHints(released[0]!.hints)).toEqual({ cacheMissed: true });
  });
});
