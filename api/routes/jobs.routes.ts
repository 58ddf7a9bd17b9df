import { Router } from 'express';
import { z } from 'zod';
import { jobStates } from '../../db/entities/job-record.entity.js';
import { findJob, listJobs } from '../../db/jobs/find-jobs.js';
import { cancelJobRow } from '../../db/jobs/job-states.js';
import { atMost } from '../../jobs/input-limits.js';
import { getJobDefinition, jobTypeNames } from '../../jobs/registry.js';
import { cancelChannel } from '../../lib/channels.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { jobView } from '../../db/jobs/job-view.js';
import { submitAndRespond } from '../job-responses.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { notFound, ProblemError } from '../problems.js';
import { inputProblem, parseInput } from '../validate.js';
import { assertWebhookTarget } from '../webhook-target.js';

export const submitJobBody = z.strictObject({
  type: z.enum(jobTypeNames),
  payload: z.unknown().default({}),
  /** BullMQ priority: 1 is the most urgent; omitted = FIFO. */
  priority: z.number().int().min(1).max(2_097_152).optional(),
  delay_ms: atMost(z.number().int().min(0), 365 * 24 * 3600 * 1000).optional(),
  attempts: atMost(z.number().int().min(1), 25).optional(),
  webhook_url: z.string().url().max(2048).optional(),
});

export const listJobsQuery = z.strictObject({
  type: z.enum(jobTypeNames).optional(),
  state: z.enum(jobStates).optional(),
  ...paginationQuery,
});

export const jobIdParams = z.object({ id: z.string().uuid('a job id is a UUID') });

function substrateOf(payload: unknown): string | undefined {
  const id = (payload as { substrate_id?: unknown } | null)?.substrate_id;
  return typeof id === 'string' ? id : undefined;
}

export function jobsRoutes(deps: ApiDeps): Router {
  const router = Router();

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

  router.get('/jobs', async (req, res) => {
    const principal = principalOf(req);
    const query = parseInput(listJobsQuery, req.query, 'query');
    const beforeId = decodeCursor(query.cursor, z.string().uuid());
    const rows = await listJobs(deps.orm.em.fork(), {
      customerId: principal.customerId,
      type: query.type,
      state: query.state,
      beforeId,
      limit: query.limit + 1,
    });
    res.json(page(rows, query.limit, jobView, (row) => row.id));
  });

  router.get('/jobs/:id', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(jobIdParams, req.params, 'params');
    const job = await findJob(deps.orm.em.fork(), principal.customerId, id);
    if (!job) throw notFound(`job ${id}`);
    res.json(jobView(job));
  });

  router.delete('/jobs/:id', async (req, res) => {
    const principal = principalOf(req);
    const { id } = parseInput(jobIdParams, req.params, 'params');
    const em = deps.orm.em.fork();
    const existing = await findJob(em, principal.customerId, id);
    if (!existing) throw notFound(`job ${id}`);
    const cancelled = await cancelJobRow(em, principal.customerId, id);
    if (!cancelled) throw new ProblemError('conflict', `job ${id} is already ${existing.state}`, { state: existing.state });
    const queue = deps.queues.forJob(cancelled.type, id);
    // Held by fair sharing: out of its lane (a release that pops it anyway skips a cancelled row).
    if (deps.fair?.of(queue)) await deps.fair.share.withdraw(queue.qualifiedName, id, cancelled.customerId);
    const bullJob = await queue.getJob(cancelled.queueJobId ?? id);
    if (bullJob) {
      // Queued or delayed: take it off the queue. Active (locked): remove fails, so abort the processor.
      await bullJob.remove().catch(() => deps.redis.publish(cancelChannel(deps.config.queuePrefix), bullJob.id as string));
    }
    res.json(jobView(cancelled));
  });

  return router;
}
