import type { RetryOriginal } from '../db/jobs/job-columns.js';
import { getJobDefinition } from '../jobs/registry.js';
import { submitJob, type SubmitDeps, type SubmitJobInput } from './submit-job.js';
import { eachAtMost } from '../lib/each-at-most.js';

/**
 * What submitting a retry of `original` means: a new job of the same customer, type and payload with the
 * same priority, attempts and `webhook_url`, and `retry_of` naming the original. Not its `delay_ms`: a
 * retry is asked for now. A job on a substrate is refused (404) if the substrate is gone, as at submit.
 * Null when the job type no longer exists.
 */
export function retryInput(original: RetryOriginal): Omit<SubmitJobInput, 'customerId'> | null {
  const definition = getJobDefinition(original.type);
  if (!definition) return null;
  return {
    definition,
    payload: original.payload,
    ...(original.priority > 0 ? { priority: original.priority } : {}),
    attempts: original.maxAttempts,
    webhookUrl: original.webhookUrl,
    requireSubstrateId: original.payloadSubstrateId ?? undefined,
    retryOf: original.id,
  };
}

/**
 * The idempotency key of a retry of `originalId` by POST /admin/jobs/retry, which retries a job once: concurrent
 * or repeated runs insert one row (for the key's 24 hours, `idempotencyWindowMs`).
 */
export const retryIdempotencyKey = (originalId: string) => `retry:${originalId}`;

/**
 * The idempotency key of a POST /jobs/:id/retry without an `Idempotency-Key` (and of POST /admin/jobs/:id/retry): named after the newest retry of
 * `originalId` that had ended when the request (the first of its group: api/routes/job-search.routes.ts) was asked
 * for (`findRetryEndedBefore`; null when none had). Retries asked for while the next one was being made or was
 * running name the same one, so they share one new job, even when it fails at once and the last of them read it
 * as failed (keyed by a count of ended retries, as before, those got a key of their own and made a second retry).
 * A retry asked for after it ended names it instead: a new job.
 */
export const retryIdempotencyKeyAfter = (originalId: string, lastEndedRetryId: string | null) =>
  `retry:${originalId}:after:${lastEndedRetryId ?? 'none'}`;

/** What one bulk retry did. */
export interface BulkRetryOutcome {
  /** The new jobs, in the order of their originals. */
  jobIds: string[];
  /** Originals not retried: the type is gone, the substrate was deleted, or a concurrent retry retried it. */
  skipped: number;
}

/**
 * Retries these jobs through the submit path (the row, then the enqueue, in the customer's fair-share lane at
 * `weightOf` its tier; the substrate guard as for any submit, but not the customer's admission caps: an
 * operator's retry is not the customer's traffic), `concurrency` at a time so the API's group commit shares inserts.
 * Each under `retryIdempotencyKey`: a job another retry already retried counts as skipped, not again.
 */
export async function retryJobs(
  deps: SubmitDeps,
  originals: readonly RetryOriginal[],
  options: { concurrency?: number; weightOf?: (customerId: string) => number } = {},
): Promise<BulkRetryOutcome> {
  const concurrency = options.concurrency ?? 50;
  const jobIds: Array<string | null> = new Array(originals.length).fill(null);
  await eachAtMost(concurrency, originals, async (original, index) => {
    const input = retryInput(original);
    if (!input) return;
    const outcome = await submitJob(deps, {
      ...input,
      customerId: original.customerId,
      weight: options.weightOf?.(original.customerId),
      idempotencyKey: retryIdempotencyKey(original.id),
    });
    if (outcome.kind === 'created') jobIds[index] = outcome.job.id;
  });
  const created = jobIds.filter((id): id is string => id !== null);
  return { jobIds: created, skipped: originals.length - created.length };
}
