import { Router } from 'express';
import { z } from 'zod';
import type { JobRecord, JobState } from '../../db/entities/job-record.entity.js';
import { jobView } from '../../db/jobs/job-view.js';
import { cancelJobRows } from '../../db/jobs/job-states.js';
import { failureGroups, type FailureGroup } from '../../db/jobs/failure-groups.js';
import { countJobs, searchJobPage, searchJobs, searchJobsToRetry, type JobSearch } from '../../db/jobs/search-jobs.js';
import { listAdminActions, recordAdminAction, type AdminAuditRow } from '../../db/repositories/admin-audit.js';
import { setCustomerPaused } from '../../db/repositories/customer-pauses.js';
import { computeTiersOf } from '../../db/repositories/service-instances.js';
import { atMost } from '../../jobs/input-limits.js';
import { jobTypeNames } from '../../jobs/registry.js';
import { customerPauseChannel } from '../../lib/channels.js';
import { stopCancelledJobs } from '../../queue/stop-cancelled-job.js';
import { pauseRefreshMs, releasePausedJobs } from '../../queue/customer-pauses.js';
import { retryJobs } from '../../queue/retry-jobs.js';
import { principalOf, requireAdmin } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { decodeCursor, page, pageBound, pageOf, paginationQuery, queryInteger } from '../pagination.js';
import { sendReadAnswer } from '../send-json.js';
import { notFound } from '../problems.js';
import { parseInput, refuseBodyFields } from '../validate.js';
import { customerParams } from './admin.routes.js';
import { stateListQuery, statesOf, timeFilters, timeQuery, timeWindowOf } from './job-search.routes.js';

/** The most jobs one bulk retry or cancel may touch (SPEC §9); past it, 422 on `body.limit`. */
export const maxBulkJobs = 10_000;
/** Jobs retried or cancelled per round: one search, one batch of submits or one UPDATE. */
const bulkBatch = 500;
/**
 * Most payload bytes, as stored, one round of a bulk retry reads into the API: past it the round ends early (after its
 * first job, always) and the next goes on from there. Stored is compressed: a 15 MB batch of repetitive parameters
 * stores ~1 MB, so a round reads a few such payloads' text at most.
 */
const retryRoundMaxBytes = 4 * 1024 * 1024;
/** A dry run lists this many matching jobs. */
const sampleSize = 20;
/** A dry run counts matches up to this many (a count past it answers this). */
const countCap = 100_000;
/** Failure groups are made of at most this many of the newest failed jobs that match. */
export const failureGroupScan = 10_000;

const errorContains = z
  .string()
  .trim()
  .min(3, 'at least 3 characters (a trigram)')
  .max(200)
  .describe('Case-insensitive substring of the error text (at least 3 characters)')
  .meta({ example: 'division by zero' });

const customerId = z
  .uuid('a customer id is a UUID')
  .describe("One customer's jobs")
  .meta({ example: '01939a7e-0000-7000-8000-000000000001' });
const jobType = z.enum(jobTypeNames);

export const adminJobsQuery = z.strictObject({
  customer_id: customerId.optional(),
  type: jobType.optional(),
  state: stateListQuery.optional(),
  ...timeFilters,
  error_contains: errorContains.optional(),
  ...paginationQuery,
});

const bulkFields = {
  customer_id: customerId.optional(),
  type: jobType.optional(),
  created_after: timeQuery('Jobs created at or after this time').optional(),
  created_before: timeQuery('Jobs created before this time').optional(),
  error_contains: errorContains.optional(),
  dry_run: z.boolean().default(false).describe('Count and list a sample; change nothing'),
  limit: atMost(z.int().min(1), maxBulkJobs)
    .default(1000)
    .describe(`At most this many jobs (default 1,000; at most ${maxBulkJobs.toLocaleString('en-US')}, else 422)`),
};

export const failureGroupsQuery = z.strictObject({
  customer_id: customerId.optional(),
  type: jobType.optional(),
  ...timeFilters,
  limit: queryInteger(1, 100).default(20).describe('How many groups, the biggest first (1–100, default 20)'),
});

export const adminRetryBody = z
  .strictObject(bulkFields)
  .meta({ example: { customer_id: '01939a7e-0000-7000-8000-000000000001', error_contains: 'timeout', dry_run: true } });

const unfinishedStates = ['queued', 'delayed', 'active'] as const;
export const adminCancelBody = z
  .strictObject({
    ...bulkFields,
    state: z.array(z.enum(unfinishedStates)).min(1).optional().describe('Which unfinished states to cancel (default all three)'),
  })
  .meta({ example: { customer_id: '01939a7e-0000-7000-8000-000000000001', type: 'batch', dry_run: true } });

