import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { InvocationCache } from '../../db/invocation-cache.js';
import { createRedis } from '../../lib/redis.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { testRedisTarget } from '../helpers/redis-target.js';

const redis = createRedis(testRedisTarget(), 'commands');
const prefix = `{t-cache-${randomBytes(4).toString('hex')}}`;
const keyOf = (customerId: string) => `${prefix}:cache:invoke:${customerId}`;
const substrate = (n: number) => `0x${n.toString(16).padStart(16, '0')}`;

afterAll(async () => {
  await deleteKeys(redis, `${prefix}*`);
  await redis.quit();
});

/** What the hash's entries and epochs take by the cache's own count (name + value + 64 each), recomputed from scratch. */
async function recount(key: string): Promise<number> {
  const all = await redis.hgetall(key);
  let bytes = 0;
  for (const [field, value] of Object.entries(all)) {
    if (field === '#bytes') continue;
    bytes += Buffer.byteLength(field) + (field.startsWith('e:') ? 20 : Buffer.byteLength(value)) + 64;
  }
  return bytes;
}

describe('invocation cache', () => {
  it('answers a stored result for the same owner, substrate and parameters, in any key order', async () => {
    const cache = new InvocationCache(redis, prefix);
    await cache.set('customer-a', substrate(1), { x: 1, y: 2 }, 3);
    expect(await cache.get('customer-a', substrate(1), { y: 2, x: 1 })).toEqual({ value: 3 });
    expect(await cache.get('customer-b', substrate(1), { x: 1, y: 2 })).toBeNull();
    expect(await cache.get('customer-a', substrate(2), { x: 1, y: 2 })).toBeNull();
    expect(await cache.get('customer-a', substrate(1), { x: 1, y: 3 })).toBeNull();
  });

  it('keeps a customer’s results within maxBytesPerCustomer across its substrates, the newest always among them', async () => {
    const budget = 32 * 1024;
    const cache = new InvocationCache(redis, prefix, { maxBytesPerCustomer: budget, ttlSeconds: 60 });
    const key = keyOf('customer-budget');
    await cache.set('customer-other', substrate(1), { x: 0 }, 'theirs');
    const otherBefore = await redis.hgetall(keyOf('customer-other'));
    const result = (x: number) => `${x}:${'r'.repeat(1000)}`; // ~1 KiB of JSON each
    // One at a time (one entry per script call)...
    for (let x = 0; x < 100; x++) {
      await cache.set('customer-budget', substrate(x % 4), { x }, result(x));
      expect(await cache.get('customer-budget', substrate(x % 4), { x })).toEqual({ value: result(x) });
      expect(Number(await redis.hget(key, '#bytes'))).toBeLessThanOrEqual(budget);
    }
    // ...and all at once (batched: many entries per script call).
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => cache.set('customer-budget', substrate(i % 4), { x: 100 + i }, result(100 + i))),
    );
    const counted = Number(await redis.hget(key, '#bytes'));
    expect(counted).toBeLessThanOrEqual(budget);
    expect(counted).toBe(await recount(key));
    // The count tracks Redis's real memory for the key, not only the payload.
    const memory = (await redis.call('memory', 'usage', key, 'samples', '0')) as number;
    expect(memory).toBeLessThanOrEqual(budget * 1.1);
    expect(await cache.get('customer-budget', substrate(199 % 4), { x: 199 })).toEqual({ value: result(199) });
    const hits = await Promise.all(Array.from({ length: 200 }, (_, x) => cache.get('customer-budget', substrate(x % 4), { x })));
    // Random replacement uses the budget rather than emptying the hash: ~28 results of ~1.1 KiB fit in 32 KiB.
    expect(hits.filter((hit) => hit !== null).length).toBeGreaterThanOrEqual(20);
    // Another customer's cache is untouched.
    expect(await redis.hgetall(keyOf('customer-other'))).toEqual(otherBefore);
    expect(await cache.get('customer-other', substrate(1), { x: 0 })).toEqual({ value: 'theirs' });
  });

  it('counts a replaced result once', async () => {
    const cache = new InvocationCache(redis, prefix);
    const key = keyOf('customer-replace');
    await cache.set('customer-replace', substrate(1), { x: 1 }, 'a'.repeat(500));
    const once = Number(await redis.hget(key, '#bytes'));
    for (let i = 0; i < 10; i++) await cache.set('customer-replace', substrate(1), { x: 1 }, 'b'.repeat(500));
    expect(Number(await redis.hget(key, '#bytes'))).toBe(once);
    expect(await cache.get('customer-replace', substrate(1), { x: 1 })).toEqual({ value: 'b'.repeat(500) });
  });

  it('forgets only the invalidated substrate’s results, and caches it again afterwards', async () => {
    const cache = new InvocationCache(redis, prefix);
    await cache.set('customer-inv', substrate(4), { x: 1 }, 'a1');
    await cache.set('customer-inv', substrate(5), { x: 1 }, 'b1');
    await cache.invalidate('customer-inv', substrate(4));
    expect(await cache.get('customer-inv', substrate(4), { x: 1 })).toBeNull();
    expect(await cache.get('customer-inv', substrate(5), { x: 1 })).toEqual({ value: 'b1' });
    await cache.set('customer-inv', substrate(4), { x: 1 }, 'a2');
    expect(await cache.get('customer-inv', substrate(4), { x: 1 })).toEqual({ value: 'a2' });
    await cache.invalidate('customer-inv', substrate(4));
    expect(await cache.get('customer-inv', substrate(4), { x: 1 })).toBeNull();
    expect(Number(await redis.hget(keyOf('customer-inv'), '#bytes'))).toBe(await recount(keyOf('customer-inv')));
  });

  it('gives the hash an expiry, refreshed by each store, and never creates one without it', async () => {
    const cache = new InvocationCache(redis, prefix, { ttlSeconds: 60 });
    const key = keyOf('customer-ttl');
    await cache.set('customer-ttl', substrate(6), { x: 1 }, 1);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    await redis.expire(key, 10);
    await cache.set('customer-ttl', substrate(6), { x: 2 }, 2);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    await cache.invalidate('customer-ttl', substrate(6));
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    // Invalidating a customer with nothing cached creates no key (it would have no expiry).
    await cache.invalidate('customer-nothing', substrate(6));
    expect(await redis.exists(keyOf('customer-nothing'))).toBe(0);
  });

  it('does not store a result over maxValueBytes', async () => {
    const cache = new InvocationCache(redis, prefix, { maxValueBytes: 100 });
    let skipped = 0;
    cache.onSkip = () => skipped++;
    expect(await cache.set('customer-big', substrate(7), { x: 1 }, 'z'.repeat(200))).toBe(false);
    expect(skipped).toBe(1);
    expect(await cache.get('customer-big', substrate(7), { x: 1 })).toBeNull();
    expect(await redis.exists(keyOf('customer-big'))).toBe(0);
    expect(await cache.set('customer-big', substrate(7), { x: 2 }, 'z'.repeat(50))).toBe(true);
    expect(await cache.get('customer-big', substrate(7), { x: 2 })).toEqual({ value: 'z'.repeat(50) });
  });

  it('treats a Redis it cannot reach as a miss', async () => {
    const down = createRedis('redis://127.0.0.1:1', 'commands');
    down.on('error', () => undefined);
    const cache = new InvocationCache(down, prefix);
    let misses = 0;
    cache.onLookup = (hit) => void (hit || misses++);
    await expect(cache.set('customer-a', substrate(1), { x: 1 }, 1)).resolves.toBe(true);
    await expect(cache.get('customer-a', substrate(1), { x: 1 })).resolves.toBeNull();
    expect(misses).toBe(1);
    down.disconnect();
  });
});
