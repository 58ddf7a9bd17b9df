import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { uuidv7 } from '../lib/uuid.js';
import type { JobRecord } from '../db/entities/job-record.entity.js';
import { GroupCommit } from '../db/group-commit.js';
import type { StoredJob } from '../db/jobs/job-columns.js';
import { findJobByIdempotencyKey } from '../db/jobs/find-jobs.js';
import { insertJob, insertJobs, isJobDurable, releaseIdempotencyKeys, type JobInsert, type NewJobRow } from '../db/jobs/insert-jobs.js';
import type { JobDefinition } from '../jobs/define-job.js';
import { withinEnqueueTimeout } from './enqueue-timeout.js';
import { fairQueueFront, packHints, type FairShare } from './fair-share/fair-share.js';
import type { FairQueues } from './fair-share/fair-queues.js';
import { queuedPayload, type JobQueue, type JobQueues, type QueuedJobHints } from './queues.js';
import type { PendingEnqueues } from './pending-enqueues.js';

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
  /** Accept only if the customer owns this substrate (checked in the INSERT itself). */
  requireSubstrateId?: string;
  hints?: QueuedJobHints;
  /** The schedule whose run this is (recorded on the row); omitted for a job submitted directly. */
  scheduleName?: string;
  /** The job this one retries (POST /jobs/:id/retry, POST /admin/jobs/retry); omitted otherwise. */
  retryOf?: string;
  /** The customer's fair-sharing weight (`fairQueues.weightOf(tier)`, FAIR_WEIGHTS). Default 1. */
  weight?: number;
  /** The row id to use (a UUIDv7), when the caller must know it before the job is enqueued. Default: a new one. */
  id?: string;
  /**
   * Commit the row without waiting for the disk (see `JobInsert.quick`), for a submitter that waits
   * for the outcome: it must call `makeJobDurable` before it answers 202. Default false.
   */
  quick?: boolean;
  /** Called once the row is stored, before the enqueue (the API's request timing marks the moment). */
  onStored?: () => void;
}

export type SubmitOutcome =
  | { kind: 'created'; job: JobRecord }
  | { kind: 'replayed'; job: JobRecord }
  | { kind: 'key-conflict'; job: JobRecord }
  | { kind: 'substrate-missing' };

export interface SubmitDeps {
  em: EntityManager;
  queues: JobQueues;
  logger: Logger;
  /**
   * Fair sharing of the sharded queues; null when FAIR_SHARING=false (plain FIFO). Required, so that no
   * submit path (an admin retry, a schedule run, a bulk submit) can leave it out and skip fair sharing.
   */
  fair: FairQueues | null;
  /** Batches concurrent first inserts into one statement (the API passes one); without it, one INSERT per job. */
  inserter?: JobInserter;
  /** Holds the adds of durably stored jobs, so the submit returns without waiting for Redis; without it, each add is awaited. */
  pendingEnqueues?: PendingEnqueues;
}

/** A GroupCommit over `insertJobs`: concurrent submits share one INSERT and one commit. */
export type JobInserter = GroupCommit<JobInsert, JobRecord | null>;

export function createJobInserter(em: EntityManager): JobInserter {
  return new GroupCommit((rows) => insertJobs(em, rows));
}

/** The row a submit inserts for `input`: queued, or delayed when it has a delay. */
export function newJobRow(input: Omit<SubmitJobInput, 'id'>, id: string): NewJobRow {
  const delayMs = input.delayMs ?? 0;
  return {
    id,
    customerId: input.customerId,
    type: input.definition.name,
    state: delayMs > 0 ? 'delayed' : 'queued',
    payload: input.payload,
    maxAttempts: input.attempts ?? input.definition.queue.attempts,
    priority: input.priority ?? 0,
    delayMs,
    webhookUrl: input.webhookUrl ?? null,
    idempotencyKey: input.idempotencyKey ?? null,
    requestHash: input.requestHash ?? null,
    scheduleName: input.scheduleName ?? null,
    retryOf: input.retryOf ?? null,
  };
}