export const auditQuery = z.strictObject({
  customer_id: z.uuid('a customer id is a UUID').optional(),
  action: z
    .string()
    .regex(/^[a-z.]{1,40}$/, 'an action such as jobs.retry')
    .optional()
    .meta({ example: 'jobs.retry' }),
  ...paginationQuery,
});

/** A job as an admin sees it: the customer's view plus whose it is. */
export const adminJobView = (job: JobRecord) => ({ customer_id: job.customerId, ...jobView(job) });

const failureGroupView = (group: FailureGroup) => ({
  error: group.error === '' ? null : group.error,
  jobs: group.jobs,
  not_retried: group.notRetried,
  customers: group.customers,
  customer_ids: group.customerIds,
  types: group.types,
  first_failed_at: group.firstFailedAt,
  last_failed_at: group.lastFailedAt,
});

const auditView = (row: AdminAuditRow) => ({
  id: row.id,
  at: new Date(row.at).toISOString(),
  admin_user_id: row.adminUserId,
  action: row.action,
  customer_id: row.customerId,
  details: row.details,
});

type BulkBody = z.output<typeof adminRetryBody>;
const searchOf = (body: BulkBody, states: JobState[]): Omit<JobSearch, 'limit'> => ({
  customerId: body.customer_id,
  types: body.type ? [body.type] : undefined,
  states,
  ...timeWindowOf(body, 'body'),
  errorContains: body.error_contains,
});

/** The filters as given, for the audit log. */
const filtersOf = (input: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(input).filter(([key, value]) => value !== undefined && key !== 'cursor'));

/**
 * The operators' job tools under /api/v1/admin (SPEC §9): every customer's jobs by filter, bulk retry and
 * cancel with a dry run, pausing a customer's work, and the audit log every one of them writes to.
 */
