import type { Job } from 'bullmq';
import type { JobOutcome } from '../jobs/define-job.js';
import type { QueuedJobData } from '../queue/queues.js';

export type { JobOutcome };

/**
 * The job a hook hears about: a BullMQ job, or a member of a bundle (queue/bundles.ts), which has its own id
 * and data and names the BullMQ job carrying it (`carrier`).
 */
export interface HookJob extends Pick<Job<QueuedJobData>, 'id' | 'data' | 'queueQualifiedName'> {
  /** The bundle's BullMQ job when this job is one of its members. */
  readonly carrier?: Job;
}

/**
 * Things that happen around every job without being part of it (metrics, webhooks, heartbeats). Called
 * after the outcome is stored in PostgreSQL; a hook that throws is logged and never fails the job. A job
 * type's own hooks (`defineJob({ hooks })`) run after these, for its jobs only.
 */
export interface JobLifecycleHook {
  name: string;
  started?(job: HookJob, type: string): void;
  finished?(job: HookJob, type: string, outcome: JobOutcome): void | Promise<void>;
}
