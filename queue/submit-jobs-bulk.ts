import type { JobsOptions } from 'bullmq';
import { uuidv7 } from '../lib/uuid.js';
import type { JobRecord } from '../db/entities/job-record.entity.js';
import { missedAtFirstEpoch, type InvocationCache } from '../db/invocation-cache.js';
import { insertJobsAllOrNothing, insertJobsBulk, type AllOrNothingRefusal, type JobInsert } from '../db/jobs/insert-jobs.js';
import type { JobDefinition } from '../jobs/define-job.js';
import { groupByQueue, queuedPayload, type QueuedJobData } from './queues.js';
import { laneSeq, packHints } from './fair-share/fair-share.js';
import { withinEnqueueTimeout } from './enqueue-timeout.js';
import { fitsJsonBytes } from '../jobs/result-limit.js';
import { assignBundles, bundlesJobsOf, foldBundles, isBundleData, packBundleEntry, type BundleJob } from './bundles.js';
import { idempotencyWindowMs, newJobRow, type SubmitDeps, type SubmitJobInput } from './submit-job.js';

/**
 * Whether the payload has no cached result (for job types with a `cacheKey`), so its worker need not look
 * again. Lookups made together go out together (the cache batches them: one HMGET per customer). A lookup
 * Redis cannot answer counts as a miss; a payload the cache cannot answer is not marked.
 */
async function isCacheMiss(cache: InvocationCache, customerId: string, definition: JobDefinition, payload: unknown): Promise<boolean> {
  const key = definition.cacheKey?.(payload) ?? null;
  // A lookup hashes the parameters on this thread: for large ones (a 15 MB bulk of 15 KB parameters held the event
  // loop ~75 ms a request for it) the worker looks itself, off the API's loop.
  if (key === null || !fitsJsonBytes(key.parameters, cacheProbeMaxBytes)) return false;
  return missedAtFirstEpoch(await cache.lookup(customerId, key.substrateId, key.parameters));
}

/** Largest parameters (bytes of JSON) a bulk submit looks up in the invocation cache for its workers. */
const cacheProbeMaxBytes = 1024;

/** Every payload parsed with the job type's schema; the first that fails throws, naming its index and field. */
function parsePayloads(definition: JobDefinition, payloads: unknown[]): unknown[] {
  return payloads.map((payload, index) => {
    const parsed = definition.payload.safeParse(payload);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw new TypeError(
      `payloads[${index}]${(issue?.path ?? []).map((key) => `.${String(key)}`).join('')}: ${issue?.message ?? 'invalid'} (no ${definition.name} job was submitted)`,
    );
  });
}

/**
 * Accepts many jobs of one type at once: one multi-row INSERT per 1,000 rows and, meanwhile, one cache
 * lookup for them, then one BullMQ addBulk per shard — on a fair-shared queue (FAIR_SHARING), one admission
 * per shard first, and the addBulk of only what it releases (the rest waits in the customer's lane) — the bulk path for producers that have thousands of jobs in
 * hand (and the benchmark). Every payload is checked against the job type's schema first, so one bad
 * payload submits nothing. No idempotency keys here. Returns the new ids in order.
 */
export async function submitJobsBulk(
  deps: SubmitDeps & { cache: InvocationCache },
  customerId: string,
  definition: JobDefinition,
  candidates: unknown[],
  /** The customer's fair-sharing weight (`fairQueues.weightOf(tier)`). Default 1. */
  weight = 1,
): Promise<string[]> {
  const payloads = parsePayloads(definition, candidates);
  const ids: string[] = [];
  for (let start = 0; start < payloads.length; start += 1000) {
    const chunk = payloads.slice(start, start + 1000);
    const chunkIds = chunk.map(() => uuidv7());
    const bundleIds = assignBundles(
      chunkIds,
      deps.queues.bundleSize,
      (id) => deps.queues.forJob(definition.name, id),
      () => bundlesJobsOf(definition, deps.queues.bundleSize),
    );
    const [missed] = await Promise.all([
      Promise.all(chunk.map((payload) => isCacheMiss(deps.cache, customerId, definition, payload))),
      insertJobsBulk(
        deps.em,
        customerId,
        definition.name,
        definition.queue.attempts,
        chunk.map((payload, i) => ({ id: chunkIds[i], payload, bundle_id: bundleIds[i] ?? undefined })),
      ),
    ]);
    // One addBulk per shard: a MULTI never spans queues (on a Redis Cluster they live on other slots).
    const jobs = chunk.map((payload, i) => ({
      name: definition.name,
      data: { customerId, payload, ...(missed[i] ? { cacheMissed: true } : {}) },
      opts: { jobId: chunkIds[i] as string, attempts: definition.queue.attempts },
    }));
    const bundleOf = new Map(chunkIds.map((id, i) => [id, bundleIds[i] ?? null]));
    await addPerShard(deps, jobs, weight, (job) => bundleOf.get(job.opts.jobId) ?? null);
    ids.push(...chunkIds);
  }
  return ids;
}

/** One job of a `submitJobList`: what `submitJob` takes, less what the list decides (customer, id, quickness). */
export type ListedJob = Omit<SubmitJobInput, 'customerId' | 'id' | 'quick' | 'hints'>;

export type SubmitListOutcome =
  | {
      kind: 'created';
      /** Per job, in order: the job accepted now, or (`replayed`) the one its idempotency key already named. */
      jobs: Array<{ job: JobRecord; replayed: boolean }>;
      /** Whether Redis took the new jobs in time (else the sweeper enqueues them from their rows). */
      enqueued: boolean;
    }
  | AllOrNothingRefusal;

