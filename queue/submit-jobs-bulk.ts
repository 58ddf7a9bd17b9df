import { uuidv7 } from 'uuidv7';
import type { InvocationCache } from '../db/invocation-cache.js';
import { insertJobsBulk } from '../db/jobs/insert-jobs.js';
import type { JobDefinition } from '../jobs/define-job.js';
import { groupByQueue } from './queues.js';
import type { SubmitDeps } from './submit-job.js';

/**
 * Which payloads of a chunk have no cached result (for job types with a `cacheKey`): looked up together
 * (one HMGET per substrate), so each worker need not look again. A lookup Redis cannot answer counts as
 * a miss; a payload the cache cannot answer is not marked.
 */
async function cacheMisses(cache: InvocationCache, customerId: string, definition: JobDefinition, payloads: unknown[]): Promise<boolean[]> {
  const keyOf = definition.cacheKey;
  if (!keyOf) return payloads.map(() => false);
  return Promise.all(
    payloads.map(async (payload) => {
      const key = keyOf(payload);
      return key !== null && (await cache.get(customerId, key.substrateId, key.parameters)) === null;
    }),
  );
}

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
    const [missed] = await Promise.all([
      cacheMisses(deps.cache, customerId, definition, chunk),
      insertJobsBulk(
        deps.em,
        customerId,
        definition.name,
        definition.queue.attempts,
        chunk.map((payload, i) => ({ id: chunkIds[i], payload })),
      ),
    ]);
    // One addBulk per shard: a MULTI never spans queues (on a Redis Cluster they live on other slots).
    const jobs = chunk.map((payload, i) => ({
      name: definition.name,
      data: { customerId, payload, ...(missed[i] ? { cacheMissed: true } : {}) },
      opts: { jobId: chunkIds[i] as string, attempts: definition.queue.attempts },
    }));
    const byQueue = groupByQueue(deps.queues, jobs, (job) => ({ type: definition.name, id: job.opts.jobId }));
    await Promise.all(
      [...byQueue].map(async ([queue, group]) => {
        const fair = deps.fair?.of(queue);
        if (!fair) return queue.addBulk(group);
        const released = new Set(
          await fair.admit(
            queue.qualifiedName,
            group.map((job) => ({
              id: job.opts.jobId,
              customerId,
              weight,
              hints: job.data.cacheMissed ? '{"cacheMissed":true}' : '',
            })),
          ),
        );
        const now = group.filter((job) => released.has(job.opts.jobId));
        return now.length > 0 ? queue.addBulk(now) : [];
      }),
    );
    ids.push(...chunkIds);
  }
  return ids;
}
