import { Router } from 'express';
import { LRUCache } from 'lru-cache';
import { JsonText } from '../../lib/json-text.js';
import { z } from 'zod';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { BatchItem } from '../../db/entities/batch-item.entity.js';
import { batchItemCounts, listBatchItems } from '../../db/repositories/batches.js';
import { findBatch, findJob, type ShownBatch } from '../../db/jobs/find-jobs.js';
import type { ShownJob } from '../../db/jobs/job-columns.js';
import { batchPayloadSchema } from '../../jobs/batch/batch.job.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { submitAndRespond } from '../job-responses.js';
import { jsonBodyOf } from '../json-text-body.js';
import { decodeCursor, pageBound, pageOf, paginationQuery } from '../pagination.js';
import { sendReadAnswer } from '../send-json.js';
import type { RateLimits } from '../rate-limits.js';
import { notFound } from '../problems.js';
import { parseInput, refuseQueryFields } from '../validate.js';

export const createBatchBody = batchPayloadSchema;
export const batchParams = z.object({ id: z.string().uuid('a batch id is a UUID') });
export const batchItemsQuery = z.strictObject({
  state: z.enum(['completed', 'failed']).optional().describe('Only the items that ended in this state; the cursor keeps the filter'),
  ...paginationQuery,
});

export function batchItemView(item: BatchItem) {
  return {
    index: item.index,
    substrate_id: item.substrateId,
    state: item.state,
    ...(item.state === 'completed' ? { result: item.result } : {}),
    ...(item.error ? { error: item.error } : {}),
  };
}

/** GET /batches/:id's answer: the batch job's state and its ended items' counts. */
export async function batchProgress(em: EntityManager, job: ShownBatch) {
  const counts = await batchItemCounts(em, job.id);
  return {
    id: job.id,
    state: job.state,
    total: job.total,
    ...counts,
    created_at: new Date(job.createdAt).toISOString(),
    ...(job.finishedAt ? { finished_at: new Date(job.finishedAt).toISOString() } : {}),
    links: { items: `/api/v1/batches/${job.id}/items`, job: `/api/v1/jobs/${job.id}` },
  };
}

/** A page of GET /batches/:id/items: fewer than `limit` items when their results are large (`pageMaxBytes`). */
export async function batchItemsPage(em: EntityManager, id: string, query: z.output<typeof batchItemsQuery>) {
  // batch_items.index is a PostgreSQL integer: a forged cursor past its range would make the query fail.
  const afterIndex = decodeCursor(query.cursor, z.number().int().min(-1).max(2_147_483_647)) ?? -1;
  const found = await listBatchItems(em, id, afterIndex, pageBound(query.limit), query.state);
  return pageOf(found, batchItemView, (row) => row.index);
}

/** Batches are `batch` jobs: the batch id is the job id; items live in batch_items. */
export function batchesRoutes(deps: ApiDeps, rateLimits: Pick<RateLimits, 'chargeReads'>): Router {
  const router = Router();
  const em = () => deps.orm.em.fork();

  async function requireBatch<Job extends ShownJob>(id: string, read: (id: string) => Promise<Job | null>): Promise<Job> {
    const job = await read(id);
    if (!job || job.type !== 'batch') throw notFound(`batch ${id}`);
    return job;
  }

  router.post('/batches', async (req, res) => {
    const { customerId } = principalOf(req);
    // The body came as bytes: parsed and checked with createBatchBody here, in the batch checker's thread when it is
    // large, which also answers the payload as JSON text (stored as it is) and, given a key, the request's hash.
    const keyed = req.header('idempotency-key') !== undefined;
    const checked = await deps.batchChecker.checkJobBatch(customerId, jsonBodyOf(req.body), keyed ? [req.method, req.path] : null);
    req.body = undefined;
    await submitAndRespond(
      deps,
      req,
      res,
      customerId,
      { definition: getJobDefinition('batch')!, payload: new JsonText(checked.payloadText) },
      { requestHash: checked.requestHash },
    );
  });

  /**
   * Invocations per batch, by id: a batch's never change, and counting them in PostgreSQL reads its whole payload
   * (15 MB for 10,000 large invocations, ~35 ms of its CPU), which a poll every few milliseconds would repeat.
   */
  const batchTotals = new LRUCache<string, number>({ max: 10_000 });

  router.get('/batches/:id', async (req, res) => {
    refuseQueryFields(req.query);
    const { customerId } = principalOf(req);
    const { id } = parseInput(batchParams, req.params, 'params');
    const known = batchTotals.get(id);
    const batch = await requireBatch(id, async (batchId) => {
      if (known === undefined) return findBatch(deps.orm.em, customerId, batchId);
      const job = await findJob(deps.orm.em, customerId, batchId);
      return job && { ...job, total: known };
    });
    batchTotals.set(id, batch.total);
    res.json(await batchProgress(em(), batch));
  });

  router.get('/batches/:id/items', async (req, res) => {
    const { customerId } = principalOf(req);
    const { id } = parseInput(batchParams, req.params, 'params');
    const query = parseInput(batchItemsQuery, req.query, 'query');
    await requireBatch(id, (batchId) => findJob(deps.orm.em, customerId, batchId));
    await sendReadAnswer(rateLimits, req, res, await batchItemsPage(em(), id, query));
  });

  return router;
}
