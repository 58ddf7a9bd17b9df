import { z } from 'zod';
import { jobStates } from '../../db/entities/job-record.entity.js';
import { batchItemsQuery, batchParams, createBatchBody } from '../routes/batches.routes.js';
import { documentRoute, json, jsonBody, pageOf, timestamp, type RouteDocs } from './document-route.js';
import { submitHeaders, submitResponses } from './jobs.openapi.js';

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
  .meta({ id: 'Batch' });

export const batchItemSchema = z
  .object({
    index: z.int().min(0).describe('Position in the submitted invocations, from 0'),
    substrate_id: z.string(),
    state: z.enum(['completed', 'failed']),
    result: z.unknown().optional().describe('The value the expression evaluated to'),
    error: z.string().optional(),
  })
  .meta({ id: 'BatchItem' });

/** batches.routes.ts */
export const batchesDocs: RouteDocs = (registry) => {
  const tag = 'Batches';
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/batches',
    summary: 'Submit up to 10,000 invocations as one batch job',
    description: 'Takes bodies up to 16 MiB. An item naming a deleted or unknown substrate fails alone.',
    request: { headers: submitHeaders, body: jsonBody(createBatchBody) },
    responses: submitResponses,
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
