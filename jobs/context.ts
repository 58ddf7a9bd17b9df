import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { InvocationCache } from '../db/invocation-cache.js';
import type { SubstrateDefinitionCache } from '../db/substrate-definitions.js';
import type { TaskDeclaration } from './define-task.js';

/**
 * Runs a declared Piscina task; rejects with a PermanentJobError on timeout, resource exhaustion, a thrown
 * task, or a task no registered job type declares. A task with `perItem` answers per item instead
 * (`{ error }` for a failed one; each item is timed on its own and one that must be stopped fails alone),
 * rejecting only when the job is cancelled. The time limit counts from when the task starts on a thread,
 * not while it waits in the pool's queue.
 */
export type RunTask = <Input, Output>(task: TaskDeclaration<Input, Output>, input: Input, signal?: AbortSignal) => Promise<Output>;

/**
 * Whose work a task is: the pool queues tasks per customer (round robin, weighted by `weight`) and adds
 * each task's run time on a thread to `workMs`. A job's context is its own tasks' owner.
 */
export interface TaskOwner {
  readonly customerId: string;
  /** Share of the pool relative to other customers with waiting tasks. Default 1. */
  readonly weight?: number;
  /** Thread time of the owner's tasks so far, ms (queue time excluded). */
  workMs: number;
}

/** The pool's runner: RunTask with the task's owner (none: an anonymous lane of its own). */
export type OwnedRunTask = <Input, Output>(
  task: TaskDeclaration<Input, Output>,
  input: Input,
  signal?: AbortSignal,
  owner?: TaskOwner,
) => Promise<Output>;

/** What a processor gets besides its payload. Tests build their own. */
export interface JobContext {
  jobId: string;
  customerId: string;
  attemptsMade: number;
  logger: Logger;
  /** A fresh entity manager fork for this job. */
  em: EntityManager;
  redis: Redis | Cluster;
  /** The worker process's configuration (queue prefix, vault path, escrow timeout…). Read-only. */
  config: Config;
  cache: InvocationCache;
  /** The submitter looked this job's result up in `cache` a moment before enqueueing it, and missed. */
  cacheMissed: boolean;
  /** Substrate definitions, cached per worker process. */
  substrates: SubstrateDefinitionCache;
  /** Runs a task as this job's customer's; its thread time adds to `workMs`. */
  runTask: RunTask;
  /** Thread time of this attempt's tasks so far, ms. */
  readonly workMs: number;
  signal: AbortSignal;
  progress(value: number | Record<string, unknown>): Promise<void>;
}
