import type { RedisClient } from '../lib/redis.js';
import type { JobQueue } from '../queue/queues.js';

/**
 * Removes finished jobs from a queue's completed set in one script call: an id still in the set leaves it
 * with its job hash and the keys BullMQ keeps beside it (as BullMQ's own retention trim does); an id no
 * longer there (retried, or removed meanwhile) is left alone. Our jobs have no parents, children or
 * deduplication ids, so nothing else refers to them.
 * KEYS[1] the completed set, KEYS[2] the queue's key prefix (`<prefix>:<queue>:`, the same hash tag, so
 * one slot on a cluster too); ARGV the ids. Returns how many were removed.
 */
const trimCompletedLua = `
local removed = 0
for i = 1, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local jobKey = KEYS[2] .. id
    redis.call('DEL', jobKey, jobKey .. ':logs', jobKey .. ':dependencies', jobKey .. ':processed', jobKey .. ':failed',
      jobKey .. ':unsuccessful')
    removed = removed + 1
  end
end
return removed
`;

/** Removes these ids from `queue`'s completed set (those still in it) and their job keys; returns how many. */
export async function trimCompleted(redis: RedisClient, queue: JobQueue, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  // EVAL rather than a defined command: a defined command's EVALSHA → EVAL fallback inside ioredis's auto-pipeline
  // can leave its promise unsettled (seen with FAIR_SHARING on), which would hang the sweeper's stop.
  return (await redis.eval(trimCompletedLua, 2, queue.toKey('completed'), queue.toKey(''), ...ids)) as number;
}
