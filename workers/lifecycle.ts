import type { Job } from 'bullmq';
import type { JobOutcome } from '../jobs/define-job.js';
import type { QueuedJobData } from '../queue/queues.js';

export type { JobOutcome };

/**
 * Things that happen around every job without being part of it (metrics, webhooks, heartbeats). Called
 * after the outcome is stored in PostgreSQL; a hook that throws is logged and never fails the job. A job
 * type's own hooks (`defineJob({ hooks })`) run after these, for its jobs only.
 */
export interface JobLifecycleHook {
  name: string;
  started?(job: Job<QueuedJobData>, type: string): void;
  finished?(job: Job<QueuedJobData>, type: string, outcome: JobOutcome): void | Promise<void>;
}
