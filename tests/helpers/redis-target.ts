import { inject } from 'vitest';
import type { RedisTarget } from '../../lib/redis.js';

/**
 * The Redis a test that opens its own client should use: the run's local cluster under
 * TEST_REDIS_CLUSTER=1 (as every test app does), else the single-node Redis.
 */
export function testRedisTarget(): RedisTarget {
  const nodes = inject('redisClusterNodes');
  if (!nodes) return inject('redisUrl');
  return {
    nodes: nodes.split(',').map((node) => {
      const [host, port] = node.split(':');
      return { host: host!, port: Number(port) };
    }),
  };
}

/** The environment that points a child process (a worker, the CLI) at `target`: REDIS_URL or REDIS_CLUSTER_NODES. */
export function redisEnv(target: RedisTarget): Record<string, string> {
  if (typeof target === 'string') return { REDIS_URL: target };
  return { REDIS_CLUSTER_NODES: target.nodes.map((node) => `${node.host}:${node.port}`).join(',') };
}
