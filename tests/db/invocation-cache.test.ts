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

/** The substrate's epoch as a miss reads it (no entry has these parameters). */
async function epochOf(cache: InvocationCache, customerId: string, substrateId: string) {
  const found = await cache.lookup(customerId, substrateId, { '#epoch': true });
  return 'epoch' in found ? found.epoch : null;
}

/** Stores a result as a worker does: under the epoch read before evaluating (here, just before). */
async function store(cache: InvocationCache, customerId: string, substrateId: string, parameters: Record<string, unknown>, value: unknown) {
  return cache.set(customerId, substrateId, parameters, value, await epochOf(cache, customerId, substrateId));
}

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
    await store(cache, 'customer-a', substrate(1), { x: 1, y: 2 }, 3);
    expect(await cache.get('customer-a', substrate(1), { y: 2, x: 1 })).toEqual({ value: 3 });
    expect(await cache.get('customer-b', substrate(1), { x: 1, y: 2 })).toBeNull();
    expect(await cache.get('customer-a', substrate(2), { x: 1, y: 2 })).toBeNull();
    expect(await cache.get('customer-a', substrate(1), { x: 1, y: 3 })).toBeNull();
  });

  it('keeps a customer’s results within maxBytesPerCustomer across its substrates, the newest always among them', async () => {
    const budget = 32 * 1024;
    const cache = new InvocationCache(redis, prefix, { maxBytesPerCustomer: budget, ttlSeconds: 60 });
    const key = keyOf('customer-budget');
    await store(cache, 'customer-other', substrate(1), { x: 0 }, 'theirs');
    const otherBefore = await redis.hgetall(keyOf('customer-other'));
    const result = (x: number) => `${x}:${'r'.repeat(1000)}`; // ~1 KiB of JSON each
    // One at a time (one entry per script call)...
    for (let x = 0; x < 100; x++) {
      await store(cache, 'customer-budget', substrate(x % 4), { x }, result(x));
      expect(await cache.get('customer-budget', substrate(x % 4), { x })).toEqual({ value: result(x) });
      expect(Number(await redis.hget(key, '#bytes'))).toBeLessThanOrEqual(budget);
    }
    // ...and all at once (batched: many entries per script call).
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => store(cache, 'customer-budget', substrate(i % 4), { x: 100 + i }, result(100 + i))),
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
    await store(cache, 'customer-replace', substrate(1), { x: 1 }, 'a'.repeat(500));
    const once = Number(await redis.hget(key, '#bytes'));
    for (let i = 0; i < 10; i++) await store(cache, 'customer-replace', substrate(1), { x: 1 }, 'b'.repeat(500));
    expect(Number(await redis.hget(key, '#bytes'))).toBe(once);
    expect(await cache.get('customer-replace', substrate(1), { x: 1 })).toEqual({ value: 'b'.repeat(500) });
  });

  it('forgets only the invalidated substrate’s results, and caches it again afterwards', async () => {
    const cache = new InvocationCache(redis, prefix);
    await store(cache, 'customer-inv', substrate(4), { x: 1 }, 'a1');
    await store(cache, 'customer-inv', substrate(5), { x: 1 }, 'b1');
    await cache.invalidate('customer-inv', substrate(4));
    expect(await cache.get('customer-inv', substrate(4), { x: 1 })).toBeNull();
    expect(await cache.get('customer-inv', substrate(5), { x: 1 })).toEqual({ value: 'b1' });
    await store(cache, 'customer-inv', substrate(4), { x: 1 }, 'a2');
    expect(await cache.get('customer-inv', substrate(4), { x: 1 })).toEqual({ value: 'a2' });
    await cache.invalidate('customer-inv', substrate(4));
    expect(await cache.get('customer-inv', substrate(4), { x: 1 })).toBeNull();
    expect(Number(await redis.hget(keyOf('customer-inv'), '#bytes'))).toBe(await recount(keyOf('customer-inv')));
  });

  it('gives the hash an expiry, refreshed by each store and epoch move, and never creates one without it', async () => {
    const cache = new InvocationCache(redis, prefix, { ttlSeconds: 60 });
    const key = keyOf('customer-ttl');
    await store(cache, 'customer-ttl', substrate(6), { x: 1 }, 1);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    await redis.expire(key, 10);
    await store(cache, 'customer-ttl', substrate(6), { x: 2 }, 2);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    await redis.expire(key, 10);
    await cache.invalidate('customer-ttl', substrate(6));
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    // A customer with nothing cached still gets the epoch recorded (a store may follow), with an expiry.
    await cache.markDeleted('customer-nothing', substrate(6));
    expect(await redis.ttl(keyOf('customer-nothing'))).toBeGreaterThan(50);
    expect(Number(await redis.hget(keyOf('customer-nothing'), '#bytes'))).toBe(await recount(keyOf('customer-nothing')));
    // Marking created reads only: it neither creates a key nor adds an epoch to one.
    await cache.markCreated('customer-none-at-all', [substrate(6)]);
    expect(await redis.exists(keyOf('customer-none-at-all'))).toBe(0);
    await cache.markCreated('customer-ttl', [substrate(60)]);
    expect(await redis.hexists(key, `e:${substrate(60)}`)).toBe(0);
  });

  it('drops a store whose epoch a change, a delete or a re-creation moved after it was read, however late it lands', async () => {
    const cache = new InvocationCache(redis, prefix);
    const customer = 'customer-late';
    const late = async (move: () => Promise<void>, parameters: Record<string, unknown>) => {
      const epoch = await epochOf(cache, customer, substrate(8));
      await move();
      await cache.set(customer, substrate(8), parameters, 'late', epoch);
      return cache.get(customer, substrate(8), parameters);
    };
    expect(await late(() => cache.invalidate(customer, substrate(8)), { x: 1 })).toBeNull();
    expect(await late(() => cache.markDeleted(customer, substrate(8)), { x: 2 })).toBeNull();
    // While deleted nothing is stored, even under the epoch read after the delete.
    expect(await late(async () => undefined, { x: 3 })).toBeNull();
    // Read while deleted, stored once created again: the evaluation began before the substrate existed.
    expect(await late(() => cache.markCreated(customer, [substrate(8)]), { x: 4 })).toBeNull();
    // Deleted and created again between the read and the store: the predecessor's result is not the new one's.
    const deletedAndCreated = async () => {
      await cache.markDeleted(customer, substrate(8));
      await cache.markCreated(customer, [substrate(8)]);
    };
    expect(await late(deletedAndCreated, { x: 5 })).toBeNull();
    // Nothing moved in between: cached, and another substrate was never affected.
    expect(await late(async () => undefined, { x: 6 })).toEqual({ value: 'late' });
    await store(cache, customer, substrate(9), { x: 1 }, 'other');
    await cache.markDeleted(customer, substrate(8));
    expect(await cache.get(customer, substrate(9), { x: 1 })).toEqual({ value: 'other' });
    expect(Number(await redis.hget(keyOf(customer), '#bytes'))).toBe(await recount(keyOf(customer)));
  });

  it('takes an epoch the earlier scheme left (a count of invalidations) for a live substrate’s', async () => {
    const cache = new InvocationCache(redis, prefix);
    await redis.hset(keyOf('customer-earlier'), `e:${substrate(11)}`, '1', `e:${substrate(12)}`, '2');
    await redis.expire(keyOf('customer-earlier'), 60);
    expect(await store(cache, 'customer-earlier', substrate(11), { x: 1 }, 'one')).toBe(true);
    expect(await store(cache, 'customer-earlier', substrate(12), { x: 1 }, 'two')).toBe(true);
    expect(await cache.get('customer-earlier', substrate(11), { x: 1 })).toEqual({ value: 'one' });
    expect(await cache.get('customer-earlier', substrate(12), { x: 1 })).toEqual({ value: 'two' });
    await cache.markDeleted('customer-earlier', substrate(11));
    expect(await epochOf(cache, 'customer-earlier', substrate(11))).toBe('-2');
  });

  it('answers a lookup with the epoch to store under, the same for all of a substrate’s parameters', async () => {
    const cache = new InvocationCache(redis, prefix);
    const customer = 'customer-lookup';
    const missed = await cache.lookup(customer, substrate(10), { x: 1 });
    expect(missed).toEqual({ epoch: '0' });
    await cache.markDeleted(customer, substrate(10));
    await cache.markCreated(customer, [substrate(10)]);
    const [first, second] = await Promise.all([cache.lookup(customer, substrate(10), { x: 1 }), epochOf(cache, customer, substrate(10))]);
    expect(first).toEqual({ epoch: '2' });
    expect(second).toBe('2');
    await cache.set(customer, substrate(10), { x: 1 }, 11, '2');
    expect(await cache.lookup(customer, substrate(10), { x: 1 })).toEqual({ value: 11 });
  });

  it('does not store a result over maxValueBytes', async () => {
    const cache = new InvocationCache(redis, prefix, { maxValueBytes: 100 });
    let skipped = 0;
    cache.onSkip = () => skipped++;
    expect(await store(cache, 'customer-big', substrate(7), { x: 1 }, 'z'.repeat(200))).toBe(false);
    expect(skipped).toBe(1);
    expect(await cache.get('customer-big', substrate(7), { x: 1 })).toBeNull();
    expect(await redis.exists(keyOf('customer-big'))).toBe(0);
    expect(await store(cache, 'customer-big', substrate(7), { x: 2 }, 'z'.repeat(50))).toBe(true);
    expect(await cache.get('customer-big', substrate(7), { x: 2 })).toEqual({ value: 'z'.repeat(50) });
  });

  it('treats a Redis it cannot reach as a miss', async () => {
    const down = createRedis('redis://127.0.0.1:1', 'commands');
    down.on('error', () => undefined);
    const cache = new InvocationCache(down, prefix);
    let misses = 0;
    cache.onLookup = (hit) => void (hit || misses++);
    // No epoch could be read, so nothing is offered to store.
    await expect(store(cache, 'customer-a', substrate(1), { x: 1 }, 1)).resolves.toBe(false);
    await expect(cache.get('customer-a', substrate(1), { x: 1 })).resolves.toBeNull();
    expect(misses).toBe(2); // the store's epoch read is a lookup too
    down.disconnect();
  });
});
