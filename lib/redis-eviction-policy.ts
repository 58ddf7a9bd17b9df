import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import { createRedis, dataNodes, isClusterTarget, type RedisClient, type RedisTarget } from './redis.js';

/** Redis answered the command with an error (as opposed to not answering at all). */
const isReplyError = (error: unknown): boolean => (error as { name?: string } | null)?.name === 'ReplyError';

/**
 * Refuses to start on a Redis that may evict keys: under memory pressure an evicting Redis silently drops
 * queued jobs, locks and rate-limit counters, which BullMQ cannot detect. Reads `CONFIG GET
 * maxmemory-policy`; managed services (ElastiCache, Memorystore…) often disable CONFIG, so then it reads
 * `INFO memory` and warns; if that hides the policy too, it starts with a warning.
 */
export async function assertNoEviction(redis: RedisClient, logger: Logger): Promise<void> {
  let policy: string | null = null;
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    policy = reply[1] ?? null;
  } catch (error) {
    if (!isReplyError(error))
      throw new ConfigError(`REDIS_URL: Redis did not answer (${error instanceof Error ? error.message : String(error)})`);
    const info = await redis.info('memory').catch(() => '');
    policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? null;
    logger.warn(
      { err: error, policy },
      'Redis refused CONFIG GET maxmemory-policy (managed Redis?); read the policy from INFO memory instead',
    );
  }
  if (policy === null) {
    logger.warn('could not read the Redis maxmemory-policy; make sure it is noeviction, or queued jobs may be evicted');
    return;
  }
  if (policy !== 'noeviction') {
    throw new ConfigError(
      `REDIS_URL: this Redis has maxmemory-policy "${policy}", so it may evict queued jobs under memory pressure. ` +
        'Chrysalis needs "noeviction": set `maxmemory-policy noeviction` in redis.conf (or run `CONFIG SET maxmemory-policy noeviction`, ' +
        'or pick the noeviction policy in your managed Redis parameter group).',
    );
  }
}

/**
 * `assertNoEviction` over a short-lived connection, for the start-up of the API and worker processes; on a
 * Redis Cluster, on every master (each holds its own share of the queues).
 */
export async function assertRedisNoEviction(target: RedisTarget, logger: Logger): Promise<void> {
  const redis = createRedis(target, 'commands');
  try {
    if (isClusterTarget(target)) {
      try {
        await redis.ping();
      } catch (error) {
        throw new ConfigError(
          `REDIS_CLUSTER_NODES: the Redis Cluster did not answer (${error instanceof Error ? error.message : String(error)})`,
        );
      }
    }
    for (const node of await dataNodes(redis)) await assertNoEviction(node, logger);
  } finally {
    redis.disconnect();
  }
}
