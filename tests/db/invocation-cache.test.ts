import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { InvocationCache } from '../../db/invocation-cache.js';
import { createRedis } from '../../lib/redis.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { testRedisTarget } from '../helpers/redis-target.js';

const redis = createRedis(testRedisTarget(), 'commands');
const prefix = `{t-cache-${randomBytes(4).toString('hex')}}`;

afterAll(async () => {
  await deleteKeys(redis, `${prefix}*`);
  await redis.quit();
});

describe('invocation cache', () => {
  it('answers a stored result for the same owner, substrate and parameters, in any key order', async () => {
    const cache = new InvocationCache(redis, prefix);
    await cache.set('customer-a', '0x0000000000000001', { x: 1, y: 2 }, 3);
    expect(await cache.get('customer-a', '0x0000000000000001', { y: 2, x: 1 })).toEqual({ value: 3 });
    expect(await cache.get('customer-b', '0x0000000000000001', { x: 1, y: 2 })).toBeNull();
    expect(await cache.get('customer-a', '0x0000000000000001', { x: 1, y: 3 })).toBeNull();
  });

  it('keeps at most maxEntriesPerSubstrate results per substrate, the newest always among them, with an expiry', async () => {
    const cache = new InvocationCache(redis, prefix, { maxEntriesPerSubstrate: 3, ttlSeconds: 60 });
    const key = `${prefix}:cache:invoke:customer-a:0x0000000000000002`;
    for (let x = 0; x < 20; x++) {
      await cache.set('customer-a', '0x0000000000000002', { x }, x * 10);
      expect(await cache.get('customer-a', '0x0000000000000002', { x })).toEqual({ value: x * 10 });
      expect(await redis.hlen(key)).toBeLessThanOrEqual(3);
    }
    const hits = await Promise.all(Array.from({ length: 20 }, (_, x) => cache.get('customer-a', '0x0000000000000002', { x })));
    expect(hits.filter((hit) => hit !== null)).toHaveLength(3);
    expect(await redis.ttl(key)).toBeGreaterThan(0);
    // Another substrate has room of its own.
    await cache.set('customer-a', '0x0000000000000003', { x: 9 }, 90);
    expect(await cache.get('customer-a', '0x0000000000000003', { x: 9 })).toEqual({ value: 90 });
  });

  it('forgets a substrate’s results when it is invalidated', async () => {
    const cache = new InvocationCache(redis, prefix);
    await cache.set('customer-a', '0x0000000000000004', { x: 1 }, 1);
    await cache.invalidate('customer-a', '0x0000000000000004');
    expect(await cache.get('customer-a', '0x0000000000000004', { x: 1 })).toBeNull();
  });
});
