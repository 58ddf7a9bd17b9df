import type { Redis } from 'ioredis';
import type { JobRecord } from './entities/job-record.entity.js';

/**
 * The Redis channel on which workers announce finished jobs that someone is waiting for
 * (`Prefer: wait`): the row exactly as stored, sent right after its commit, so the waiting API process
 * answers without reading it back and without waiting for BullMQ's own completion event.
 */
export const finishedJobsChannel = (queuePrefix: string): string => `${queuePrefix}:jobs:finished`;

/** Best effort: a waiter that misses the notice finds the row on its next poll. */
export function announceFinishedJob(redis: Redis, queuePrefix: string, job: JobRecord): void {
  redis.publish(finishedJobsChannel(queuePrefix), JSON.stringify(job)).catch(() => undefined);
}