/**
 * Accepts a list of jobs of one customer, all or none (`POST /jobs/bulk`): every row in one transaction
 * and one INSERT (refused whole when a job names a substrate the customer does not own or reuses an
 * idempotency key with another request), then the new ones into BullMQ with one `addBulk` per queue.
 * Replayed jobs are not enqueued again. Like `submitJob`, the rows are the record: if Redis does not take
 * the jobs within `enqueueTimeoutMs`, they stay `queued` and the sweeper enqueues them.
 */
export async function submitJobList(
  deps: SubmitDeps & { cache: InvocationCache },
  customerId: string,
  list: ListedJob[],
  /** The customer's fair-sharing weight (`fairQueues.weightOf(tier)`). Default 1. */
  weight = 1,
  /** Someone waits for these jobs (`Prefer: wait`): their outcomes are announced (`QueuedJobHints.notify`). */
  options: { notify?: boolean } = {},
): Promise<SubmitListOutcome> {
  const ids = list.map(() => uuidv7());
  const bundleIds = assignBundles(
    list.map((input, index) => ({ input, id: ids[index] as string })),
    deps.queues.bundleSize,
    ({ input, id }) => deps.queues.forJob(input.definition.name, id),
    ({ input }) => bundlesJobsOf(input.definition, deps.queues.bundleSize) && !input.priority && !input.delayMs,
  );
  const inserts: JobInsert[] = list.map((input, index) => ({
    row: { ...newJobRow({ ...input, customerId }, ids[index] as string), bundleId: bundleIds[index] ?? null },
    requireSubstrateId: input.requireSubstrateId,
  }));
  const [outcome, missed] = await Promise.all([
    insertJobsAllOrNothing(deps.em, inserts, idempotencyWindowMs),
    // Meanwhile, which invocations the cache cannot answer: their workers need not look again.
    Promise.all(list.map((input) => isCacheMiss(deps.cache, customerId, input.definition, input.payload))),
  ]);
  if (outcome.kind !== 'inserted') return outcome;

  const bundleOf = new Map(outcome.jobs.map(({ job }) => [job.id, job.bundleId]));
  const bulk: BulkJob[] = [];
  outcome.jobs.forEach(({ job, replayed }, index) => {
    if (replayed) return;
    const data: QueuedJobData = { customerId, ...queuedPayload(job.payload) };
    if (missed[index]) data.cacheMissed = true;
    if (job.webhookUrl) data.hasWebhookUrl = true;
    if (options.notify) data.notify = true;
    bulk.push({
      name: job.type,
      data,
      opts: {
        jobId: job.id,
        attempts: job.maxAttempts,
        ...(job.priority > 0 ? { priority: job.priority } : {}),
        ...(job.delayMs > 0 ? { delay: job.delayMs } : {}),
      },
    });
  });
  const enqueued = await withinEnqueueTimeout(
    addPerShard(deps, bulk, weight, (job) => bundleOf.get(job.opts.jobId) ?? null),
    (error) =>
      deps.logger.warn({ err: error, jobs: outcome.jobs.length }, 'bulk enqueue failed; the sweeper will enqueue the accepted jobs later'),
  );
  return { kind: 'created', jobs: outcome.jobs, enqueued };
}

type BulkJob = { name: string; data: QueuedJobData; opts: JobsOptions & { jobId: string } };

/**
 * One addBulk per shard (a MULTI never spans queues: on a Redis Cluster they live on other slots). On a
 * fair-shared queue (FAIR_SHARING) one admission per shard first, and the addBulk of only what it releases;
 * the rest waits in the customer's lane (priority and delay go with it) until a worker releases it.
 */
async function addPerShard(
  deps: Pick<SubmitDeps, 'queues' | 'fair'>,
  jobs: BulkJob[],
  weight: number,
  /** The bundle a job travels in (queue/bundles.ts), decided when its row was made; null: alone. */
  bundleOf: (job: BulkJob) => string | null,
): Promise<unknown> {
  const byQueue = groupByQueue(deps.queues, jobs, (job) => ({ type: job.name, id: job.opts.jobId }));
  return Promise.all(
    [...byQueue].map(async ([queue, group]) => {
      const fair = deps.fair?.of(queue);
      // A bundle's data is not a job's: BullMQ stores either as JSON, and the worker tells them apart (isBundleData).
      const folded = foldBundles(group, bundleOf);
      if (!fair) return queue.addBulk(folded as BulkJob[]);
      // A bundle enters its customer's lane as one entry: held, released and charged whole (`fairEntry`).
      for (const job of folded) if (isBundleData(job.data)) job.data.fairEntry = true;
      const now = Date.now();
      const released = new Set(
        await fair.admit(
          queue.qualifiedName,
          folded.map((job) => {
            if (isBundleData(job.data))
              return {
                id: job.opts.jobId,
                customerId: job.data.customerId,
                weight,
                seq: laneSeq(job.data.members[0]!.id),
                hints: packBundleEntry(job as BundleJob),
                jobs: job.data.members.length,
              };
            const { customerId, payload: _payload, payloadInRow: _payloadInRow, ...hints } = job.data;
            const { opts } = job;
            return {
              id: opts.jobId,
              customerId,
              weight,
              ...(opts.priority ? { priority: opts.priority } : {}),
              ...(opts.delay ? { delayUntil: now + opts.delay } : {}),
              hints: packHints(hints),
            };
          }),
        ),
      );
      const releasedNow = folded
        .filter((job) => released.has(job.opts.jobId))
        .map(({ opts: { priority: _priority, delay: _delay, ...opts }, ...job }) => ({ ...job, opts })) as BulkJob[];
      return releasedNow.length > 0 ? queue.addBulk(releasedNow) : [];
    }),
  );
}
