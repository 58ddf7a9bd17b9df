import type { Job } from 'bullmq';
import type { QueuedJobData } from '../queue/queues.js';

export type JobOutcome =
  | { state: 'completed'; result: unknown; durationMs: number }
  | { state: 'failed'; error: string; durationMs: number; final: boolean };

/**
 * Things that happen around a job without being part of it (metrics, webhooks). Called after the
 * outcome is stored in PostgreSQL; a hook that throws is logged and never fails the job.
 */
export interface JobLifecycleHook {
  name: string;
  started?(job: Job<QueuedJobData>, type: string): void;
  finished?(job: Job<QueuedJobData>, type: string, outcome: JobOutcome): void | Promise<void>;
}
