import type { z } from 'zod';
import type { JobContext } from './context.js';

export interface QueueDefaults {
  /** Attempts before the job fails. Default 3. */
  attempts: number;
  /** Exponential backoff base in ms. Default 1000. */
  backoffMs: number;
  /** Jobs one worker process runs at once on this queue; default WORKER_CONCURRENCY. */
  concurrency?: number;
}

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
    queue: { attempts: 3, backoffMs: 1000, ...definition.queue },
  };
}
