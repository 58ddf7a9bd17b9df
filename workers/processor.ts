import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { RedisClient } from '../lib/redis.js';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { InvocationCache } from '../db/invocation-cache.js';
import type { SubstrateDefinitionCache } from '../db/substrate-definitions.js';
import type { JobContext, OwnedRunTask, RunTask, TaskOwner } from '../jobs/context.js';
import type { JobDefinition, JobTypeHook } from '../jobs/define-job.js';
import { PermanentJobError } from '../jobs/errors.js';
import { assertResultFits, fitsJsonBytes } from '../jobs/result-limit.js';
import type { JobStateWriter } from './job-state-writer.js';
import type { HookJob, JobLifecycleHook, JobOutcome } from './lifecycle.js';
import { isBundleData, type QueuedBundleData } from '../queue/bundles.js';
import { runBundle, type BundleDeps } from './bundle-processor.js';
import { inlineResultMaxBytes, isRowId, resultInRow, type QueuedJobData } from '../queue/queues.js';
import { pausedJobDelayMs, type PausedCustomers } from '../queue/customer-pauses.js';
import { StageMarks } from '../lib/stage-marks.js';
import { findJobPayload } from '../db/jobs/find-jobs.js';
import { waitForDurableCommits } from '../db/jobs/recovery.js';
import { GroupCommit } from '../db/group-commit.js';

export interface ProcessorDeps {
  config: Config;
  orm: MikroORM;
  redis: RedisClient;
  cache: InvocationCache;
  substrates: SubstrateDefinitionCache;
  runTask: OwnedRunTask;
  writer: JobStateWriter;
  logger: Logger;
  hooks: JobLifecycleHook[];
  /** Customers an admin paused: their jobs are set aside, not run (queue/customer-pauses.ts). */
  paused?: PausedCustomers;
  /** A paused customer's job was set aside (moved back to BullMQ's delayed set): fair sharing frees its slot. */
  setAside?: (job: Job<QueuedJobData>) => void;
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error)).slice(0, 2000);

/**
 * What a processor gets for one attempt. A class rather than an object literal of closures: a busy
 * worker builds tens of thousands of these a second, and the entity manager and logger are built only
 * if the processor asks for them.
 */
class AttemptContext implements JobContext, TaskOwner {
  readonly jobId: string;
  readonly customerId: string;
  readonly attemptsMade: number;
  readonly cacheMissed: boolean;
  readonly signal: AbortSignal;
  workMs = 0;
  private forkedEm: EntityManager | undefined;
  private childLogger: Logger | undefined;
  private ownedRunTask: RunTask | undefined;

  constructor(
    private readonly deps: ProcessorDeps,
    private readonly job: AttemptJob,
    private readonly type: string,
    jobId: string,
    attemptsMade: number,
    signal: AbortSignal | undefined,
  ) {
    this.jobId = jobId;
    this.customerId = job.data.customerId;
    this.attemptsMade = attemptsMade;
    this.cacheMissed = job.data.cacheMissed === true && attemptsMade === 0;
    this.signal = signal ?? new AbortController().signal;
  }

  get em(): EntityManager {
    return (this.forkedEm ??= this.deps.orm.em.fork());
  }

  get logger(): Logger {
    return (this.childLogger ??= this.deps.logger.child({ jobId: this.jobId, type: this.type }));
  }

  get redis() {
    return this.deps.redis;
  }

  get config() {
    return this.deps.config;
  }

  get cache() {
    return this.deps.cache;
  }

  get substrates() {
    return this.deps.substrates;
  }

  /** The pool's runner with this attempt as the owner: its customer's lane, its workMs. */
  get runTask(): RunTask {
    return (this.ownedRunTask ??= (task, input, signal) => this.deps.runTask(task, input, signal, this));
  }

  async progress(value: number | Record<string, unknown>): Promise<void> {
    this.deps.writer.markProgress(this.jobId, value);
    await this.job.updateProgress(value);
  }
}

/** A job type's own hook (`defineJob({ hooks })`) among the common ones: it hears only its outcome. */
const asLifecycleHook = (hook: JobTypeHook): JobLifecycleHook => ({
  name: hook.name,
  finished: (job, _type, outcome) => hook.finished(outcome, job.id as string),
});

