import { z } from 'zod';
import { jobStates } from '../../db/entities/job-record.entity.js';
import { jobRegistry } from '../../jobs/registry.js';
import { jobIdParams, jobReadQuery, submitJobBody } from '../routes/jobs.routes.js';
import { bulkJobItem, maxBulkJobs } from '../bulk-jobs.js';
import { documentRoute, ex, exampleOf, json, jsonBody, timestamp, type RouteDocs } from './document-route.js';

const pascal = (name: string) => name.replace(/(^|-)([a-z])/g, (_, _dash: string, letter: string) => letter.toUpperCase());

/** GET /jobs/:id, and the answer of a submit that finished within `Prefer: wait`. */
export const jobSchema = z
  .object({
    id: z.uuid(),
    type: z.string(),
    state: z.enum(jobStates),
    progress: z.union([z.number(), z.record(z.string(), z.unknown())]).describe('What the processor last reported; 0 before any'),
    attempts_made: z.int().min(0),
    result: z.unknown().optional().describe("The job type's result (completed jobs)"),
    error: z.string().optional().describe('Why the last attempt failed'),
    schedule: z.string().optional().describe('The schedule whose run this job is; absent for a job submitted directly'),
    retry_of: z.uuid().optional().describe('The job this one retries (POST /jobs/{id}/retry); absent otherwise'),
    payload: z.unknown().optional().describe('The payload it was submitted with: only `GET /jobs/{id}?include=payload` shows it'),
    created_at: timestamp,
    started_at: timestamp
      .optional()
      .describe('When its first attempt began; every finished job has it (one cancelled before it ran: its `finished_at`)'),
    finished_at: timestamp.optional(),
  })
  .meta({
    id: 'Job',
    example: {
      id: ex.jobId,
      type: 'invoke',
      state: 'completed',
      progress: 100,
      attempts_made: 1,
      result: { substrate_id: ex.substrateId, result: 12, invocation_time_ms: 0.4, cached: false },
      created_at: ex.at,
      started_at: ex.at,
      finished_at: ex.later,
    },
  });

/** 202 to a submit: the job is accepted and will run. */
export const jobAcceptedSchema = z
  .object({
    id: z.uuid(),
    type: z.string(),
    state: z
      .enum(jobStates)
      .describe('`queued` or `delayed` for a new job; a replayed `Idempotency-Key` answers 202 with its job as it is now, finished or not'),
    created_at: timestamp,
    retry_of: z.uuid().optional().describe('The job this one retries (POST /jobs/{id}/retry)'),
    links: z.object({ self: z.string().describe('/api/v1/jobs/{id}') }),
  })
  .meta({
    id: 'JobAccepted',
    example: { id: ex.jobId, type: 'invoke', state: 'queued', created_at: ex.at, links: { self: `/api/v1/jobs/${ex.jobId}` } },
  });

/** The headers every submit (POST /jobs and the substrate operations) understands. */
export const submitHeaders = z.object({
  prefer: z.string().optional().describe('RFC 7240 `wait=N` (N ≤ 30): answer 200 with the finished job if it finishes within N seconds'),
  'idempotency-key': z
    .string()
    .max(255)
    .optional()
    .describe(
      'Same key and body within 24 h: the same job, answered 202 as the first time (200 only to `Prefer: wait`); same key, other body: 422',
    ),
});

/** The two answers of every submit, with examples of a job of this type (a batch's job has type `batch`). */
export function submitResponsesOf(type: string, result: unknown) {
  const job = exampleOf(jobSchema) as object;
  const accepted = exampleOf(jobAcceptedSchema) as object;
  return {
    200: json(jobSchema, 'Finished within `Prefer: wait` (completed or failed)', undefined, { ...job, type, result }),
    202: json(
      jobAcceptedSchema,
      'Accepted; poll `Location` or stream /jobs/{id}/events',
      { Location: { description: 'The job: /api/v1/jobs/{id}', schema: { type: 'string' } } },
      { ...accepted, type },
    ),
  };
}

/** The two answers of every submit. */
export const submitResponses = submitResponsesOf('invoke', (exampleOf(jobSchema) as { result: unknown }).result);

/** GET /jobs/{id}/events' request and answers (and GET /admin/jobs/{id}/events'). */
export const jobEventStream = {
  request: { params: jobIdParams, headers: z.object({ 'last-event-id': z.string().optional() }) },
  responses: {
    200: {
      description: 'The event stream',
      content: { 'text/event-stream': { schema: z.string().describe('event: state|progress, data: JSON') } },
    },
    204: { description: 'The job had already ended and the client saw its final event' },
  },
  problems: [404],
};

