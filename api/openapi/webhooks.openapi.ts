import { z } from 'zod';
import { deliveryStates } from '../../db/entities/webhook-delivery.entity.js';
import { webhookEvents } from '../../db/entities/webhook-endpoint.entity.js';
import { createWebhookBody, deliveryParams, endpointParams, jobDeliveriesParams, listQuery } from '../routes/webhooks.routes.js';
import { documentRoute, ex, exampleOf, json, jsonBody, noContent, pageOf, timestamp, type RouteDocs } from './document-route.js';

export const webhookSchema = z
  .object({
    id: z.uuid(),
    url: z.string(),
    events: z.array(z.enum(webhookEvents)),
    created_at: timestamp,
    state: z
      .enum(['active', 'disabled'])
      .describe('`disabled`: a long failure stopped deliveries; `POST /webhooks/:id/enable` resumes them'),
    disabled_at: timestamp.nullable(),
    disabled_reason: z.string().nullable().describe('Why the endpoint was disabled (consecutive failures, or failing since when)'),
    breaker: z
      .object({
        state: z
          .enum(['closed', 'open', 'half_open'])
          .describe('`open`: deliveries wait until `open_until`; `half_open`: the next delivery is a trial with a short timeout'),
        consecutive_failures: z.number().int(),
        failing_since: timestamp.nullable(),
        open_until: timestamp.nullable(),
      })
      .describe("The endpoint's circuit breaker"),
  })
  .meta({
    id: 'Webhook',
    example: {
      id: ex.webhookId,
      url: 'https://hooks.example.com/chrysalis',
      events: ['job.completed', 'job.failed'],
      created_at: ex.at,
      state: 'active',
      disabled_at: null,
      disabled_reason: null,
      breaker: { state: 'closed', consecutive_failures: 0, failing_since: null, open_until: null },
    },
  });

/** 201 to POST /webhooks: the endpoint and its signing secret, shown only here. */
export const newWebhookSchema = webhookSchema
  .extend({ secret: z.string().describe('`whsec_…`') })
  .meta({ id: 'NewWebhook', example: { ...(exampleOf(webhookSchema) as object), secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });

const secretSchema = z
  .object({ secret: z.string().describe('`whsec_…`'), created_at: timestamp })
  .meta({ id: 'WebhookSecret', example: { secret: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD', created_at: ex.at } });

export const deliverySchema = z
  .object({
    id: z.uuid(),
    event_type: z.enum(webhookEvents),
    webhook_id: z.string().describe('The Standard Webhooks `webhook-id` header, the same on every attempt and redelivery'),
    job_id: z.uuid().nullable(),
    endpoint_id: z.uuid().nullable().describe("The registered endpoint it goes to; null: the job's own `webhook_url`"),
    state: z.enum(deliveryStates),
    payload: z
      .unknown()
      .describe(
        'The body sent, `{type, timestamp, data: {job}}`: `data.job` is the job as GET /jobs/{id} shows it plus `links.self`. ' +
          'A result over WEBHOOK_RESULT_MAX_BYTES (64 KiB of JSON) is left out: the job has no `result` but `result_omitted: true` ' +
          "and `result_bytes` (its size); read it from `links.self`. A failed job's `error` is at most 2,000 characters.",
      ),
    attempts: z.array(
      z.object({ attempt: z.int(), status_code: z.int().nullable(), duration_ms: z.number(), error: z.string().nullable(), at: timestamp }),
    ),
    created_at: timestamp,
    finished_at: timestamp.nullable(),
  })
  .meta({
    id: 'WebhookDelivery',
    example: {
      id: ex.deliveryId,
      event_type: 'job.completed',
      webhook_id: 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
      job_id: ex.jobId,
      endpoint_id: ex.webhookId,
      state: 'succeeded',
      payload: {
        type: 'job.completed',
        timestamp: ex.later,
        data: { job: { id: ex.jobId, type: 'invoke', state: 'completed', links: { self: `/api/v1/jobs/${ex.jobId}` } } },
      },
      attempts: [{ attempt: 1, status_code: 200, duration_ms: 84, error: null, at: ex.later }],
      created_at: ex.later,
      finished_at: ex.later,
    },
  });

/** webhooks.routes.ts */
export const webhooksDocs: RouteDocs = (registry) => {
  const tag = 'Webhooks';
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/webhooks',
    summary: 'Register an endpoint (its signing secret is shown once)',
    description:
      'URLs resolving to private, loopback or link-local addresses are refused (unless WEBHOOK_ALLOW_PRIVATE). At most 50 per customer.',
    request: { body: jsonBody(createWebhookBody, { url: 'https://hooks.example.com/chrysalis', events: ['job.completed', 'job.failed'] }) },
    responses: { 201: json(newWebhookSchema, 'Registered') },
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/webhooks',
    summary: 'List endpoints',
    request: { query: listQuery },
    responses: { 200: json(pageOf(webhookSchema), 'A page of endpoints') },
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/webhooks/secret',
    summary: "The account secret that signs jobs' own `webhook_url` deliveries",
    responses: { 200: json(secretSchema, 'The secret') },
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/webhooks/secret',
    summary: 'Rotate the account secret',
    responses: { 200: json(secretSchema, 'The new secret') },
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/webhooks/:id',
    summary: 'One endpoint (its secret is never shown again)',
    description: "Another customer's endpoint answers 404.",
    request: { params: endpointParams },
    responses: { 200: json(webhookSchema, 'The endpoint') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'delete',
    path: '/webhooks/:id',
    summary: 'Delete an endpoint',
    request: { params: endpointParams },
    responses: { 204: noContent },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/webhooks/:id/enable',
    summary: 'Enable an endpoint a long failure disabled (its breaker closed, its failures forgotten)',
    request: { params: endpointParams },
    responses: { 200: json(webhookSchema, 'The endpoint, active') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/webhooks/:id/deliveries',
    summary: "An endpoint's deliveries, newest first, each with every attempt",
    request: { params: endpointParams, query: listQuery },
    responses: { 200: json(pageOf(deliverySchema), 'A page of deliveries') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/jobs/:id/webhook-deliveries',
    summary: "A job's webhook deliveries (to registered endpoints and its own `webhook_url`), newest first, each with every attempt",
    description:
      'What the job page of the console shows. A delivery with an `endpoint_id` can be sent again with POST /webhooks/{endpoint_id}/deliveries/{id}/redeliver.',
    request: { params: jobDeliveriesParams, query: listQuery },
    responses: { 200: json(pageOf(deliverySchema), 'A page of deliveries') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/webhooks/:id/deliveries/:delivery_id/redeliver',
    summary: 'Deliver again (same `webhook-id`, a fresh retry schedule)',
    request: { params: deliveryParams },
    responses: {
      202: json(deliverySchema, 'Queued again', undefined, {
        ...(exampleOf(deliverySchema) as object),
        state: 'pending',
        finished_at: null,
      }),
    },
    problems: [404],
  });
};