/** Tells every lifecycle hook how an attempt ended. Most hooks are synchronous (metrics); a hook's failure is logged, never thrown. */
function tellHooks(
  deps: ProcessorDeps,
  hooks: readonly JobLifecycleHook[],
  job: HookJob,
  type: string,
  jobId: string,
  outcome: JobOutcome,
): void {
  for (const hook of hooks) {
    if (!hook.finished) continue;
    try {
      const pending = hook.finished(job, type, outcome);
      if (pending) pending.catch((error: unknown) => deps.logger.error({ err: error, hook: hook.name, jobId }, 'job hook failed'));
    } catch (error) {
      deps.logger.error({ err: error, hook: hook.name, jobId }, 'job hook failed');
    }
  }
}

/** How long a job whose payload is in its row waits for a row it cannot find (PostgreSQL restarted and lost it) before failing. */
const missingRowPatienceMs = 60_000;

/**
 * The payload of a job too big to carry its own (queue/queues.ts `queuedPayload`), from its row. A row that is
 * not there yet — PostgreSQL lost a commit that had not reached the disk, and the API or the sweeper stores
 * it again — puts the job back for a second, without spending an attempt; after `missingRowPatienceMs` the
 * job fails: its row is gone for good (deleted with its customer).
 */
async function payloadFromRow(deps: ProcessorDeps, job: Job<QueuedJobData>, jobId: string, token: string | undefined): Promise<unknown> {
  const row = await findJobPayload(deps.orm.em.fork(), jobId);
  if (row) return row.payload;
  if (!token || Date.now() - job.timestamp > missingRowPatienceMs)
    throw new UnrecoverableError(`job ${jobId}: its row, which holds its payload, is gone`);
  await job.moveToDelayed(Date.now() + 1000, token);
  throw new DelayedError();
}

/**
 * What BullMQ keeps as a completed job's return value until the sweeper trims the job: the result itself when
 * it is at most `inlineResultMaxBytes` (the sweeper copies it into the row if PostgreSQL loses the worker's
 * quick write); a bigger one only once that write is on disk — one durable commit, which flushes it — so
 * BullMQ need not hold it (`resultInRow`). When durability cannot be confirmed, BullMQ keeps the result.
 */
async function returnValueFor(deps: ProcessorDeps, durableCommits: GroupCommit<null>, result: unknown): Promise<unknown> {
  if (fitsJsonBytes(result, inlineResultMaxBytes)) return result;
  try {
    await durableCommits.add(null);
    return resultInRow;
  } catch (error) {
    deps.logger.warn({ err: error }, 'could not confirm a durable result write; BullMQ keeps the result');
    return result;
  }
}

/** What an attempt needs of its job: a BullMQ job, or a bundle's member (workers/bundle-processor.ts). */
export interface AttemptJob extends HookJob {
  /** Attempts BullMQ made of this job before this one (a member: the attempts its row records). */
  readonly attemptsMade: number;
  /** Attempts this job may take in all (a member: its row's `max_attempts`). */
  readonly opts: { attempts?: number };
  readonly timestamp: number;
  updateProgress(value: number | object): Promise<void>;
}

/** How an attempt ended once its outcome is stored (a failure of the store itself rejects instead). */
export type AttemptEnd =
  { state: 'completed'; returnValue: unknown } | { state: 'failed'; error: unknown; final: boolean; attempt: number };

/**
 * Runs one attempt of a job of `definition`: marks the row active, runs the processor, and stores the result
 * (or the error) in PostgreSQL, then tells the lifecycle hooks. A job someone waits for (`notify`) has its stored
 * row announced to the waiting API process by that same write. `payload` is the job's (read from its row by the
 * caller when it is too big to carry).
 */
