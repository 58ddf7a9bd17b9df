import type { RedisClient } from '../lib/redis.js';
import { liveWorkers } from '../queue/worker-heartbeats.js';
import type { JobQueues } from '../queue/queues.js';

/**
 * A backlog whose oldest job has waited this long while no worker started or finished any job for as
 * long means the workers are alive but not consuming: /ready turns red. One minute is far above the
 * time any queue waits while workers take jobs, and far below the time a stuck fleet goes unnoticed.
 */
export const stuckAfterMs = 60_000;

export type WorkerReadiness = { ok: true; workers: number } | { ok: false; error: string };

/**
 * "The workers are consuming": at least one worker process beat within the last 15 s (see
 * queue/worker-heartbeats.ts), and — when a job has been waiting longer than `stuckAfterMs` — some worker
 * started or finished a job within that time. A deep backlog that is being worked through stays green;
 * a backlog nobody touches turns red.
 */
export async function checkWorkersConsuming(
  redis: RedisClient,
  queues: JobQueues,
  prefix: string,
  now = Date.now(),
): Promise<WorkerReadiness> {
  const workers = await liveWorkers(redis, prefix, now);
  if (workers.length === 0) return { ok: false, error: 'no worker process has sent a heartbeat in the last 15 s' };
  const lastProgress = Math.max(0, ...workers.map((worker) => worker.lastProgressAt ?? 0));
  if (now - lastProgress < stuckAfterMs) return { ok: true, workers: workers.length };

  const oldestWaiting = await oldestWaitingJobTimestamp(queues);
  if (oldestWaiting !== null && now - oldestWaiting > stuckAfterMs) {
    const waited = Math.round((now - oldestWaiting) / 1000);
    const idle =
      lastProgress === 0
        ? 'none has started a job yet'
        : `none has started or finished a job for ${Math.round((now - lastProgress) / 1000)} s`;
    return { ok: false, error: `jobs have waited ${waited} s; ${workers.length} worker process(es) are alive but ${idle}` };
  }
  return { ok: true, workers: workers.length };
}

/** When the oldest job waiting in any queue was added (BullMQ keeps the oldest at the tail of `wait`). */
async function oldestWaitingJobTimestamp(queues: JobQueues): Promise<number | null> {
  const oldest = await Promise.all(queues.all().map(async (queue) => (await queue.getJobs(['wait'], 0, 0, true))[0]?.timestamp ?? null));
  const timestamps = oldest.filter((value): value is number => value !== null);
  return timestamps.length === 0 ? null : Math.min(...timestamps);
}