/**
 * Accepts a job: the PostgreSQL row first (the record and the outbox), then the BullMQ add with the
 * same id — on a fair-shared queue only if its shard's fair share releases it at once (else it is held
 * in its customer's lane and a worker releases it later). If Redis refuses, the row stays `queued` and
 * the sweeper enqueues (or re-lanes) it later. The fair share is asked while the row is inserted
 * (`probeAdmission`), so the admission costs the submit no round trip of its own. Given `pendingEnqueues`, a
 * durably stored job's add is left to finish after the submit returns.
 */
export async function submitJob(deps: SubmitDeps, input: SubmitJobInput): Promise<SubmitOutcome> {
  const row = newJobRow(input, input.id ?? uuidv7());

  // The shard's fair share, if any: asked while the row is inserted, and told again if the row was not stored.
  const queue = deps.queues.forJob(row.type, row.id);
  const fair = deps.fair?.of(queue) ?? null;
  const probe = fair ? probeAdmission(deps, fair, queue, row, input.weight ?? 1) : Promise.resolve(null);
  let outcome: SubmitOutcome;
  try {
    outcome = await storeRow(deps, row, input);
  } catch (error) {
    await withdrawUnsent(deps, fair, queue, row, probe);
    throw error;
  }
  if (outcome.kind !== 'created') {
    await withdrawUnsent(deps, fair, queue, row, probe);
    return outcome;
  }
  input.onStored?.();
  const adding = probe.then((probed) => enqueue(deps, outcome.job, input.hints, input.weight, probed));
  // A row on disk is the record (the sweeper enqueues it if this process dies first), so given a holder the submit returns
  // without Redis's answer; a quick row (not yet on disk) waits for it, as does a submit past the holder's cap.
  if (input.quick === true || !deps.pendingEnqueues?.hold(outcome.job.id, adding)) await adding;
  return outcome;
}

/** Inserts the job's row, or finds the job its idempotency key already names. */
async function storeRow(deps: SubmitDeps, row: NewJobRow, input: SubmitJobInput): Promise<SubmitOutcome> {
  let job = deps.inserter
    ? await deps.inserter.add({ row, requireSubstrateId: input.requireSubstrateId, quick: input.quick === true })
    : await insertJob(deps.em, row, input.requireSubstrateId);
  if (!job && row.idempotencyKey) {
    const existing = await findJobByIdempotencyKey(deps.em, row.customerId, row.idempotencyKey);
    // A key past its window, or whose job retention removed, names the new job.
    if (!existing || Date.now() - new Date(existing.createdAt).getTime() > idempotencyWindowMs) {
      await releaseIdempotencyKeys(deps.em, row.customerId, [row.idempotencyKey], idempotencyWindowMs);
      job = await insertJob(deps.em, row, input.requireSubstrateId);
    } else {
      return existing.requestHash === row.requestHash ? { kind: 'replayed', job: existing } : { kind: 'key-conflict', job: existing };
    }
  }
  if (!job && input.requireSubstrateId) return { kind: 'substrate-missing' };
  if (!job) throw new Error('job insert returned no row');
  return { kind: 'created', job };
}

/**
 * On a fair-shared queue, asks the shard to release a job at once while its row is still being inserted
 * (fair-share.ts `admit`, `atOnceOnly`): true when it did (the caller adds it once the row is stored), false
 * when it would have held it (the caller admits it again, to hold it: a held job's row must exist before any
 * release can pop it). Null when there is nothing to ask (FIFO queue, delayed job, a customer whose last submit
 * there was held: `HeldLately`) or Redis did not answer in time; never rejects.
 */
async function probeAdmission(deps: SubmitDeps, fair: FairShare, queue: JobQueue, row: NewJobRow, weight: number): Promise<boolean | null> {
  // Its customer's last submit there was held: this one would be too, and be admitted twice.
  if (row.delayMs > 0 || !deps.fair || deps.fair.heldLately.has(queue.qualifiedName, row.customerId)) return null;
  let released: string[] = [];
  const asked = fair
    .admit(queue.qualifiedName, [{ id: row.id, customerId: row.customerId, weight, priority: row.priority }], { atOnceOnly: true })
    .then((ids) => void (released = ids));
  const answered = await withinEnqueueTimeout(asked, (error) =>
    deps.logger.warn({ err: error, jobId: row.id }, 'fair-share admission failed; it is asked again once the row is stored'),
  );
  if (!answered) return null;
  const releasedNow = released.includes(row.id);
  deps.fair.heldLately.note(queue.qualifiedName, row.customerId, !releasedNow);
  return releasedNow;
}

