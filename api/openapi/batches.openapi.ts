import { z } from 'zod';
import { jobStates } from '../../db/entities/job-record.entity.js';
import { batchItemsQuery, batchParams, createBatchBody } from '../routes/batches.routes.js';
import { documentRoute, ex, json, jsonBody, pageOf, timestamp, type RouteDocs } from './document-route.js';
import { submitHeaders, submitResponsesOf } from './jobs.openapi.js';

export const batchSchema = z
  .object({
    id: z.uuid().describe('The batch id is the id of its `batch` job'),
    state: z.enum(jobStates),
    total: z.int(),
    completed: z.int(),
    failed: z.int(),
    created_at: timestamp,
    finished_at: timestamp.optional(),
    links: z.object({ items: z.string(), job: z.string() }),
  })
  .meta({
    id: 'Batch',
    example: {
      id: ex.jobId,
      state: 'completed',
      total: 3,
      completed: 2,
      failed: 1,
      created_at: ex.at,
      finished_at: ex.later,
      links: { items: `/api/v1/batches/${ex.jobId}/items`, job: `/api/v1/jobs/${ex.jobId}` },
    },
  });

export const batchItemSchema = z
  .object({
    index: z.int().min(0).describe('Position in the submitted invocations, from 0'),
    substrate_id: z.string(),
    state: z.enum(['completed', 'failed']),
    result: z.unknown().optional().describe('The value the expression evaluated to'),
    error: z.string().optional(),
  })
  .meta({ id: 'BatchItem', example: { index: 0, substrate_id: ex.substrateId, state: 'completed', result: 12 } });

/** batches.routes.ts */
export const batchesDocs: RouteDocs = (registry) => {
  const tag = 'Batches';
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/batches',
    summary: 'Submit up to 10,000 invocations as one batch job',
    description: 'Takes bodies up to 16 MiB. An item naming a deleted or unknown substrate fails alone.',
    request: {
      headers: submitHeaders,
      body: jsonBody(createBatchBody, {
        invocations: [
          { substrate_id: ex.substrateId, parameters: { x: 5, y: 7 } },
          { substrate_id: ex.substrateId, parameters: { x: 6, y: 7 } },
          { substrate_id: ex.substrateId2 },
        ],
      }),
    },
    responses: submitResponsesOf('batch', { batch_id: ex.jobId, total: 3, completed: 2, failed: 1 }),
    problems: [404, 413, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/batches/:id',
    summary: 'Batch progress: counts of ended items',
    request: { params: batchParams },
    responses: { 200: json(batchSchema, 'The batch') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/batches/:id/items',
    summary: 'Ended items, in submission order (all, or only the completed or the failed ones)',
    request: { params: batchParams, query: batchItemsQuery },
    responses: { 200: json(pageOf(batchItemSchema), 'A page of items') },
    problems: [404],
  });
};
