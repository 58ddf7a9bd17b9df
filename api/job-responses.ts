import type { Request, Response } from 'express';
import type { JobRecord } from '../db/entities/job-record.entity.js';
import { finalStates } from '../db/entities/job-record.entity.js';
import { jobLocation, jobView } from '../db/jobs/job-view.js';
import { findJob, findJobStates, findJobsWithin } from '../db/jobs/find-jobs.js';
import type { StoredJob } from '../db/jobs/job-columns.js';
import { makeJobDurable, submitJob, type SubmitJobInput } from '../queue/submit-job.js';
import { describeRefusal, type AdmissionRefusal, type AdmissionTicket } from '../queue/admission.js';
import type { QueuedJobHints } from '../queue/queues.js';
import { uuidv7 } from '../lib/uuid.js';
import { missedAtFirstEpoch, type CacheLookup } from '../db/invocation-cache.js';
import { principalOf } from './auth/authenticate.js';
import type { ApiDeps } from './deps.js';
import type { JobWatch } from './job-waiter.js';
import { refuseWhenRedisFull } from './memory-guard.js';
import { ProblemError } from './problems.js';
import { sendJson } from './send-json.js';
import { recordStage, timingOrigin } from './request-timing.js';
import { StageMarks } from '../lib/stage-marks.js';
import { requestHashOf } from './request-hash.js';

/**
 * The 202 items of a bulk submit's jobs, in order. The jobs one INSERT stored share its creation time, so each
 * run of equal times is written out once rather than once per job (up to 1,000 a request).
 */
export function acceptedJobItems(jobs: ReadonlyArray<Pick<JobRecord, 'id' | 'type' | 'state' | 'createdAt'>>) {
  // Compared as read (the driver gives timestamps as text here, whatever the type says): no Date per job.
  let last: unknown;
  let lastIso = '';
  return jobs.map((job) => {
    if (job.createdAt !== last) {
      last = job.createdAt;
      lastIso = new Date(job.createdAt).toISOString();
    }
    return { id: job.id, type: job.type, state: job.state, created_at: lastIso, links: { self: jobLocation(job.id) } };
  });
}

/** A `wait` preference whose value is seconds, plain or quoted, and ends where the preference does (`wait=1e9` is no wait). */
const waitPreference = /(?:^|[,;\s])wait=(?:(\d{1,9}(?:\.\d{1,9})?)|"(\d{1,9}(?:\.\d{1,9})?)")(?=$|[,;\s])/i;

/** RFC 7240 `Prefer: wait=N` (N capped at 30 s). Null when absent or not a number of seconds (a preference it cannot read is ignored). */
export function preferredWaitMs(req: Pick<Request, 'headers'>): number | null {
  const raw = req.headers.prefer;
  const header = Array.isArray(raw) ? raw.join(',') : raw;
  if (!header) return null;
  const match = waitPreference.exec(header);
  const seconds = match?.[1] ?? match?.[2];
  if (seconds === undefined) return null;
  return Math.min(Number(seconds), 30) * 1000;
}

const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;

/** The 429 of a submit past a cap of admission control (queue/admission.ts), naming the cap and the count. */
export function admissionProblem(refusal: AdmissionRefusal): ProblemError {
  return new ProblemError('too-many-jobs', `${describeRefusal(refusal)}; retry in ${refusal.retryAfterSeconds} s`, {
    headers: { 'Retry-After': String(refusal.retryAfterSeconds) },
    cap: refusal.cap,
    limit: refusal.limit,
    count: refusal.count,
    requested: refusal.requested,
    tier: refusal.tier,
  });
}

/**
 * Admission control for `jobs` new jobs of the caller's customer, by its tier: throws the 429 when a cap refuses
 * them. The jobs are in flight until the caller says how their submit ended: `stored()` once their rows are
 * committed (or the submit failed), `release()` when it stored none (queue/admission.ts counts them meanwhile).
 */
export async function admitJobs(deps: ApiDeps, req: Request, jobs: number): Promise<AdmissionTicket> {
  const { customerId, tier } = principalOf(req);
  const admitted = await deps.admission.admitUntilStored(customerId, tier, jobs);
  if (admitted.refusal) throw admissionProblem(admitted.refusal);
  return admitted;
}

/** What a route asks to submit; the customer, the row id, the idempotency key and the request hash come from the request. */
export type SubmitRequest = Omit<
  SubmitJobInput,
  'customerId' | 'id' | 'idempotencyKey' | 'requestHash' | 'quick' | 'scheduleName' | 'onStored'
>;

/**
 * The one way a route turns a request into a job and an answer: idempotency, the row + enqueue,
 * then 202 with Location — or, with `Prefer: wait`, 200 with the finished job if it finishes in time.
 */
