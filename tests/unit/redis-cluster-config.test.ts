import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { ensureServicesForEnv } from '../../ops/local-services.js';
import { createRedis, describeRedisTarget } from '../../lib/redis.js';

const base = { NODE_ENV: 'test', DATABASE_URL: 'postgresql://127.0.0.1:5432/unused', DATA_DIR: '.data/test' };

describe('REDIS_CLUSTER_NODES', () => {
  it('names a cluster: seed nodes, NAT map, TLS and credentials; REDIS_URL is then not needed and 16 shards are the default', () => {
    const config = loadConfig({
      ...base,
      REDIS_CLUSTER_NODES: '10.0.0.1:7001, [::1]:7002,redis-c.internal:7003',
      REDIS_CLUSTER_NAT_MAP: '10.0.0.1:7001=127.0.0.1:17001',
      REDIS_CLUSTER_TLS: 'true',
      REDIS_CLUSTER_PASSWORD: 'secret',
    });
    expect(config.redis).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7001 },
        { host: '::1', port: 7002 },
        { host: 'redis-c.internal', port: 7003 },
      ],
      natMap: { '10.0.0.1:7001': { host: '127.0.0.1', port: 17001 } },
      tls: true,
      password: 'secret',
    });
    expect(config.queueShards).toBe(16);
    expect(describeRedisTarget(config.redis)).toBe('cluster 10.0.0.1:7001,::1:7002,redis-c.internal:7003');
  });

  it('wins over REDIS_URL, and QUEUE_SHARDS still overrides the default', () => {
    const config = loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7001', QUEUE_SHARDS: '32' });
    expect(config.redis).toEqual({ nodes: [{ host: '127.0.0.1', port: 7001 }] });
    expect(config.queueShards).toBe(32);
  });

  it('refuses a node that is not host:port, naming the variable and the entry', () => {
    expect(() => loadConfig({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:7001,127.0.0.1' })).toThrow(
      /REDIS_CLUSTER_NODES: "127\.0\.0\.1" is not host:port/,
    );
    expect(() => loadConfig({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:70000' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ ...base, REDIS_CLUSTER_NODES: '127.0.0.1:7001', REDIS_CLUSTER_NAT_MAP: '10.0.0.1:7001' })).toThrow(
      /REDIS_CLUSTER_NAT_MAP/,
    );
  });

  it('keeps a single Redis from REDIS_URL when unset, and asks for one of the two', () => {
    expect(loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:6379' }).redis).toBe('redis://127.0.0.1:6379');
    expect(() => loadConfig(base)).toThrow(/REDIS_URL: not set.*REDIS_CLUSTER_NODES/);
  });

  it('makes a cluster client from a cluster and a single-node client from a URL (createRedis is the one factory)', () => {
    const cluster = createRedis({ nodes: [{ host: '127.0.0.1', port: 1 }] }, 'blocking');
    const single = createRedis('redis://127.0.0.1:1', 'commands');
    try {
      expect(cluster).toBeInstanceOf(Cluster);
      expect((cluster as Cluster).options.redisOptions?.maxRetriesPerRequest).toBeNull();
      expect(single).toBeInstanceOf(Redis);
      expect((single as Redis).options.maxRetriesPerRequest).toBe(2);
    } finally {
      cluster.disconnect();
      single.disconnect();
    }
  });

  it('makes npm start leave Redis alone: no local redis-server is found or launched, REDIS_URL stays unset', async () => {
    const env: NodeJS.ProcessEnv = {
      DATABASE_URL: 'postgresql://127.0.0.1:5432/unused',
      REDIS_CLUSTER_NODES: '127.0.0.1:7001',
      DATA_DIR: '.data/test',
    };
    const services = await ensureServicesForEnv(env);
    await services.stop();
    expect(env.REDIS_URL).toBeUndefined();
    expect(loadConfig({ ...env, NODE_ENV: 'test' }).redis).toEqual({ nodes: [{ host: '127.0.0.1', port: 7001 }] });
  });
});
