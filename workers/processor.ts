import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { InvocationCache } from '../db/invocation-cache.js';
import type { SubstrateDefinitionCache } from '../db/substrate-definitions.js';
import type { JobRecord } from '../db/entities/job-record.entity.js';
import { announceFinishedJob } from '../db/job-notices.js';
import { ensureScheduledJobRow, recordIdFor } from '../db/repositories/jobs.js';
import type { JobContext, RunTask } from '../jobs/context.js';
import type { JobDefinition } from '../jobs/define-job.js';
import { PermanentJobError } from '../jobs/errors.js';
import type { JobStateWriter } from './job-state-writer.js';
import type { JobLifecycleHook, JobOutcome } from './lifecycle.js';
import type { QueuedJobData } from './queues.js';

export interface ProcessorDeps {
  config: Config;
  orm: MikroORM;
  redis: Redis;
  cache: InvocationCache;
  substrates: SubstrateDefinitionCache;
  runTask: RunTask;
  writer: JobStateWriter;
  logger: Logger;
  hooks: JobLifecycleHook[];
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error)).slice(0, 2000);

/**
 * Wraps a job definition as a BullMQ processor: marks the row active, runs the processor, and stores
 * the result (or the error) in PostgreSQL before BullMQ records the outcome.
 */
export function createProcessor(definition: JobDefinition, deps: ProcessorDeps) {
  return async (job: Job<QueuedJobData>, _token?: string, signal?: AbortSignal): Promise<unknown> => {
    const jobId = recordIdFor(job.id as string);
    const attempt = job.attemptsMade + 1;
    const started = performance.now();
    const notify = job.data.notify === true;
    const announce = (stored: JobRecord | null) => {
      if (stored) announceFinishedJob(deps.redis, deps.config.queuePrefix, stored);
    };
    // Built on first use: most invocations never touch the entity manager or log.
    let em: EntityManager | undefined;
    let logger: Logger | undefined;
    if (jobId !== job.id) {
      await ensureScheduledJobRow((em ??= deps.orm.em.fork()), { id: jobId, queueJobId: job.id as string, customerId: job.data.customerId, type: definition.name, payload: job.data.payload, maxAttempts: job.opts.attempts ?? 1 });
    }
    deps.writer.markActive(jobId, attempt);
    for (const hook of deps.hooks) hook.started?.(job, definition.name);
    const finished = (outcome: JobOutcome) => {
      for (const hook of deps.hooks) {
        if (!hook.finished) continue;
        const failed = (error: unknown) => deps.logger.error({ err: error, hook: hook.name, jobId }, 'job hook failed');
        // Most hooks are synchronous (metrics); only those that return a promise get a rejection handler.
        try {
          const pending = hook.finished(job, definition.name, outcome);
          if (pending) pending.catch(failed);
        } catch (error) {
          failed(error);
        }
      }
    };
    const ctx: JobContext = {
      jobId,
      customerId: job.data.customerId,
      attemptsMade: job.attemptsMade,
      get logger() {
        return (logger ??= deps.logger.child({ jobId, type: definition.name }));
      },
      get em() {
        return (em ??= deps.orm.em.fork());
      },
      redis: deps.redis,
      config: deps.config,
      cache: deps.cache,
      cacheMissed: job.data.cacheMissed === true && attempt === 1,
      substrates: deps.substrates,
      runTask: deps.runTask,
      signal: signal ?? new AbortController().signal,
      progress: async (value) => {
        deps.writer.markProgress(jobId, value);
        await job.updateProgress(value);
      },
    };

    let result: unknown;
    try {
      result = await definition.process(job.data.payload as never, ctx);
    } catch (error) {
      const permanent = error instanceof PermanentJobError || error instanceof UnrecoverableError || signal?.aborted;
      const lastAttempt = attempt >= (job.opts.attempts ?? 1);
      const final = Boolean(permanent || lastAttempt);
      if (final) announce(await deps.writer.fail(jobId, errorText(error), attempt, notify));
      else await deps.writer.retrying(jobId, errorText(error), attempt);
      finished({ state: 'failed', error: errorText(error), durationMs: performance.now() - started, final });
      throw final ? new UnrecoverableError(errorText(error)) : error;
    }
    announce(await deps.writer.complete(jobId, result, attempt, notify));
    finished({ state: 'completed', result, durationMs: performance.now() - started });
    return result;
  };
}