/** A job the probe released whose row was not stored (a replay, a missing substrate, a failed insert) leaves the window. */
async function withdrawUnsent(
  deps: SubmitDeps,
  fair: FairShare | null,
  queue: JobQueue,
  row: NewJobRow,
  probe: Promise<boolean | null>,
): Promise<void> {
  if ((await probe) !== true || !fair) return;
  await fair
    .withdraw(queue.qualifiedName, row.id, row.customerId, { unsent: true })
    .catch((error: unknown) =>
      deps.logger.warn({ err: error, jobId: row.id }, 'could not withdraw an unstored job from its fair share; reconcile frees its slot'),
    );
}

/**
 * Before a 202 for a job that may have been inserted `quick`: waits until its row is on disk. If
 * PostgreSQL lost the row meanwhile (a restart), stores it again, durably, and enqueues it again (a
 * no-op while Redis still holds it), so the 202 is kept either way.
 */
export async function makeJobDurable(deps: Pick<SubmitDeps, 'em' | 'queues' | 'logger' | 'fair'>, job: StoredJob): Promise<void> {
  if (await isJobDurable(deps.em, job.id)) return;
  deps.logger.warn({ jobId: job.id }, 'an accepted job row was lost before it reached the disk; storing it again');
  const state = job.state === 'delayed' ? 'delayed' : 'queued';
  const stored = (await insertJob(deps.em, { ...job, state })) ?? job;
  await enqueue(deps, stored);
}

/**
 * Adds the BullMQ job for an accepted row. Safe to repeat: BullMQ ignores a second add with the same id,
 * and fair sharing a second admission. On a fair-shared queue the row is admitted first (one script call)
 * and added only if released at once; a held (or delayed) job is added by the worker that releases it.
 */
export async function enqueue(
  deps: Pick<SubmitDeps, 'queues' | 'logger' | 'fair'>,
  job: Pick<JobRecord, 'id' | 'type' | 'customerId' | 'payload' | 'maxAttempts' | 'priority' | 'delayMs'> & { webhookUrl?: string | null },
  hints: QueuedJobHints = {},
  weight = 1,
  /** What `probeAdmission` answered for this job: true, it is released already (added without asking again). */
  probed: boolean | null = null,
): Promise<boolean> {
  const failed = (error: unknown) =>
    deps.logger.warn({ err: error, jobId: job.id }, 'enqueue failed; the sweeper will enqueue the accepted job later');
  try {
    const queue = deps.queues.forJob(job.type, job.id);
    const fair = deps.fair?.of(queue) ?? null;
    const data = {
      customerId: job.customerId,
      ...queuedPayload(job.payload),
      ...hints,
      ...(job.webhookUrl ? { hasWebhookUrl: true } : {}),
    };
    // Released at once: its customer has nothing held in this shard, so it goes to the front of the wait list
    // (lifo), not behind the window's worth of a backlogged customer's jobs (fairQueueFront).
    const front = () => queue.add(job.type, data, { jobId: job.id, attempts: job.maxAttempts, ...fairQueueFront });
    let added: Promise<unknown>;
    if (!fair) {
      added = queue.add(job.type, data, {
        jobId: job.id,
        attempts: job.maxAttempts,
        ...(job.priority > 0 ? { priority: job.priority } : {}),
        ...(job.delayMs > 0 ? { delay: job.delayMs } : {}),
      });
    } else if (probed === true) {
      added = front();
    } else {
      const admitted = {
        id: job.id,
        customerId: job.customerId,
        weight,
        priority: job.priority,
        ...(job.delayMs > 0 ? { delayUntil: Date.now() + job.delayMs } : {}),
        hints: packHints(hints),
      };
      added = fair.admit(queue.qualifiedName, [admitted]).then((released) => {
        const releasedNow = released.includes(job.id);
        if (job.delayMs === 0) deps.fair?.heldLately.note(queue.qualifiedName, job.customerId, !releasedNow);
        return releasedNow ? front() : null;
      });
    }
    return await withinEnqueueTimeout(added, failed);
  } catch (error) {
    failed(error);
    return false;
  }
}