export async function submitAndRespond(
  deps: ApiDeps,
  req: Request,
  res: Response,
  customerId: string,
  submit: SubmitRequest,
  options: {
    /** The key when the request has no `Idempotency-Key` (a retry's `retryIdempotencyKey`); its replays are not compared by body. */
    fallbackIdempotencyKey?: string | null;
    /** The request's hash (`requestHashOf`) when it was taken already; else it is taken of `req.body` when a key is sent. */
    requestHash?: string | null;
  } = {},
): Promise<void> {
  refuseWhenRedisFull(deps);
  const headerKey = req.header('idempotency-key') ?? null;
  if (headerKey !== null && !idempotencyKeyPattern.test(headerKey)) {
    throw new ProblemError('validation', 'Idempotency-Key must be 1–255 visible ASCII characters', {
      errors: [{ field: 'header.idempotency-key', message: 'must be 1–255 visible ASCII characters' }],
    });
  }
  const idempotencyKey = headerKey ?? options.fallbackIdempotencyKey ?? null;
  // A large body's hash was taken where it was parsed (the batch checker's thread): `options.requestHash`.
  const requestHash = headerKey ? (options.requestHash ?? requestHashOf(req.method, req.path, req.body)) : null;
  // Stage times are taken only for a timed request (SERVER_TIMING): otherwise no clock is read for them.
  const timed = req.timing !== undefined;
  const admitting = timed ? performance.now() : 0;
  const admitted = await admitJobs(deps, req, 1);
  if (timed) recordStage(req, 'admission', admitting);
  const waitMs = preferredWaitMs(req);
  // A waiting request listens for its job's notice before the job is enqueued, so a fast worker cannot finish it unheard.
  const id = uuidv7();
  const watch = waitMs !== null ? deps.waiter.watch(id) : null;
  try {
    const inserting = timed ? performance.now() : 0;
    let enqueueing = inserting;
    const origin = watch ? timingOrigin(req) : undefined;
    const marks = origin === undefined ? null : new StageMarks(origin);
    const hints: QueuedJobHints = { ...submit.hints };
    if (watch) hints.notify = true;
    if (origin !== undefined) hints.timingOrigin = origin;
    // Submitting runs raw SQL only (no identity map), so the root entity manager serves without a fork per request.
    const outcome = await submitJob(
      {
        em: deps.orm.em,
        queues: deps.queues,
        logger: deps.logger,
        inserter: deps.jobInserter,
        fair: deps.fair,
        pendingEnqueues: deps.pendingEnqueues,
      },
      // A waited job is answered 200 with its outcome, so its row need not wait for the disk; a wait that runs out makes it durable before the 202.
      {
        customerId,
        ...submit,
        id,
        idempotencyKey,
        requestHash,
        quick: watch !== null,
        // Fair sharing weighs a backlogged customer by the tier of the service it called.
        weight: deps.fair?.weightOf(req.principal?.tier) ?? 1,
        hints,
        // The row is committed: admission need no longer add the job to what PostgreSQL counts.
        onStored: timed
          ? () => {
              admitted.stored();
              recordStage(req, 'insert', inserting);
              enqueueing = performance.now();
            }
          : admitted.stored,
      },
    );
    // No row of its own (a replayed key, a missing substrate, a key conflict): its place is given back.
    if (outcome.kind !== 'created') admitted.release();
    if (timed) recordStage(req, 'enqueue', enqueueing);
    marks?.mark('enqueued');
    if (outcome.kind === 'substrate-missing') throw new ProblemError('not-found', `substrate ${submit.requireSubstrateId} not found`);
    if (outcome.kind === 'key-conflict') {
      throw new ProblemError('unprocessable', 'this Idempotency-Key was already used with a different request body', {
        errors: [{ field: 'header.idempotency-key', message: 'reused with a different body' }],
      });
    }
    // A replayed Idempotency-Key answers with the job it first created, which this watch does not cover.
    const ownWatch = outcome.job.id === id ? watch : null;
    await respondWithJob(deps, req, res, outcome.job, waitMs, ownWatch, ownWatch ? marks : null);
  } finally {
    // A submit that failed: no longer in flight (still counted until the counts are read again).
    admitted.stored();
    watch?.stop();
  }
}

