import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type RedisClient } from '../../lib/redis.js';
import { startLocalRedisCluster, type LocalRedisCluster } from '../helpers/redis-cluster.js';

/**
 * The request-path cluster client (`createRedis(target)`) across a `CLUSTER FAILOVER`: the demoted master
 * answers MOVED for all of its slots, and the client must follow that for commands sent together in one
 * event-loop turn too. /ready sends PING (no key, so ioredis routes it by the slot of "undefined", 1808) and
 * the heartbeat read (slot 2466 of `{workers}`) together; both slots lie in the first master's range.
 */
let cluster: LocalRedisCluster;
let client: RedisClient;

beforeAll(async () => {
  cluster = await startLocalRedisCluster(3, { replicas: 1, nodeTimeoutMs: 1500 });
  client = createRedis({ nodes: cluster.nodes.split(',').map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })) });
}, 120_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

describe('cluster client after a manual failover', () => {
  it('follows MOVED for commands of different slots sent in the same turn', async () => {
    const key = 'failover-test:{workers}:heartbeats';
    await client.zadd(key, 1, 'a');
    const victim = await cluster.masterOfSlot(await cluster.keySlot(key));
    expect(victim).toBe(await cluster.masterOfSlot(await cluster.keySlot('undefined')));
    // The client's slot map names the victim for both slots.
    expect(await Promise.all([client.ping(), client.zrangebyscore(key, '-inf', '+inf')])).toEqual(['PONG', ['a']]);

    const replica = await cluster.replicaOf(victim);
    await cluster.failover(replica);
    await cluster.waitUntilMaster(replica);

    // Several rounds, as /ready polls: a client whose batch got MOVED errors back and kept its stale slot
    // map fails every one of them.
    for (let round = 0; round < 5; round++) {
      expect(await Promise.all([client.ping(), client.zrangebyscore(key, '-inf', '+inf'), client.get('failover-test:other')])).toEqual([
        'PONG',
        ['a'],
        null,
      ]);
    }
  }, 60_000);
});
