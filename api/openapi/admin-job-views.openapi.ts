import { z } from 'zod';
import { batchItemsQuery, batchParams } from '../routes/batches.routes.js';
import { jobIdParams, jobReadQuery } from '../routes/jobs.routes.js';
import { listQuery } from '../routes/webhooks.routes.js';
import { adminJobSchema } from './admin-jobs.openapi.js';
import { batchItemSchema, batchSchema } from './batches.openapi.js';
import { documentRoute, ex, exampleOf, json, pageOf, type RouteDocs } from './document-route.js';
import { jobAcceptedSchema, jobEventStream } from './jobs.openapi.js';
import { deliverySchema } from './webhooks.openapi.js';

const adminBatchSchema = batchSchema
  .extend({ customer_id: z.uuid().describe('Whose batch it is') })
  .meta({ id: 'AdminBatch', example: { customer_id: ex.customerId, ...(exampleOf(batchSchema) as object) } });

const adminRetrySchema = jobAcceptedSchema
  .extend({ customer_id: z.uuid().describe('Whose job the retry is (the original’s customer)') })
  .meta({
    id: 'AdminJobRetry',
    example: { customer_id: ex.customerId, ...(exampleOf(jobAcceptedSchema) as object), retry_of: ex.jobId2 },
  });

/** admin-job-views.routes.ts: a customer's own job reads, for an administrator about anyone's. */
export const adminJobViewsDocs: RouteDocs = (registry) => {
  const tag = 'Admin';
  const audited = 'Written to the audit log.';
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/jobs/:id',
    summary: "Any customer's job, as its owner reads it with GET /jobs/{id}, and whose it is",
    description: `With \`?include=payload\`, the payload it was submitted with. ${audited}`,
    request: { params: jobIdParams, query: jobReadQuery },
    responses: { 200: json(adminJobSchema, 'The job') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/jobs/:id/events',
    summary: "Stream any customer's job's state changes (Server-Sent Events), as GET /jobs/{id}/events",
    ...jobEventStream,
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/jobs/:id/webhook-deliveries',
    summary: "Any customer's job's webhook deliveries, as GET /jobs/{id}/webhook-deliveries",
    description: audited,
    request: { params: jobIdParams, query: listQuery },
    responses: { 200: json(pageOf(deliverySchema), 'A page of deliveries') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'post',
    path: '/admin/jobs/:id/retry',
    summary: "Retry any customer's failed or cancelled job as a new job of that customer",
    description: [
      'As POST /jobs/{id}/retry (the same type, payload and options; `retry_of` the original; a retry asked for',
      "again before the last one ended answers with it), without the admin's admission cap or rate limit, as",
      `POST /admin/jobs/retry. Any other state: 409; a job on a substrate deleted since: 404. ${audited}`,
    ].join(' '),
    request: { params: jobIdParams },
    responses: { 202: json(adminRetrySchema, 'The new job (or the unfinished retry asked for before)') },
    problems: [404, 409],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/batches/:id',
    summary: "Any customer's batch progress, as GET /batches/{id}, and whose it is",
    description: audited,
    request: { params: batchParams },
    responses: { 200: json(adminBatchSchema, 'The batch') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/batches/:id/items',
    summary: "Any customer's batch items, as GET /batches/{id}/items",
    description: audited,
    request: { params: batchParams, query: batchItemsQuery },
    responses: { 200: json(pageOf(batchItemSchema), 'A page of items') },
    problems: [404],
  });
};
