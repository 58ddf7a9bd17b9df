import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { uuidv7 } from 'uuidv7';
import type { JobRecord } from '../db/entities/job-record.entity.js';
import { findJobByIdempotencyKey, insertJob, releaseIdempotencyKey } from '../db/repositories/jobs.js';
import type { JobDefinition } from '../jobs/define-job.js';
import { queueFor, type JobQueues } from './queues.js';

/** Idempotency keys name one job for 24 hours. */
export const idempotencyWindowMs = 24 * 3600 * 1000;

export interface SubmitJobInput {
  customerId: string;
  definition: JobDefinition;
  payload: unknown;
  /** BullMQ priority: 1 runs first; omitted = ordinary FIFO. */
  priority?: number;
  delayMs?: number;
  attempts?: number;
  webhookUrl?: string | null;
  idempotencyKey?: string | null;
  requestHash?: string | null;
}

export type SubmitOutcome = { kind: 'created'; job: JobRecord } | { kind: 'replayed'; job: JobRecord } | { kind: 'key-conflict'; job: JobRecord };

export interface SubmitDeps {
  em: EntityManager;
  queues: JobQueues;
  logger: Logger;
}

/**
 * Accepts a job: the PostgreSQL row first (the record and the outbox), then the BullMQ add with the
 * same id. If Redis refuses the add, the row stays `queued` and the sweeper enqueues it later.
 */
export async function submitJob(deps: SubmitDeps, input: SubmitJobInput): Promise<SubmitOutcome> {
  const delayMs = input.delayMs ?? 0;
  const row = {
    id: uuidv7(),
    customerId: input.customerId,
    type: input.definition.name,
    state: delayMs > 0 ? ('delayed' as const) : ('queued' as const),
    payload: input.payload,
    maxAttempts: input.attempts ?? input.definition.queue.attempts,
    priority: input.priority ?? 0,
    delayMs,
    webhookUrl: input.webhookUrl ?? null,
    idempotencyKey: input.idempotencyKey ?? null,
    requestHash: input.requestHash ?? null,
  };

  let job = await insertJob(deps.em, row);
  if (!job && row.idempotencyKey) {
    const existing = await findJobByIdempotencyKey(deps.em, row.customerId, row.idempotencyKey);
    if (existing && Date.now() - new Date(existing.createdAt).getTime() > idempotencyWindowMs) {
      await releaseIdempotencyKey(deps.em, existing.id);
      job = await insertJob(deps.em, row);
    } else if (existing) {
      return existing.requestHash === row.requestHash ? { kind: 'replayed', job: existing } : { kind: 'key-conflict', job: existing };
    }
  }
  if (!job) throw new Error('job insert returned no row');

  await enqueue(deps, job);
  return { kind: 'created', job };
}

/** Adds the BullMQ job for an accepted row. Safe to repeat: BullMQ ignores a second add with the same id. */
export async function enqueue(deps: Pick<SubmitDeps, 'queues' | 'logger'>, job: Pick<JobRecord, 'id' | 'type' | 'customerId' | 'payload' | 'maxAttempts' | 'priority' | 'delayMs'>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const added = queueFor(deps.queues, job.type).add(
      job.type,
      { customerId: job.customerId, payload: job.payload },
      {
        jobId: job.id,
        attempts: job.maxAttempts,
        ...(job.priority > 0 ? { priority: job.priority } : {}),
        ...(job.delayMs > 0 ? { delay: job.delayMs } : {}),
      },
    );
    // While Redis is down an add would wait for the reconnect; answer now and let the sweeper (or the
    // pending add itself, when Redis returns) deliver it. A second add of the same id is a no-op.
    added.catch(() => undefined);
    await Promise.race([added, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not take the job within ${enqueueTimeoutMs} ms`)), enqueueTimeoutMs)))]);
    return true;
  } catch (error) {
    deps.logger.warn({ err: error, jobId: job.id }, 'enqueue failed; the sweeper will enqueue the accepted job later');
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Longest a submit waits for Redis before answering 202 from the PostgreSQL outbox alone. */
export const enqueueTimeoutMs = 1500;
