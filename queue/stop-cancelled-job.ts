import type { JobRecord } from '../db/entities/job-record.entity.js';
import { cancelChannel } from '../lib/channels.js';
import type { RedisClient } from '../lib/redis.js';
import type { JobQueues } from './queues.js';

/**
 * Stops a job whose row was just cancelled. Queued or delayed: its BullMQ job leaves the queue. Active
 * (locked): removing fails, so the workers are told to abort its processor. A bundle's member (queue/bundles.ts)
 * has no BullMQ job of its own: its bundle skips it when it runs, and a worker running it now aborts it.
 */
export async function stopCancelledJob(
  deps: { queues: JobQueues; redis: RedisClient; queuePrefix: string },
  job: Pick<JobRecord, 'id' | 'type' | 'queueJobId' | 'bundleId'>,
): Promise<void> {
  const abort = (id: string) => deps.redis.publish(cancelChannel(deps.queuePrefix), id);
  const bullJob = await deps.queues.forJob(job.type, job.id).getJob(job.queueJobId ?? job.id);
  if (bullJob) await bullJob.remove().catch(() => abort(bullJob.id as string));
  else if (job.bundleId) await abort(job.id);
}