export const jobsDocs: RouteDocs = (registry) => {
  const tag = 'Jobs';
  // `payload` is validated by the job type's own schema (after `type`): document those schemas, one component each.
  const definitions = [...jobRegistry.values()];
  const payloads = definitions.map((d) =>
    d.payload.meta({ id: `${pascal(d.name)}Payload`, description: `A ${d.name} job: ${d.description}` }),
  );
  const body = submitJobBody.extend({
    payload: z
      .union(payloads as [z.ZodType, ...z.ZodType[]])
      .optional()
      .describe('The payload schema of the chosen `type`'),
  });
  const adminOnly = definitions.filter((d) => d.adminOnly).map((d) => d.name);
  const bulkItem = bulkJobItem
    .extend({ payload: body.shape.payload })
    .meta({ id: 'BulkJobRequest', description: 'One job of a bulk submit: a `POST /jobs` body and its own `idempotency_key`' });
  const bulkBody = z.strictObject({
    jobs: z
      .array(bulkItem)
      .min(1)
      .max(maxBulkJobs)
      .describe(`1 to ${maxBulkJobs.toLocaleString('en-US')} jobs (more: 422; none: 400)`),
  });
  const bulkAccepted = z
    .object({
      items: z
        .array(
          jobAcceptedSchema.extend({
            state: z
              .enum(jobStates)
              .describe('`queued` or `delayed` for a new job; a job named again by its `idempotency_key` is answered in its current state'),
          }),
        )
        .describe('One per job, in request order'),
    })
    .meta({ id: 'BulkAccepted' });
  const bulkFinished = z
    .object({ items: z.array(jobSchema).describe('One per job, in request order, each completed or failed') })
    .meta({ id: 'BulkFinished' });

  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/jobs',
    summary: 'Submit a job',
    description: `\`payload\` must match the schema of \`type\` (\`{}\` when omitted).${adminOnly.length ? ` Admins only: ${adminOnly.join(', ')} (403 for other users).` : ''}`,
    request: {
      headers: submitHeaders,
      body: jsonBody(body, {
        type: 'invoke',
        payload: { substrate_id: ex.substrateId, parameters: { x: 5, y: 7 } },
        priority: 1,
        attempts: 3,
        webhook_url: 'https://hooks.example.com/chrysalis',
      }),
    },
    responses: submitResponses,
    problems: [404, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/jobs/bulk',
    summary: `Submit 1 to ${maxBulkJobs.toLocaleString('en-US')} jobs in one request`,
    description: [
      'All or nothing: every job is validated as `POST /jobs` validates one, and one bad job refuses the whole request',
      '(400 malformed, 422 past a limit) with `errors[].field` naming it (`jobs[3].payload.substrate_id`); a job on a',
      'substrate the caller does not own refuses it with 404; an `idempotency_key` reused with another job, 422. Nothing',
      'is stored then. Each job counts as one request against the per-minute write budget (429 `rate-limited` when they',
      'do not all fit; a refused bulk costs one request) and in usage, and all of them against the admission caps of',
      'queued and running jobs (429 `too-many-jobs`). An `idempotency_key` behaves like the `Idempotency-Key` header of',
      '`POST /jobs` (the same job and key, alone or in a bulk, name one job); the header itself is refused here (400).',
      '`Prefer: wait=N` (N ≤ 30): 200 with every job as `GET /jobs/:id` shows it once all have finished within N seconds,',
      `else 202 as without it, each item in the state last seen. Bodies up to 16 MiB (413 beyond).${adminOnly.length ? ` Admins only: ${adminOnly.join(', ')} (403 for other users).` : ''}`,
    ].join(' '),
    request: {
      headers: z.object({ prefer: submitHeaders.shape.prefer }),
      body: {
        required: true,
        content: {
          'application/json': {
            schema: bulkBody,
            example: {
              jobs: [
                {
                  type: 'invoke',
                  payload: { substrate_id: '0x1f2e3d4c5b6a7988', parameters: { x: 5, y: 7 } },
                  idempotency_key: 'order-1041-a',
                },
                { type: 'invoke', payload: { substrate_id: '0x1f2e3d4c5b6a7988', parameters: { x: 6, y: 7 } }, priority: 1 },
                { type: 'divide', payload: { substrate_id: '0x1f2e3d4c5b6a7988' }, delay_ms: 60_000 },
              ],
            },
          },
        },
      },
    },
    responses: {
      200: json(bulkFinished, 'Every job finished within `Prefer: wait` (completed or failed)', undefined, {
        items: [exampleOf(jobSchema)],
      }),
      202: {
        description: 'Accepted: one item per job, in request order',
        content: {
          'application/json': {
            schema: bulkAccepted,
            example: {
              items: [
                {
                  id: '0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e11',
                  type: 'invoke',
                  state: 'queued',
                  created_at: '2026-12-03T17:30:00.000Z',
                  links: { self: '/api/v1/jobs/0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e11' },
                },
                {
                  id: '0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e12',
                  type: 'invoke',
                  state: 'queued',
                  created_at: '2026-12-03T17:30:00.000Z',
                  links: { self: '/api/v1/jobs/0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e12' },
                },
                {
                  id: '0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e13',
                  type: 'divide',
                  state: 'delayed',
                  created_at: '2026-12-03T17:30:00.000Z',
                  links: { self: '/api/v1/jobs/0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e13' },
                },
              ],
            },
          },
        },
      },
    },
    problems: [404, 413, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/jobs/:id',
    summary: 'Get a job',
    description: 'With `?include=payload`, the job carries the payload it was submitted with.',
    request: { params: jobIdParams, query: jobReadQuery },
    responses: { 200: json(jobSchema, 'The job') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'delete',
    path: '/jobs/:id',
    summary: 'Cancel a job',
    description: 'Queued or delayed: taken off the queue. Active: the processor is aborted. Already final: 409.',
    request: { params: jobIdParams },
    responses: {
      200: json(jobSchema, 'The job, now `cancelled`', undefined, {
        id: ex.jobId,
        type: 'invoke',
        state: 'cancelled',
        progress: 0,
        attempts_made: 0,
        created_at: ex.at,
        started_at: ex.later,
        finished_at: ex.later,
      }),
    },
    problems: [404, 409],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/jobs/:id/events',
    summary: "Stream a job's state changes (Server-Sent Events)",
    description: [
      'First `event: state` with the current state from PostgreSQL, then `event: state` (`{id, state}`) and',
      '`event: progress` (`{id, state, progress}`) as they happen. At a final state, one last `event: state`',
      'with `id: final` whose data is the whole Job, and the stream ends. A `: heartbeat` comment comes every',
      '15 s. Reconnecting with `Last-Event-ID: final` answers 204, which stops an EventSource.',
    ].join(' '),
    ...jobEventStream,
  });
};