export function createAttemptRunner(definition: JobDefinition, deps: ProcessorDeps) {
  // Built once per job type: a job type without hooks of its own costs its jobs nothing.
  const finishedHooks = definition.hooks?.length ? [...deps.hooks, ...definition.hooks.map(asLifecycleHook)] : deps.hooks;
  // One durable commit serves every big result written before it: a customer's stream of them costs the
  // database one synchronous commit per batch, not one each.
  const durableCommits = new GroupCommit<null>(() => waitForDurableCommits(deps.orm.em.fork()));
  return async (job: AttemptJob, payload: unknown, signal: AbortSignal | undefined): Promise<AttemptEnd> => {
    const jobId = job.id as string;
    // Attempts spent before this job was handed off to run alone (a bundle's member that failed once).
    const attempt = (job.data.priorAttempts ?? 0) + job.attemptsMade + 1;
    const started = performance.now();
    const marks = job.data.timingOrigin === undefined ? null : new StageMarks(job.data.timingOrigin);
    marks?.mark('picked');
    const notify = job.data.notify === true;
    const ctx = new AttemptContext(deps, job, definition.name, jobId, attempt - 1, signal);
    const startedAt = Date.now();
    if (definition.activeAtStart) await deps.writer.markActiveNow(jobId, attempt, startedAt);
    else deps.writer.markActive(jobId, attempt, startedAt);
    for (const hook of deps.hooks) hook.started?.(job, definition.name);

    let result: unknown;
    try {
      result = await definition.process(payload as never, ctx);
      // A result over RESULT_MAX_BYTES fails here, so it reaches neither PostgreSQL nor BullMQ's return value.
      assertResultFits(result, deps.config.resultMaxBytes);
    } catch (error) {
      const permanent = error instanceof PermanentJobError || error instanceof UnrecoverableError || signal?.aborted;
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const final = Boolean(permanent || lastAttempt);
      if (final) await deps.writer.fail(jobId, errorText(error), attempt, notify);
      else await deps.writer.retrying(jobId, errorText(error), attempt);
      tellHooks(deps, finishedHooks, job, definition.name, jobId, {
        state: 'failed',
        error: errorText(error),
        durationMs: performance.now() - started,
        workMs: ctx.workMs,
        final,
      });
      return { state: 'failed', error, final, attempt };
    }
    marks?.mark('evaluated');
    await deps.writer.complete(jobId, result, attempt, notify);
    if (marks) {
      marks.mark('written');
      marks.store(deps.redis, deps.config.queuePrefix, jobId);
    }
    tellHooks(deps, finishedHooks, job, definition.name, jobId, {
      state: 'completed',
      result,
      durationMs: performance.now() - started,
      workMs: ctx.workMs,
    });
    return { state: 'completed', returnValue: await returnValueFor(deps, durableCommits, result) };
  };
}

export type AttemptRunner = ReturnType<typeof createAttemptRunner>;

/** The error BullMQ gets for a failed attempt: it retries it unless `final`. */
export const attemptError = (end: Extract<AttemptEnd, { state: 'failed' }>): unknown =>
  end.final ? new UnrecoverableError(errorText(end.error)) : end.error;

/**
 * Wraps a job definition as a BullMQ processor: a job of its own runs one attempt (`createAttemptRunner`); a
 * bundle (queue/bundles.ts) runs its members, each an attempt of its own (`runBundle`).
 */
export function createProcessor(definition: JobDefinition, deps: ProcessorDeps & { bundles?: BundleDeps }) {
  const runAttempt = createAttemptRunner(definition, deps);
  return async (job: Job<QueuedJobData>, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const jobId = job.id as string;
    if (token && deps.paused?.has(job.data.customerId)) {
      // A paused customer's job goes back to wait, untouched (its row stays queued); no attempt is spent.
      await job.moveToDelayed(Date.now() + pausedJobDelayMs, token);
      deps.setAside?.(job);
      throw new DelayedError();
    }
    if (isBundleData(job.data)) {
      if (!deps.bundles) throw new UnrecoverableError(`job ${jobId} is a bundle, and this worker runs none`);
      return runBundle(definition, deps, deps.bundles, runAttempt, job as unknown as Job<QueuedBundleData>, signal);
    }
    // A job with no row has nothing to write, and its id would fail the batched state writes it joined.
    if (!isRowId(jobId)) throw new UnrecoverableError(`job ${jobId} has no row: jobs are submitted with their row's UUID as their id`);
    const payload = job.data.payloadInRow ? await payloadFromRow(deps, job, jobId, token) : job.data.payload;
    const end = await runAttempt(job, payload, signal);
    if (end.state === 'failed') throw attemptError(end);
    return end.returnValue;
  };
}
