import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../lib/redis.js';
import { createQueues, eventStreamMaxLen } from '../../queue/queues.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { testRedisTarget } from '../helpers/redis-target.js';

let redis: Redis;
const prefix = `eventstream${process.pid}`;

beforeAll(() => {
  redis = createRedis(testRedisTarget()) as Redis;
});

afterAll(async () => {
  await deleteKeys(redis, `${prefix}:*`);
  await redis.quit();
});

describe("a queue's event stream", () => {
  it(`keeps about ${eventStreamMaxLen} events, not BullMQ's 10,000`, async () => {
    const queues = createQueues(redis, { queuePrefix: prefix, queueShards: 1 });
    try {
      const [queue] = queues.ofType('invoke');
      // Two events a job (added, waiting): 12,000 events, which BullMQ's default would trim to ~10,000.
      for (let chunk = 0; chunk < 6; chunk++) {
        await queue!.addBulk(
          Array.from({ length: 1000 }, (_, i) => ({ name: 'invoke', data: { customerId: 'c', payload: { i: chunk * 1000 + i } } })),
        );
      }
      const length = await redis.xlen(queue!.toKey('events'));
      // Trimmed approximately (MAXLEN ~): whole stream nodes of up to 100 entries go at once.
      expect(length).toBeGreaterThanOrEqual(eventStreamMaxLen);
      expect(length).toBeLessThanOrEqual(eventStreamMaxLen + 200);
    } finally {
      await Promise.all(queues.all().map((each) => each.close()));
    }
  });
});
