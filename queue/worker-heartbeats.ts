import type { RedisClient } from '../lib/redis.js';

/**
 * Worker heartbeats as readers see them: the keys each worker process writes (workers/heartbeat.ts) and
 * the read GET /ready makes (api/worker-readiness.ts). Both sides take the names from here.
 */

/** How often a worker process announces itself. */
export const heartbeatIntervalMs = 5000;
/** A heartbeat older than this (three missed beats) means the process is gone or its event loop is stuck. */
export const heartbeatTtlMs = 15_000;

/** What a worker process writes every beat. Times are epoch milliseconds. */
export interface WorkerHeartbeat {
  /** `<hostname>-<pid>`. */
  id: string;
  at: number;
  /** When this process last started or finished a job; null before its first job. */
  lastProgressAt: number | null;
}

/**
 * `${prefix}:{workers}:heartbeat:<hostname-pid>`, expiring after heartbeatTtlMs. The `{workers}` hash tag puts
 * every heartbeat and the index in one slot, so a beat (MULTI) and the readers' MGET work on a Redis Cluster.
 */
export const heartbeatKey = (prefix: string, id: string): string => `${prefix}:{workers}:heartbeat:${id}`;
/** Sorted set of worker ids scored by their last beat, so readers find heartbeats without SCAN. */
export const heartbeatIndexKey = (prefix: string): string => `${prefix}:{workers}:heartbeats`;

/** Heartbeats of worker processes that beat within the last heartbeatTtlMs. */
export async function liveWorkers(redis: RedisClient, prefix: string, now = Date.now()): Promise<WorkerHeartbeat[]> {
  const ids = await redis.zrangebyscore(heartbeatIndexKey(prefix), now - heartbeatTtlMs, '+inf');
  if (ids.length === 0) return [];
  const values = await redis.mget(...ids.map((id) => heartbeatKey(prefix, id)));
  return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as WorkerHeartbeat);
}
