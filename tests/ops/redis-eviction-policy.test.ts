import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../config.js';
import { assertNoEviction, assertRedisNoEviction } from '../../lib/redis-eviction-policy.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';

const logger = pino({ level: 'silent' });
let evicting: PrivateRedis;

beforeAll(async () => {
  evicting = await startPrivateRedis(['--maxmemory-policy', 'allkeys-lru']);
});

afterAll(async () => {
  await evicting?.stop();
});

/** A stand-in for a managed Redis that refuses CONFIG. */
function managedRedis(info: string): Redis {
  const refusal = Object.assign(new Error("ERR unknown command 'CONFIG'"), { name: 'ReplyError' });
  return { config: async () => Promise.reject(refusal), info: async () => info } as unknown as Redis;
}

describe('start-up Redis eviction policy check', () => {
  it('refuses a Redis whose maxmemory-policy is allkeys-lru, naming the policy and the fix', async () => {
    const refusal = assertRedisNoEviction(evicting.url, logger);
    await expect(refusal).rejects.toBeInstanceOf(ConfigError);
    await expect(refusal).rejects.toThrow(/maxmemory-policy "allkeys-lru".*noeviction/);
  });

  it('accepts a Redis set to noeviction', async () => {
    const admin = new Redis(evicting.url);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.quit();
    await expect(assertRedisNoEviction(evicting.url, logger)).resolves.toBeUndefined();
  });

  it('falls back to INFO memory when CONFIG is disabled, and still refuses an evicting policy', async () => {
    await expect(assertNoEviction(managedRedis('# Memory\r\nmaxmemory_policy:volatile-lru\r\n'), logger)).rejects.toThrow(/volatile-lru/);
    await expect(assertNoEviction(managedRedis('# Memory\r\nmaxmemory_policy:noeviction\r\n'), logger)).resolves.toBeUndefined();
  });

  it('starts with a warning when neither CONFIG nor INFO shows the policy', async () => {
    await expect(assertNoEviction(managedRedis('# Memory\r\n'), logger)).resolves.toBeUndefined();
  });
});