async function respondWithJob(
  deps: ApiDeps,
  req: Request,
  res: Response,
  accepted: JobRecord,
  waitMs: number | null,
  watch: JobWatch | null,
  /** A timed request's marks (SERVER_TIMING): `noticed` is marked when the wait ends, then they are stored. */
  marks: StageMarks | null = null,
): Promise<void> {
  let job: StoredJob = accepted;
  if (waitMs !== null && !finalStates.includes(job.state)) {
    const em = deps.orm.em.fork();
    const reread = () => findJob(em, accepted.customerId, accepted.id);
    const waiting = performance.now();
    job = watch ? await watch.until(job, waitMs, reread) : await deps.waiter.waitForFinal(job, waitMs, reread);
    recordStage(req, 'wait', waiting);
    if (marks) {
      marks.mark('noticed');
      marks.store(deps.redis, deps.config.queuePrefix, accepted.id);
    }
  }
  res.setHeader('Location', jobLocation(job.id));
  // 200 only answers a wait (SPEC §5): a replayed Idempotency-Key whose job has since finished still answers 202, as the first time.
  if (waitMs !== null && finalStates.includes(job.state)) {
    res.setHeader('Preference-Applied', `wait=${waitMs / 1000}`);
    sendJson(res, 200, jobView(job));
    return;
  }
  if (waitMs !== null) await makeJobDurable({ em: deps.orm.em, queues: deps.queues, logger: deps.logger, fair: deps.fair }, job);
  sendJson(res, 202, {
    id: job.id,
    type: job.type,
    state: job.state,
    created_at: new Date(job.createdAt).toISOString(),
    ...(job.retryOf ? { retry_of: job.retryOf } : {}),
    links: { self: jobLocation(job.id) },
  });
}

/** Most bytes of results (as JSON) a bulk submit's 200 under `Prefer: wait` carries; past it the answer is 202. */
export const bulkWaitMaxResultBytes = 4 * 1024 * 1024;

/**
 * A bulk submit's answer under `Prefer: wait`: 200 with every job as `GET /jobs/:id` shows it once all are
 * final within `waitMs` (read in one query, and only while their results together stay within
 * `bulkWaitMaxResultBytes`: no answer of a thousand megabyte results is built), else 202 with the items as
 * without the preference, each in the state last seen (their rows are durable already: a bulk submit's
 * INSERT waits for the disk).
 */
export async function respondWithJobs(deps: ApiDeps, res: Response, accepted: readonly JobRecord[], waitMs: number): Promise<void> {
  const customerId = accepted[0]?.customerId ?? '';
  const em = deps.orm.em.fork();
  const ids = accepted.map((job) => job.id);
  const states = await deps.waiter.waitForStates(accepted, waitMs, (waiting) => findJobStates(em, customerId, waiting));
  const finished = [...states.values()].every((state) => finalStates.includes(state));
  const jobs = finished ? await findJobsWithin(em, customerId, ids, bulkWaitMaxResultBytes) : null;
  if (!jobs) {
    sendJson(res, 202, { items: acceptedJobItems(accepted.map((job) => ({ ...job, state: states.get(job.id) ?? job.state }))) });
    return;
  }
  const byId = new Map(jobs.map((job) => [job.id, job]));
  res.setHeader('Preference-Applied', `wait=${waitMs / 1000}`);
  sendJson(res, 200, { items: ids.map((id) => jobView(byId.get(id) as JobRecord)) });
}

/**
 * `Prefer: wait` on an invocation whose result is cached: answer 200 at once, without a queue or a
 * worker. The job is still recorded (completed, `cached: true`) before the answer goes out, so
 * GET /jobs/:id finds it. Idempotent submits take the ordinary path. Says whether it answered, missed
 * under the substrate's first epoch (the worker need not look again: `missedAtFirstEpoch`) or did not look.
 */
export async function answerFromCache(
  deps: ApiDeps,
  req: Request,
  res: Response,
  customerId: string,
  substrateId: string,
  parameters: Record<string, unknown>,
  /** The same lookup, started earlier (`startInvokeCacheLookup`); else it is made here. */
  started?: Promise<CacheLookup>,
): Promise<'answered' | 'missed' | 'not-looked'> {
  const waitMs = preferredWaitMs(req);
  if (waitMs === null || req.header('idempotency-key') !== undefined) return 'not-looked';
  const looking = performance.now();
  const hit = await (started ?? deps.cache.lookup(customerId, substrateId, parameters));
  recordStage(req, 'cache', looking);
  // A miss after the substrate's results were dropped leaves the worker to look again (and read the epoch).
  if (!('value' in hit)) return missedAtFirstEpoch(hit) ? 'missed' : 'not-looked';
  const result = {
    substrate_id: substrateId,
    result: hit.value,
    invocation_time_ms: Math.round((performance.now() - looking) * 1000) / 1000,
    cached: true,
  };
  const id = uuidv7();
  // The row is stored with this instant as its created, started and finished time: GET /jobs/:id shows what this answer shows.
  const createdAt = new Date();
  await deps.finishedJobs.add({ id, customerId, type: 'invoke', payload: { substrate_id: substrateId, parameters }, result, createdAt });
  const now = createdAt.toISOString();
  res.setHeader('Location', jobLocation(id));
  res.setHeader('Preference-Applied', `wait=${waitMs / 1000}`);
  sendJson(res, 200, {
    id,
    type: 'invoke',
    state: 'completed',
    progress: 0,
    attempts_made: 0,
    result,
    created_at: now,
    started_at: now,
    finished_at: now,
  });
  return 'answered';
}
