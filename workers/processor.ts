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
import { assertResultFits, oversizedJsonBytes } from '../jobs/result-limit.js';
import type { JobStateWriter } from './job-state-writer.js';
import type { JobLifecycleHook, JobOutcome } from './lifecycle.js';
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

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error)).slice(0, 2000);

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
    private readonly job: Job<QueuedJobData>,
    private readonly type: string,
    jobId: string,
    signal: AbortSignal | undefined,
  ) {
    this.jobId = jobId;
    this.customerId = job.data.customerId;
    this.attemptsMade = job.attemptsMade;
    this.cacheMissed = job.data.cacheMissed === true && job.attemptsMade === 0;
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
  job: Job<QueuedJobData>,
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
  if (oversizedJsonBytes(result, inlineResultMaxBytes) === null) return result;
  try {
    await durableCommits.add(null);
    return resultInRow;
  } catch (error) {
    deps.logger.warn({ err: error }, 'could not confirm a durable result write; BullMQ keeps the result');
    return result;
  }
}

/**
 * Wraps a job definition as a BullMQ processor: marks the row active, runs the processor, and stores
 * the result (or the error) in PostgreSQL before BullMQ records the outcome. A job someone waits for
 * (`notify`) has its stored row announced to the waiting API process by that same write.
 */
export function createProcessor(definition: JobDefinition, deps: ProcessorDeps) {
  // Built once per job type: a job type without hooks of its own costs its jobs nothing.
  const finishedHooks = definition.hooks?.length ? [...deps.hooks, ...definition.hooks.map(asLifecycleHook)] : deps.hooks;
  // One durable commit serves every big result written before it: a customer's stream of them costs the
  // database one synchronous commit per batch, not one each.
  const durableCommits = new GroupCommit<null>(() => waitForDurableCommits(deps.orm.em.fork()));
  return async (job: Job<QueuedJobData>, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const jobId = job.id as string;
    // A job with no row has nothing to write, and its id would fail the batched state writes it joined.
    if (!isRowId(jobId)) throw new UnrecoverableError(`job ${jobId} has no row: jobs are submitted with their row's UUID as their id`);
    if (token && deps.paused?.has(job.data.customerId)) {
      // A paused customer's job goes back to wait, untouched (its row stays queued); no attempt is spent.
      await job.moveToDelayed(Date.now() + pausedJobDelayMs, token);
      deps.setAside?.(job);
      throw new DelayedError();
    }
    const payload = job.data.payloadInRow ? await payloadFromRow(deps, job, jobId, token) : job.data.payload;
    const attempt = job.attemptsMade + 1;
    const started = performance.now();
    const marks = job.data.timingOrigin === undefined ? null : new StageMarks(job.data.timingOrigin);
    marks?.mark('picked');
    const notify = job.data.notify === true;
    const ctx = new AttemptContext(deps, job, definition.name, jobId, signal);
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
      const lastAttempt = attempt >= (job.opts.attempts ?? 1);
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
      throw final ? new UnrecoverableError(errorText(error)) : error;
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
    return returnValueFor(deps, durableCommits, result);
  };
}
