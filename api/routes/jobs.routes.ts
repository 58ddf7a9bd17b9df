import { refuseWhenRedisFull } from '../memory-guard.js';
import { Router } from 'express';
import { z } from 'zod';
import { findJob, findJobToAnswer } from '../../db/jobs/find-jobs.js';
import { cancelJobRow } from '../../db/jobs/job-states.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { stopCancelledJob } from '../../queue/stop-cancelled-job.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { jobView } from '../../db/jobs/job-view.js';
import { notFound, ProblemError } from '../problems.js';
import { inputProblem, parseInput, refuseBodyFields } from '../validate.js';
import { assertWebhookTarget } from '../webhook-target.js';
import { listedJobs } from '../bulk-jobs.js';
import { jsonBodyOf } from '../json-text-body.js';
import { submitJobBody, substrateOf } from '../job-body.js';
import { acceptedJobItems, admitJobs, preferredWaitMs, respondWithJobs, submitAndRespond } from '../job-responses.js';
import type { RateLimits } from '../rate-limits.js';
import { countAsRequests } from '../request-log-observer.js';
import { sendJson, sendReadAnswer } from '../send-json.js';
import { recordStage } from '../request-timing.js';
import { submitJobList } from '../../queue/submit-jobs-bulk.js';

export { submitJobBody };

export const jobIdParams = z.object({ id: z.string().uuid('a job id is a UUID') });
/** `?include=payload` adds the job's payload to GET /jobs/:id (left out by default: it can be large, and polls need none). */
export const jobReadQuery = z.strictObject({
  include: z.literal('payload', "the only thing to include is 'payload'").optional().describe('`payload`: answer the job with its payload'),
});

export function jobsRoutes(deps: ApiDeps, rateLimits: Pick<RateLimits, 'spend' | 'refund' | 'chargeReads'>): Router {
  const router = Router();

  /**
   * Up to 1,000 jobs in one request, all or nothing (SPEC §9): validated whole, admitted whole (admission
   * counts every job), each job one request against the per-minute budget and in usage, stored in one
   * INSERT and enqueued with one addBulk per queue. 202 with the jobs in request order.
   */
  router.post('/jobs/bulk', async (req, res) => {
    const principal = principalOf(req);
    // The body came as bytes: parsed and checked here, in the batch checker's thread when it is large.
    const checked = await deps.batchChecker.checkBulkSubmit(
      principal.customerId,
      { role: principal.role, idempotencyHeader: req.header('idempotency-key') !== undefined },
      jsonBodyOf(req.body),
    );
    const list = await listedJobs(deps.config, checked);
    refuseWhenRedisFull(deps);
    const admitted = await admitJobs(deps, req, list.length);
    // The middleware took one point for the request; each further job takes one more.
    const extra = list.length - 1;
    let spent = false;
    let submitted = false;
    try {
      await rateLimits.spend(req, res, extra);
      spent = true;
      const waitMs = preferredWaitMs(req);
      const outcome = await submitJobList(
        { em: deps.orm.em, queues: deps.queues, logger: deps.logger, cache: deps.cache, fair: deps.fair },
        principal.customerId,
        list,
        deps.fair?.weightOf(principal.tier) ?? 1,
        { notify: waitMs !== null },
      );
      if (outcome.kind === 'substrate-missing') {
        throw new ProblemError('not-found', `substrate ${outcome.substrateId} not found (jobs[${outcome.index}]); no job was submitted`, {
          errors: [{ field: `jobs[${outcome.index}].payload.substrate_id`, message: 'not found' }],
        });
      }
      if (outcome.kind === 'key-conflict') {
        throw new ProblemError(
          'unprocessable',
          `jobs[${outcome.index}].idempotency_key was already used with a different job; no job was submitted`,
          {
            errors: [{ field: `jobs[${outcome.index}].idempotency_key`, message: 'reused with a different job' }],
          },
        );
      }
      submitted = true;
      // The rows are committed (a bulk INSERT waits for the disk): admission need no longer add them to what PostgreSQL counts.
      admitted.stored();
      countAsRequests(res, list.length);
      const jobs = outcome.jobs.map(({ job }) => job);
      if (waitMs === null) return sendJson(res, 202, { items: acceptedJobItems(jobs) });
      await respondWithJobs(deps, res, jobs, waitMs);
    } finally {
      if (!submitted) {
        admitted.release();
        if (spent) await rateLimits.refund(req, extra);
      }
    }
  });

  router.post('/jobs', async (req, res) => {
    const principal = principalOf(req);
    const body = parseInput(submitJobBody, req.body, 'body');
    const definition = getJobDefinition(body.type);
    if (!definition) throw notFound(`job type ${body.type}`);
    if (definition.adminOnly && principal.role !== 'admin')
      throw new ProblemError('forbidden', `only administrators may submit ${body.type} jobs`);
    const payload = definition.payload.safeParse(body.payload);
    if (!payload.success) throw inputProblem(payload.error, 'body.payload', `${body.type} payload`);
    if (body.webhook_url) await assertWebhookTarget(deps.config, body.webhook_url, 'body.webhook_url');
    await submitAndRespond(deps, req, res, principal.customerId, {
      definition,
      payload: payload.data,
      priority: body.priority,
      delayMs: body.delay_ms,
      attempts: body.attempts,
      webhookUrl: body.webhook_url,
      // A job on a substrate (invoke, divide) is refused with 404 unless the caller owns it, as on /substrates/:id/….
      requireSubstrateId: substrateOf(payload.data),
    });
  });

  router.get('/jobs/:id', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(jobIdParams, req.params, 'params');
    const { include } = parseInput(jobReadQuery, req.query, 'query');
    const reading = performance.now();
    // One prepared raw select (no identity map): the root entity manager serves without a fork per request.
    const job = await findJobToAnswer(deps.orm.em, principal.customerId, id, include === 'payload');
    recordStage(req, 'db', reading);
    if (!job) throw notFound(`job ${id}`);
    await sendReadAnswer(rateLimits, req, res, include === 'payload' ? { ...jobView(job), payload: job.payload } : jobView(job));
  });

  router.delete('/jobs/:id', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(jobIdParams, req.params, 'params');
    refuseBodyFields(req.body);
    const em = deps.orm.em.fork();
    const cancelled = await cancelJobRow(em, principal.customerId, id);
    if (!cancelled) {
      // Read after the cancel found nothing to cancel, so the 409 names the final state the job reached (it may have
      // finished a moment ago), never the state it had before.
      const existing = await findJob(em, principal.customerId, id);
      if (!existing) throw notFound(`job ${id}`);
      throw new ProblemError('conflict', `job ${id} is already ${existing.state}`, { state: existing.state });
    }
    await stopCancelledJob({ ...deps, queuePrefix: deps.config.queuePrefix }, cancelled);
    res.json(jobView(cancelled));
  });

  return router;
}
