import { Router, type Request } from 'express';
import { findAnyJob, findBatch, findJobToAnswer, findJobToRetry, findRetryEndedBefore } from '../../db/jobs/find-jobs.js';
import type { ShownJob } from '../../db/jobs/job-columns.js';
import type { AnsweredJob } from '../../db/jobs/find-jobs.js';
import { retryableStates, type JobRecord } from '../../db/entities/job-record.entity.js';
import { recordAdminAction } from '../../db/repositories/admin-audit.js';
import { jobLocation, jobView } from '../../db/jobs/job-view.js';
import { retryIdempotencyKeyAfter, retryInput } from '../../queue/retry-jobs.js';
import { submitJob } from '../../queue/submit-job.js';
import { principalOf, requireAdmin } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { acceptedJobItems } from '../job-responses.js';
import { sendReadAnswer } from '../send-json.js';
import { notFound, ProblemError } from '../problems.js';
import { parseInput, refuseBodyFields } from '../validate.js';
import { batchItemsPage, batchItemsQuery, batchParams, batchProgress } from './batches.routes.js';
import { jobEventsHandler } from './job-events.routes.js';
import { jobIdParams, jobReadQuery } from './jobs.routes.js';
import { jobDeliveriesPage, listQuery } from './webhooks.routes.js';

/**
 * What a customer reads of its own job, for an administrator about anyone's (SPEC §9: the console shows admins
 * the same across customers): a job with its payload, its event stream, its webhook deliveries, a batch and its
 * items, and a retry. Every answer names the job's customer; every read is written to the audit log.
 */
export function adminJobViewsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const em = () => deps.orm.em.fork();

  /**
   * The job `read` finds by the route's id, or 404 (`batch`: the id is a batch's). `action`: the read is written to the
   * audit log under it (not waiting for the disk, as other views); null when the route writes its own entry.
   */
  async function readJob<Job extends ShownJob | JobRecord | AnsweredJob>(
    req: Request,
    action: string | null,
    read: (id: string) => Promise<Job | null>,
    batch = false,
  ): Promise<Job> {
    const { id } = parseInput(batch ? batchParams : jobIdParams, req.params, 'params');
    const job = await read(id);
    if (!job || (batch && job.type !== 'batch')) throw notFound(`${batch ? 'batch' : 'job'} ${id}`);
    if (action) await audit(req, action, job.customerId, batch ? { batch_id: id } : { job_id: id }, false);
    return job;
  }
  const anyJob = (id: string) => findAnyJob(deps.orm.em, id);

  const audit = (req: Request, action: string, customerId: string, details: unknown, durable = true) =>
    recordAdminAction(em(), { adminUserId: principalOf(req).userId ?? null, action, customerId, details }, { durable });

  router.get('/admin/jobs/:id', requireAdmin, async (req, res) => {
    const { include } = parseInput(jobReadQuery, req.query, 'query');
    const job = await readJob(req, 'job.view', (id) => findJobToAnswer(deps.orm.em, null, id, include === 'payload'));
    await sendReadAnswer(null, req, res, {
      customer_id: job.customerId,
      ...jobView(job),
      ...(include === 'payload' ? { payload: job.payload } : {}),
    });
  });

  router.get(
    '/admin/jobs/:id/events',
    requireAdmin,
    jobEventsHandler(deps, {}, (_em, req, id) => findAnyJob(deps.orm.em, id)),
  );

  router.get('/admin/jobs/:id/webhook-deliveries', requireAdmin, async (req, res) => {
    const query = parseInput(listQuery, req.query, 'query');
    const job = await readJob(req, 'job.deliveries.view', anyJob);
    res.json(await jobDeliveriesPage(em(), job.customerId, job.id, query));
  });

  /**
   * A failed or cancelled job of any customer, run again as that customer's new job (as POST /jobs/:id/retry,
   * and as POST /admin/jobs/retry does for many: no admission cap or rate limit of the admin's). 202 with it.
   */
  router.post('/admin/jobs/:id/retry', requireAdmin, async (req, res) => {
    const askedAt = Date.now();
    refuseBodyFields(req.body);
    const original = await readJob(req, null, (id) => findJobToRetry(deps.orm.em, null, id));
    if (!retryableStates.includes(original.state)) {
      throw new ProblemError('conflict', `job ${original.id} is ${original.state}: only failed or cancelled jobs can be retried`, {
        state: original.state,
      });
    }
    const input = retryInput(original);
    if (!input) throw new ProblemError('conflict', `job type ${original.type} no longer exists`, { state: original.state });
    // The key the customer's own POST /jobs/:id/retry would take now: an admin and the customer retrying together make one retry.
    const lastEnded = await findRetryEndedBefore(deps.orm.em, original.customerId, original.id, askedAt);
    const outcome = await submitJob(
      { em: deps.orm.em, queues: deps.queues, logger: deps.logger, inserter: deps.jobInserter, fair: deps.fair },
      { ...input, customerId: original.customerId, idempotencyKey: retryIdempotencyKeyAfter(original.id, lastEnded) },
    );
    if (outcome.kind === 'substrate-missing') throw notFound(`substrate ${input.requireSubstrateId}`);
    await audit(req, 'job.retry', original.customerId, { job_id: original.id, retry_id: outcome.job.id });
    const [accepted] = acceptedJobItems([outcome.job]);
    res
      .status(202)
      .location(jobLocation(outcome.job.id))
      .json({ customer_id: original.customerId, ...accepted, retry_of: original.id });
  });

  router.get('/admin/batches/:id', requireAdmin, async (req, res) => {
    const job = await readJob(req, 'batch.view', (id) => findBatch(deps.orm.em, null, id), true);
    res.json({ customer_id: job.customerId, ...(await batchProgress(em(), job)) });
  });

  router.get('/admin/batches/:id/items', requireAdmin, async (req, res) => {
    const query = parseInput(batchItemsQuery, req.query, 'query');
    const job = await readJob(req, 'batch.view', anyJob, true);
    await sendReadAnswer(null, req, res, await batchItemsPage(em(), job.id, query));
  });

  return router;
}
