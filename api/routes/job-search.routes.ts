import { Router } from 'express';
import { z } from 'zod';
import { jobStates, retryableStates, type JobState } from '../../db/entities/job-record.entity.js';
import { findJobToRetry, findRetryEndedBefore } from '../../db/jobs/find-jobs.js';
import { jobView } from '../../db/jobs/job-view.js';
import { searchJobPage } from '../../db/jobs/search-jobs.js';
import { jobTypeNames } from '../../jobs/registry.js';
import { retryIdempotencyKeyAfter, retryInput } from '../../queue/retry-jobs.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { submitAndRespond } from '../job-responses.js';
import { decodeCursor, pageBound, pageOf, paginationQuery } from '../pagination.js';
import { sendReadAnswer } from '../send-json.js';
import type { RateLimits } from '../rate-limits.js';
import { notFound, ProblemError } from '../problems.js';
import { parseInput, refuseBodyFields } from '../validate.js';
import { jobIdParams } from './jobs.routes.js';
import { filterTime } from '../storable-time.js';

const stateAlternatives = jobStates.join('|');

/**
 * `state=failed,cancelled` (SPEC §9: a comma-separated list); a repeated `state=failed&state=cancelled` is read
 * the same way. Refused (400 on `query.state`) unless every item is a job state.
 */
export const stateListQuery = z.preprocess(
  (value) => (Array.isArray(value) ? value.join(',') : value),
  z
    .string()
    .max(200)
    .regex(new RegExp(`^(?:${stateAlternatives})(?:,(?:${stateAlternatives}))*$`), `a comma-separated list of: ${jobStates.join(', ')}`)
    .describe(`One state or a comma-separated list (${jobStates.join(', ')}); a job in any of them matches`)
    .meta({ example: 'failed,cancelled' }),
);

/** An ISO 8601 time with its offset (`Z` or `+02:00`). */
export const timeQuery = (what: string) => filterTime().describe(what).meta({ example: '2026-12-01T00:00:00Z' });

/** The filters GET /jobs shares with the admin's searches. */
export const timeFilters = {
  created_after: timeQuery('Jobs created at or after this time').optional(),
  created_before: timeQuery('Jobs created before this time').optional(),
};

export const searchJobsQuery = z.strictObject({
  type: z.enum(jobTypeNames).optional(),
  state: stateListQuery.optional(),
  ...timeFilters,
  schedule: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a schedule name: 1–64 letters, digits, ".", "_" or "-"')
    .optional()
    .describe("Only the runs of the caller's schedule of this name")
    .meta({ example: 'nightly-report' }),
  ...paginationQuery,
});

/** The states of a `state` query, deduplicated. */
export const statesOf = (value: string | undefined): JobState[] | undefined =>
  value === undefined ? undefined : [...new Set(value.split(',') as JobState[])];

/** The time window of a query; `created_after` not before `created_before` is a 422 on `query.created_before`. */
export function timeWindowOf(query: { created_after?: string; created_before?: string }, source = 'query') {
  const createdAfter = query.created_after === undefined ? undefined : new Date(query.created_after);
  const createdBefore = query.created_before === undefined ? undefined : new Date(query.created_before);
  if (createdAfter && createdBefore && createdAfter >= createdBefore) {
    throw new ProblemError('unprocessable', 'created_before must be later than created_after', {
      errors: [{ field: `${source}.created_before`, message: 'must be later than created_after' }],
    });
  }
  return { createdAfter, createdBefore };
}

/** Characters of a retried payload its one write point covers; each further MiB started is one more point. */
const retryPointChars = 1024 * 1024;
const extraPointsOf = (chars: number) => Math.max(0, Math.ceil(chars / retryPointChars) - 1);

/** How long after a group of concurrent POST /jobs/:id/retry of one job began a request may still join it, in ms. */
const retryBurstMs = 2000;

interface RetryBurst {
  /** When its first request was asked for (epoch ms). */
  since: number;
  /** Its requests not answered yet. */
  requests: number;
  /** The idempotency key its retries share, once its first request got that far. */
  key: Promise<string> | null;
}

