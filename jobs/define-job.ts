import type { z } from 'zod';
import type { Config } from '../config.js';
import type { WebhookEvent } from '../db/entities/webhook-endpoint.entity.js';
import type { JobContext } from './context.js';
import type { TaskDeclaration } from './define-task.js';

export interface QueueDefaults {
  /** Attempts before the job fails. Default 3. */
  attempts: number;
  /** Exponential backoff base in ms. Default 1000. */
  backoffMs: number;
  /** Jobs one worker process runs at once on this type's queues (divided over its shards); default WORKER_CONCURRENCY. */
  concurrency?: number;
  /**
   * The type's jobs are spread over QUEUE_SHARDS queues by id (`{invoke.0}` … `{invoke.15}`), so a Redis
   * Cluster spreads its traffic over every master: for the hot types. Default false (one queue, `{metering}`).
   */
  sharded: boolean;
  /**
   * Jobs of one bulk submit may travel many to a BullMQ job (queue/bundles.ts, up to JOB_BUNDLE_SIZE), their
   * members run at once on one worker slot: for types whose jobs are short and light. Default false.
   */
  bundled?: boolean;
}

/**
 * How an attempt ended, as lifecycle hooks hear it (after it is stored). `final`: no retry follows.
 * `workMs`: the attempt's tasks' run time on pool threads (queue time excluded), what a fair share charges.
 */
export type JobOutcome<Result = unknown> =
  | { state: 'completed'; result: Result; durationMs: number; workMs: number }
  | { state: 'failed'; error: string; durationMs: number; workMs: number; final: boolean };

/**
 * Something a job type does around its own jobs, apart from the work (metrics of its results, say). Runs
 * in the worker after the outcome is stored; one that throws or rejects is logged and never fails the job.
 */
export interface JobTypeHook<Result = unknown> {
  name: string;
  finished(outcome: JobOutcome<Result>, jobId: string): void | Promise<void>;
}

/** When a platform schedule fires: every `every` ms, or on a cron `pattern` in UTC. */
export type ScheduleRepeat = { every: number } | { pattern: string; tz: 'UTC' };

/** One job type: its name, schemas, queue defaults and processor — everything a reader needs in one place. */
export interface JobDefinition<Payload = unknown, Result = unknown> {
  name: string;
  description: string;
  payload: z.ZodType<Payload>;
  result: z.ZodType<Result>;
  /** Only admins may submit it through POST /jobs. */
  adminOnly: boolean;
  queue: QueueDefaults;
  /**
   * The invocation-cache entry that could answer this payload, or null when none can. Submitters that
   * hold many jobs at once look these up together and tell the worker which missed (no second lookup).
   * Default: the job type has no cached results.
   */
  cacheKey?(payload: Payload): InvocationCacheKey | null;
  /**
   * The job always runs long (a batch): it is written `active` before its processor starts rather than
   * once it has run a little while, so it never reads `queued` while its work is being stored. Costs one
   * awaited write per job. Default false.
   */
  activeAtStart?: boolean;
  /**
   * The substrates a payload names, which must all be the submitter's own: a schedule of this job is
   * refused at creation (404) otherwise, rather than failing at every run. Default: none.
   */
  substrateIds?(payload: Payload): string[];
  /**
   * Items of work one job of this payload is (a batch: its invocations): what a customer's budget of scheduled
   * work counts (TIER_SCHEDULE_ITEMS_PER_MIN). Default 1.
   */
  workItems?(payload: Payload): number;
  /** The Piscina tasks its processor runs (`ctx.runTask`); the worker's pool serves exactly the registered job types' tasks. Default none. */
  tasks?: readonly TaskDeclaration[];
  /** Its own lifecycle hooks, run after the workers' common ones (metrics, webhooks). Default none. */
  hooks?: ReadonlyArray<JobTypeHook<Result>>;
  /**
   * Run by the platform on this schedule (when PLATFORM_SCHEDULES), as a job of the system customer with
   * an empty payload, under the schedule name `platform:<name>`. Default: not a platform job.
   */
  schedule?(config: Config): ScheduleRepeat;
  /** Webhook events a completed job emits besides `job.completed` (a batch: `batch.completed`). Default none. */
  completionEvents?: readonly WebhookEvent[];
  process(payload: Payload, ctx: JobContext): Promise<Result>;
}

/** Where a cached invocation result lives: one substrate's results, keyed by canonical parameters. */
export interface InvocationCacheKey {
  substrateId: string;
  parameters: Record<string, unknown>;
}

export function defineJob<Payload, Result>(
  definition: Omit<JobDefinition<Payload, Result>, 'queue' | 'adminOnly'> & {
    queue?: Partial<QueueDefaults>;
    adminOnly?: boolean;
  },
): JobDefinition<Payload, Result> {
  return {
    ...definition,
    adminOnly: definition.adminOnly ?? false,
    queue: { attempts: 3, backoffMs: 1000, sharded: false, ...definition.queue },
  };
}
