import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { InvocationCache } from '../db/invocation-cache.js';
import type { SubstrateDefinitionCache } from '../db/substrate-definitions.js';
import type { TaskDeclaration } from './define-task.js';

/**
 * Runs a declared Piscina task; rejects with a PermanentJobError on timeout, resource exhaustion, a thrown
 * task, or a task no registered job type declares. A task with `perItem` answers per item instead
 * (`{ error }` for a failed one), re-running the items alone if the task as a whole dies; it rejects only
 * when the job is cancelled.
 */
export type RunTask = <Input, Output>(task: TaskDeclaration<Input, Output>, input: Input, signal?: AbortSignal) => Promise<Output>;

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
