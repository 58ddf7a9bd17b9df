import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';
import { createRedis } from '../../lib/redis.js';
import { customerRedisShare, redisBytesPerJob } from '../../queue/redis-share.js';
import { inlinePayloadMaxBytes } from '../../queue/queues.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { testRedisTarget } from '../helpers/redis-target.js';

const redis = createRedis(testRedisTarget(), 'commands');
const prefix = `{t-share-${randomBytes(4).toString('hex')}}`;

afterAll(async () => {
  await deleteKeys(redis, `${prefix}*`);
  await redis.quit();
});

const memoryUsage = async (key: string) => Number((await redis.call('memory', 'usage', key, 'samples', '0')) ?? 0);

describe("a customer's share of Redis", () => {
  it('allows for what a queued job with the largest payload it may carry takes in Redis', async () => {
    const queue = new Queue('invoke', { connection: redis, prefix });
    const jobs = 200;
    const ids = Array.from({ length: jobs }, () => randomUUID());
    const payload = { substrate_id: '0x0123456789abcdef', parameters: { s: 'x'.repeat(inlinePayloadMaxBytes - 80) } };
    expect(JSON.stringify(payload).length).toBeLessThanOrEqual(inlinePayloadMaxBytes);
    await queue.addBulk(
      ids.map((id) => ({
        name: 'invoke',
        data: { customerId: randomUUID(), payload, notify: true },
        opts: { jobId: id, attempts: 3, delay: 3_600_000 },
      })),
    );
    // The jobs' hashes, and their share of the delayed set and of the event stream they wrote to.
    let bytes = 0;
    for (const id of ids) bytes += await memoryUsage(queue.toKey(id));
    bytes += (await memoryUsage(queue.toKey('delayed'))) + (await memoryUsage(queue.toKey('events')));
    const perJob = bytes / jobs;
    expect(perJob).toBeGreaterThan(inlinePayloadMaxBytes);
    expect(perJob).toBeLessThanOrEqual(redisBytesPerJob(inlinePayloadMaxBytes));
    await queue.close();
  });

  it('adds up the queued, active and cache parts of a tier', () => {
    const config = {
      tierMaxQueued: { starter: 1000, pro: 20_000, enterprise: 100_000 },
      tierMaxActive: { starter: 50, pro: 500, enterprise: 5000 },
      invocationCacheMaxBytesPerCustomer: 8 * 2 ** 20,
    };
    const starter = customerRedisShare(config, 'starter');
    expect(starter.queued).toBe(1000 * redisBytesPerJob(inlinePayloadMaxBytes));
    expect(starter.total).toBe(starter.queued + starter.active + starter.cache);
    // A starter customer fills well under a tenth of a 512 MB Redis.
    expect(starter.total).toBeLessThan(512 * 2 ** 20 * 0.1);
    expect(customerRedisShare(config, 'pro').total).toBeGreaterThan(starter.total);
  });
});

describe('INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER', () => {
  const services = { DATABASE_URL: 'postgresql://127.0.0.1:5432/unused', REDIS_URL: 'redis://127.0.0.1:6379', DATA_DIR: '.data/test' };

  it('defaults to 8 MiB, and the share follows what is set', () => {
    expect(loadConfig(services).invocationCacheMaxBytesPerCustomer).toBe(8 * 2 ** 20);
    const small = loadConfig({ ...services, INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER: '1048576' });
    expect(customerRedisShare(small, 'starter').cache).toBe(Math.ceil(1048576 * 1.1));
  });

  it.each(['-1', 'lots', '1.5', String(2 * 2 ** 30)])('refuses %s, naming the variable', (value) => {
    const load = () => loadConfig({ ...services, INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER: value });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/INVOCATION_CACHE_MAX_BYTES_PER_CUSTOMER/);
  });
});
