import type { JobRecord } from '../db/entities/job-record.entity.js';
import { cancelChannel } from '../lib/channels.js';
import type { RedisClient } from '../lib/redis.js';
import { eventStreamMaxLen, type JobQueue, type JobQueues } from './queues.js';
import type { PendingEnqueues } from './pending-enqueues.js';
import type { FairQueues } from './fair-share/fair-queues.js';

export interface StopDeps {
  queues: JobQueues;
  redis: RedisClient;
  queuePrefix: string;
  pendingEnqueues?: PendingEnqueues;
  fair?: FairQueues | null;
}

export type CancelledJob = Pick<JobRecord, 'id' | 'type' | 'customerId' | 'queueJobId' | 'bundleId'>;

/**
 * Stops a job whose row was just cancelled. Held by fair sharing (or delayed there): it leaves its lane. Queued
 * or delayed in BullMQ: its BullMQ job leaves the queue. Active (locked): removing fails, so the workers are
 * told to abort its processor. A bundle's member (queue/bundles.ts) has no BullMQ job of its own: its bundle
 * skips it when it runs, and a worker running it now aborts it. A job submitted moments ago through this
 * process may still be on its way to Redis (its admission to a lane too): its add is awaited first.
 *
 * Without a BullMQ job to remove (held by fair sharing, a bundle's member), BullMQ announces nothing: the cancel
 * is announced on the queue's event stream as BullMQ's removal would be (`announceRemoved`), so the job's open
 * event streams (SSE) re-read its row and end with `cancelled` at once rather than at their next heartbeat.
 */
export async function stopCancelledJob(deps: StopDeps, job: CancelledJob): Promise<void> {
  await deps.pendingEnqueues?.settled(job.id);
  const queue = deps.queues.forJob(job.type, job.id);
  // A release that pops a cancelled job skips its row anyway; this frees its lane entry now.
  if (deps.fair?.of(queue)) await deps.fair.share.withdraw(queue.qualifiedName, job.id, job.customerId);
  const abort = (id: string) => deps.redis.publish(cancelChannel(deps.queuePrefix), id);
  const bullJob = await queue.getJob(job.queueJobId ?? job.id);
  if (bullJob) await bullJob.remove().catch(() => abort(bullJob.id as string));
  else {
    if (job.bundleId) await abort(job.id);
    await announceRemoved(deps.redis, queue, job.id);
  }
}

/**
 * Adds a `removed` event for job `id` to its queue's event stream, as BullMQ's removeJob does (trimmed the same
 * way, to the queue's `eventStreamMaxLen`). `prev` is `unknown`, BullMQ's word for a job in none of its states.
 * Best effort: a stream that misses it still finds the cancel in the row at its next heartbeat.
 */
async function announceRemoved(redis: RedisClient, queue: JobQueue, id: string): Promise<void> {
  await redis
    .xadd(queue.toKey('events'), 'MAXLEN', '~', eventStreamMaxLen, '*', 'event', 'removed', 'jobId', id, 'prev', 'unknown')
    .catch(() => undefined);
}

/** `stopCancelledJob` for many jobs at once (an admin's bulk cancel, an offboarding): their Redis calls go out together. */
export async function stopCancelledJobs(deps: StopDeps, jobs: readonly CancelledJob[]): Promise<void> {
  await Promise.all(jobs.map((job) => stopCancelledJob(deps, job)));
}
