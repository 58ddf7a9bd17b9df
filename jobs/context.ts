import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { InvocationCache } from '../db/invocation-cache.js';
import type { SubstrateDefinitionCache } from '../db/substrate-definitions.js';

/**
 * Runs a Piscina task by name; rejects with a PermanentJobError on timeout, resource exhaustion or a
 * thrown task. `evaluateMany` answers per item instead (`{ value }` or `{ error }`), re-running the items
 * alone if the task as a whole dies; it rejects only when the job is cancelled.
 */
export type RunTask = <Input, Output>(task: TaskName, input: Input, signal?: AbortSignal) => Promise<Output>;
export type TaskName = 'evaluate' | 'evaluateMany' | 'analyze';

/** What a processor gets besides its payload. Tests build their own. */
export interface JobContext {
  jobId: string;
  customerId: string;
  attemptsMade: number;
  logger: Logger;
  /** A fresh entity manager fork for this job. */
  em: EntityManager;
  redis: Redis;
  /** The worker process's configuration (queue prefix, vault path, escrow timeout…). Read-only. */
  config: Config;
  cache: InvocationCache;
  /** The submitter looked this job's result up in `cache` a moment before enqueueing it, and missed. */
  cacheMissed: boolean;
  /** Substrate definitions, cached per worker process. */
  substrates: SubstrateDefinitionCache;
  runTask: RunTask;
  signal: AbortSignal;
  progress(value: number | Record<string, unknown>): Promise<void>;
}
