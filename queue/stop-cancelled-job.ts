import type { JobRecord } from '../db/entities/job-record.entity.js';
import { cancelChannel } from '../lib/channels.js';
import type { RedisClient } from '../lib/redis.js';
import type { JobQueues } from './queues.js';
import type { PendingEnqueues } from './pending-enqueues.js';

/**
 * Stops a job whose row was just cancelled. Queued or delayed: its BullMQ job leaves the queue. Active
 * (locked): removing fails, so the workers are told to abort its processor. A bundle's member (queue/bundles.ts)
 * has no BullMQ job of its own: its bundle skips it when it runs, and a worker running it now aborts it.
 * A job submitted moments ago through this process may still be on its way to Redis: its add is awaited first.
 */
export async function stopCancelledJob(
  deps: { queues: JobQueues; redis: RedisClient; queuePrefix: string; pendingEnqueues?: PendingEnqueues },
  job: Pick<JobRecord, 'id' | 'type' | 'queueJobId' | 'bundleId'>,
): Promise<void> {
  await deps.pendingEnqueues?.settled(job.id);
  const abort = (id: string) => deps.redis.publish(cancelChannel(deps.queuePrefix), id);
  const bullJob = await deps.queues.forJob(job.type, job.id).getJob(job.queueJobId ?? job.id);
  if (bullJob) await bullJob.remove().catch(() => abort(bullJob.id as string));
  else if (job.bundleId) await abort(job.id);
}
