import type { Job, JobType, Queue } from 'bullmq';
import type { RedisClient } from '../../lib/redis.js';
import { deleteKeys } from './redis-cluster.js';
import type { JobQueues, QueuedJobData } from '../../queue/queues.js';

/**
 * Reading the sharded queue layout from tests: a job type's queues are its shards (`{invoke.0}` …), and a
 * job lives on the shard its id names (`queues.forJob`). These keep tests from repeating the sums.
 */

/** A type's job counts summed over its shards (`getJobCounts` per queue). */
export async function jobCounts(queues: JobQueues, type: string, ...states: JobType[]): Promise<Record<string, number>> {
  const perQueue = await Promise.all(queues.ofType(type).map((queue) => queue.getJobCounts(...states)));
  const total: Record<string, number> = {};
  for (const counts of perQueue) for (const [state, count] of Object.entries(counts)) total[state] = (total[state] ?? 0) + count;
  return total;
}

/** The BullMQ job of row `id` of `type`, from its shard. */
export async function bullJob(queues: JobQueues, type: string, id: string): Promise<Job<QueuedJobData> | undefined> {
  return queues.forJob(type, id).getJob(id);
}

/** Every queue the API knows: the job types' shards and the internal ones it was given. */
export function everyQueue(deps: { queues: JobQueues; webhookQueue: Queue; scheduleTicks: Queue }): Queue[] {
  return [...deps.queues.all(), deps.webhookQueue, deps.scheduleTicks] as Queue[];
}

/** Pauses every shard of `type` (no worker takes its jobs until resumed). */
export async function pauseType(queues: JobQueues, type: string): Promise<void> {
  await Promise.all(queues.ofType(type).map((queue) => queue.pause()));
}

/** Empties every shard of `type` in Redis, as a Redis restart without persistence would: its BullMQ keys and its fair-sharing state. */
export async function obliterateType(queues: JobQueues, type: string): Promise<void> {
  for (const queue of queues.ofType(type)) {
    await queue.obliterate({ force: true });
    // The connection the queues were made with (createQueues passes an ioredis client, or a cluster client).
    await deleteKeys(queue.opts.connection as unknown as RedisClient, `${queue.qualifiedName}:fair:*`);
  }
}