export function adminJobsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const audit = (
    req: Parameters<typeof principalOf>[0],
    action: string,
    customer: string | null | undefined,
    details: unknown,
    durable = true,
  ) =>
    recordAdminAction(
      deps.orm.em.fork(),
      { adminUserId: principalOf(req).userId ?? null, action, customerId: customer, details },
      { durable },
    );

  router.get('/admin/jobs', requireAdmin, async (req, res) => {
    const query = parseInput(adminJobsQuery, req.query, 'query');
    const found = await searchJobPage(
      deps.orm.em.fork(),
      {
        customerId: query.customer_id,
        types: query.type ? [query.type] : undefined,
        states: statesOf(query.state),
        ...timeWindowOf(query),
        errorContains: query.error_contains,
        beforeId: decodeCursor(query.cursor, z.uuid()),
      },
      pageBound(query.limit),
    );
    // A cross-customer view is an admin action too; each page is one entry.
    await audit(req, 'jobs.view', query.customer_id, { filters: filtersOf(query), returned: found.rows.length }, false);
    await sendReadAnswer(
      null,
      req,
      res,
      pageOf(found, adminJobView, (row) => row.id),
    );
  });

  /**
   * Failed jobs grouped by their error's first 200 characters (the longest `error_contains`): what fails, how
   * often, for whom. Each group's `error` given to POST /admin/jobs/retry as `error_contains` retries it.
   */
  router.get('/admin/jobs/failure-groups', requireAdmin, async (req, res) => {
    const query = parseInput(failureGroupsQuery, req.query, 'query');
    const { groups, scanned } = await failureGroups(
      deps.orm.em.fork(),
      { customerId: query.customer_id, types: query.type ? [query.type] : undefined, ...timeWindowOf(query) },
      { scan: failureGroupScan, groups: query.limit },
    );
    await audit(req, 'jobs.failure-groups.view', query.customer_id, { filters: filtersOf(query), groups: groups.length }, false);
    res.json({ items: groups.map(failureGroupView), scanned, complete: scanned < failureGroupScan, as_of: new Date().toISOString() });
  });

  /**
   * Retries failed jobs that match, each once (a failed job that already has a retry is skipped, so running
   * this twice retries nothing new), through the ordinary submit path in rounds of 500.
   */
  router.post('/admin/jobs/retry', requireAdmin, async (req, res) => {
    const body = parseInput(adminRetryBody, req.body, 'body');
    const em = deps.orm.em.fork();
    const search = { ...searchOf(body, ['failed']), notRetried: true };
    if (body.dry_run) {
      const [matched, sample] = await Promise.all([countJobs(em, search, countCap), searchJobs(em, { ...search, limit: sampleSize })]);
      await audit(req, 'jobs.retry.dry-run', body.customer_id, { filters: filtersOf(body), matched });
      res.json({ dry_run: true, matched, retried: 0, job_ids: [], sample: sample.map(adminJobView) });
      return;
    }
    const submitDeps = { em: deps.orm.em, queues: deps.queues, logger: deps.logger, inserter: deps.jobInserter, fair: deps.fair };
    const jobIds: string[] = [];
    let matched = 0;
    let beforeId: string | undefined;
    while (matched < body.limit) {
      const round = await searchJobsToRetry(
        em,
        { ...search, beforeId, limit: Math.min(bulkBatch, body.limit - matched) },
        retryRoundMaxBytes,
      );
      if (round.next === null) break;
      matched += round.originals.length;
      beforeId = round.next;
      // Each customer's retried jobs weigh as its own submits do (its tier's fair-share weight), not as a starter's.
      const tiers = await computeTiersOf(
        em,
        round.originals.map((original) => original.customerId),
      );
      const weightOf = (customerId: string) => deps.fair?.weightOf(tiers.get(customerId)) ?? 1;
      jobIds.push(...(await retryJobs(submitDeps, round.originals, { weightOf })).jobIds);
    }
    await audit(req, 'jobs.retry', body.customer_id, { filters: filtersOf(body), matched, retried: jobIds.length });
    res.json({ dry_run: false, matched, retried: jobIds.length, job_ids: jobIds });
  });

  /** Cancels unfinished jobs that match, as DELETE /jobs/:id does for one, in rounds of 500. */
  router.post('/admin/jobs/cancel', requireAdmin, async (req, res) => {
    const body = parseInput(adminCancelBody, req.body, 'body');
    const em = deps.orm.em.fork();
    const search = searchOf(body, [...new Set(body.state ?? unfinishedStates)]);
    if (body.dry_run) {
      const [matched, sample] = await Promise.all([countJobs(em, search, countCap), searchJobs(em, { ...search, limit: sampleSize })]);
      await audit(req, 'jobs.cancel.dry-run', body.customer_id, { filters: filtersOf(body), matched });
      res.json({ dry_run: true, matched, cancelled: 0, job_ids: [], sample: sample.map(adminJobView) });
      return;
    }
    const jobIds: string[] = [];
    let matched = 0;
    let beforeId: string | undefined;
    while (matched < body.limit) {
      const found = await searchJobs(em, { ...search, beforeId, limit: Math.min(bulkBatch, body.limit - matched) });
      if (found.length === 0) break;
      matched += found.length;
      beforeId = found.at(-1)?.id;
      const cancelled = await cancelJobRows(
        em,
        found.map((job) => job.id),
        'cancelled by an administrator',
      );
      await stopCancelledJobs({ ...deps, queuePrefix: deps.config.queuePrefix }, cancelled);
      jobIds.push(...cancelled.map((job) => job.id));
    }
    await audit(req, 'jobs.cancel', body.customer_id, { filters: filtersOf(body), matched, cancelled: jobIds.length });
    res.json({ dry_run: false, matched, cancelled: jobIds.length, job_ids: jobIds });
  });

  for (const [action, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    router.post(`/admin/customers/:id/${action}`, requireAdmin, async (req, res) => {
      const { id } = parseInput(customerParams, req.params, 'params');
      refuseBodyFields(req.body);
      const outcome = await setCustomerPaused(deps.orm.em.fork(), id, paused);
      if (!outcome) throw notFound(`customer ${id}`);
      // Fair sharing keeps a copy per shard (every key a script touches shares the shard's hash tag), so that
      // a paused customer's held jobs stay in its lanes rather than being released only to be set aside.
      for (const key of deps.fair?.queues.keys() ?? []) await deps.fair!.share.setPaused(key, id, paused);
      await deps.redis.publish(customerPauseChannel(deps.config.queuePrefix), `${action}:${id}`);
      // Jobs that workers set aside while paused run again now, not when their delay ends; once more after the
      // workers' refresh interval, for a worker that set one aside again before it heard of the resume.
      const fair = deps.fair ? { queues: deps.fair, redis: deps.redis } : null;
      const released = paused ? 0 : await releasePausedJobs(deps.orm.em.fork(), deps.queues, id, fair);
      if (!paused) {
        setTimeout(
          () => void releasePausedJobs(deps.orm.em.fork(), deps.queues, id, fair).catch(() => undefined),
          pauseRefreshMs + 500,
        ).unref();
      }
      await audit(req, `customer.${action}`, id, paused ? {} : { released });
      res.json({ customer_id: id, paused, paused_at: outcome.pausedAt ? new Date(outcome.pausedAt).toISOString() : null });
    });
  }

  router.get('/admin/audit', requireAdmin, async (req, res) => {
    const query = parseInput(auditQuery, req.query, 'query');
    const rows = await listAdminActions(deps.orm.em.fork(), {
      customerId: query.customer_id,
      action: query.action,
      beforeId: decodeCursor(query.cursor, z.string().regex(/^\d{1,18}$/)),
      limit: query.limit + 1,
    });
    res.json(page(rows, query.limit, auditView, (row) => row.id));
  });

  return router;
}