/** GET /jobs with its filters, and POST /jobs/:id/retry (SPEC §9). */
export function jobSearchRoutes(deps: ApiDeps, rateLimits: Pick<RateLimits, 'chargeReads' | 'spend'>): Router {
  const router = Router();

  router.get('/jobs', async (req, res) => {
    const principal = principalOf(req);
    const query = parseInput(searchJobsQuery, req.query, 'query');
    const found = await searchJobPage(
      deps.orm.em.fork(),
      {
        customerId: principal.customerId,
        types: query.type ? [query.type] : undefined,
        states: statesOf(query.state),
        ...timeWindowOf(query),
        scheduleName: query.schedule,
        beforeId: decodeCursor(query.cursor, z.uuid()),
      },
      pageBound(query.limit),
    );
    await sendReadAnswer(
      rateLimits,
      req,
      res,
      pageOf(found, jobView, (row) => row.id),
    );
  });

  /**
   * The POST /jobs/:id/retry requests of one job (by customer and id) this process is answering, grouped while they
   * overlap: a request asked for while another of the last `retryBurstMs` is still being answered joins its group
   * and uses its idempotency key, read once, for the group's first request. The group ends with its last answer.
   */
  const retryBursts = new Map<string, RetryBurst>();
  const joinBurst = (name: string, askedAt: number): RetryBurst => {
    const current = retryBursts.get(name);
    if (current && askedAt - current.since < retryBurstMs) {
      current.requests++;
      return current;
    }
    const burst: RetryBurst = { since: askedAt, requests: 1, key: null };
    retryBursts.set(name, burst);
    return burst;
  };
  const leaveBurst = (name: string, burst: RetryBurst) => {
    if (--burst.requests === 0 && retryBursts.get(name) === burst) retryBursts.delete(name);
  };

  /**
   * A failed or cancelled job, run again as a new job through the ordinary submit path (rate limit,
   * admission, `Idempotency-Key`, `Prefer: wait`): 202 with the new job, whose `retry_of` is the original.
   * Without an `Idempotency-Key`, retries of the job asked for together make one retry, and each answers with it
   * (202, the same id), even when it has failed before they are answered: those asked while another is still being
   * answered (`retryBursts`: within this process, for up to `retryBurstMs`), and those asked before the job's
   * newest retry ended (by its `finished_at`: across processes too). A retry asked for once the others were
   * answered and the newest retry had ended is a new job. The key names the newest retry that had ended when the
   * group's first request was asked for (`retry:<id>:after:<that retry | none>`). (It was the count of retries
   * ended by the time each request read them: when the first retry failed at once, a burst's last requests counted
   * one more, took a key of their own and made a second retry — and a burst spread by a loaded API over more than
   * that retry's life still would, without the grouping.)
   */
  router.post('/jobs/:id/retry', async (req, res) => {
    // When the retry was asked for, before any read: what had ended by then decides (`findRetryEndedBefore`).
    const askedAt = Date.now();
    const principal = principalOf(req);
    const { id } = parseInput(jobIdParams, req.params, 'params');
    refuseBodyFields(req.body);
    const burstName = `${principal.customerId}:${id}`;
    const burst = joinBurst(burstName, askedAt);
    try {
      const original = await findJobToRetry(deps.orm.em.fork(), principal.customerId, id);
      if (!original) throw notFound(`job ${id}`);
      if (!retryableStates.includes(original.state)) {
        throw new ProblemError('conflict', `job ${id} is ${original.state}: only failed or cancelled jobs can be retried`, {
          state: original.state,
        });
      }
      const input = retryInput(original);
      if (!input) throw new ProblemError('conflict', `job type ${original.type} no longer exists`, { state: original.state });
      if (input.definition.adminOnly && principal.role !== 'admin')
        throw new ProblemError('forbidden', `only administrators may submit ${original.type} jobs`);
      // Copying a large payload into the new row costs the API as much as submitting it: each further MiB started is
      // one more write of the budget (a retry was one point, so a starter's 15 MB batches, cancelled and retried, cost
      // the event loop ~60 ms a point; the large-body routes take their bodies through the bulk-write cap instead).
      await rateLimits.spend(req, res, extraPointsOf(original.payload?.text.length ?? 0));
      // Read once per group, as of its first request.
      burst.key ??= findRetryEndedBefore(deps.orm.em, principal.customerId, original.id, burst.since).then((lastEnded) =>
        retryIdempotencyKeyAfter(original.id, lastEnded),
      );
      await submitAndRespond(deps, req, res, principal.customerId, input, { fallbackIdempotencyKey: await burst.key });
    } finally {
      leaveBurst(burstName, burst);
    }
  });

  return router;
}
