import { z } from 'zod';
import { backlogQuery, creditBody, customerParams, listQuery } from '../routes/admin.routes.js';
import { ingestRowSchema } from '../usage-ingest.js';
import { transactionSchema } from './billing.openapi.js';
import { documentRoute, ex, exampleOf, json, jsonBody, pageOf, timestamp, type RouteDocs } from './document-route.js';

export const adminCustomerSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    created_at: timestamp,
    deleted_at: timestamp
      .nullable()
      .describe('When an admin deleted the customer (DELETE /admin/customers/:id); its name is then a tombstone, `deleted-<id>`'),
    balance_usd_cents: z.int(),
    current_month_charged_usd_cents: z.int(),
    max_monthly_usd_cents: z.int().nullable(),
    suspended_reason: z.string().nullable(),
    paused_at: timestamp
      .nullable()
      .describe("When an admin paused (quarantined) the customer's work (POST /admin/customers/{id}/pause); null: not paused"),
    services: z.array(
      z.object({ service_type: z.string(), tier: z.string(), enabled: z.boolean(), suspended_reason: z.string().nullable() }),
    ),
  })
  .meta({
    id: 'AdminCustomer',
    example: {
      id: ex.customerId,
      name: 'ada@example.com',
      created_at: ex.at,
      deleted_at: null,
      balance_usd_cents: 4_250,
      current_month_charged_usd_cents: 750,
      max_monthly_usd_cents: null,
      suspended_reason: null,
      paused_at: null,
      services: [
        { service_type: 'compute', tier: 'pro', enabled: true, suspended_reason: null },
        { service_type: 'seal', tier: 'starter', enabled: true, suspended_reason: null },
      ],
    },
  });

const backlogFigures = {
  queued: z.int().min(0).describe('Waiting to start'),
  delayed: z.int().min(0).describe('Waiting for their delay (count toward the queued cap too)'),
  active: z.int().min(0).describe('Running'),
};

export const adminBacklogSchema = z
  .object({
    items: z.array(
      z.object({
        customer_id: z.uuid(),
        name: z.string().nullable(),
        tier: z.string().nullable().describe("The customer's compute tier"),
        ...backlogFigures,
        max_queued: z.int().nullable().describe("The tier's cap of queued and delayed jobs (TIER_MAX_QUEUED)"),
        max_active: z.int().nullable().describe("The tier's cap of running jobs (TIER_MAX_ACTIVE)"),
      }),
    ),
    other: z.object({ customers: z.int().min(0), ...backlogFigures }).describe('Every other customer with unfinished jobs, summed'),
    total: z.object({ customers: z.int().min(0), ...backlogFigures }),
    as_of: timestamp,
  })
  .meta({ id: 'AdminBacklog' });

const rejection = z.object({ line: z.int().describe('1-based line number'), error: z.string() });

/** admin.routes.ts (the JSON back office; the Bull Board pages under /admin are outside /api/v1). */
export const adminDocs: RouteDocs = (registry) => {
  const tag = 'Admin';
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'post',
    path: '/admin/usage/ingest',
    summary: "Ingest the edge proxy's request log (NDJSON, up to 16 MiB)",
    description:
      'One JSON object per line, each checked alone: valid lines are stored in one transaction, bad ones reported by line number. 400 when no line is valid.',
    request: {
      body: {
        required: true,
        content: {
          'application/x-ndjson': {
            schema: z.string().describe('Lines, each an IngestRow'),
            example: `${JSON.stringify({ timestamp: ex.at, customer_id: ex.customerId, service_type: 'seal', method: 'POST', status_code: 200, bytes_out: 5120 })}\n`,
          },
        },
      },
    },
    responses: {
      200: json(
        z.object({ accepted: z.int(), rejected: z.array(rejection), rejected_count: z.int() }),
        'Stored the valid lines',
        undefined,
        { accepted: 998, rejected: [{ line: 17, error: 'status_code: Too big: expected number to be <=599' }], rejected_count: 2 },
      ),
    },
    problems: [400, 413, 415],
  });
  // The NDJSON body cannot carry a $ref per line; the row schema is still worth a component.
  const { $schema: _dialect, ...ingestRow } = z.toJSONSchema(ingestRowSchema, { unrepresentable: 'any' });
  registry.registerComponent('schemas', 'IngestRow', ingestRow as never);
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/customers',
    summary: 'Customers with their money and services, newest first',
    request: { query: listQuery },
    responses: { 200: json(pageOf(adminCustomerSchema), 'A page of customers') },
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/backlog',
    summary: 'Who holds the backlog: customers with the most unfinished jobs',
    description:
      'The customers holding the most queued, delayed and running jobs, most first, each with its tier’s admission caps; everybody else summed in `other`; the totals. Read from PostgreSQL (the partial index of unfinished jobs) on each call.',
    request: { query: backlogQuery },
    responses: {
      200: {
        description: 'The backlog by customer',
        content: {
          'application/json': {
            schema: adminBacklogSchema,
            example: {
              items: [
                {
                  customer_id: '0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e11',
                  name: 'flood@example.com',
                  tier: 'enterprise',
                  queued: 38_500,
                  delayed: 0,
                  active: 64,
                  max_queued: 100_000,
                  max_active: 5000,
                },
              ],
              other: { customers: 3, queued: 12, delayed: 1, active: 4 },
              total: { customers: 4, queued: 38_512, delayed: 1, active: 68 },
              as_of: '2026-12-03T17:30:00.000Z',
            },
          },
        },
      },
    },
  });
  const credit = z
    .object({
      customer_id: z.uuid(),
      credited_by: z.uuid().describe('The admin user who gave the credit'),
      transaction: transactionSchema,
      balance_usd_cents: z.int(),
      suspended_reason: z.string().nullable(),
      services_resumed: z.boolean(),
    })
    .meta({
      id: 'AdminCredit',
      example: {
        customer_id: ex.customerId,
        credited_by: ex.adminId,
        transaction: { ...(exampleOf(transactionSchema) as object), type: 'credit', reason: 'Goodwill: outage of 3 Dec', tx_digest: null },
        balance_usd_cents: 9_250,
        suspended_reason: null,
        services_resumed: true,
      },
    });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'post',
    path: '/admin/customers/:id/credits',
    summary: "Credit a customer's balance (an admin access token; `Idempotency-Key` makes a retry safe)",
    description:
      'Posts a ledger entry of type `credit` naming the admin and the reason; the customer sees it in `GET /billing/transactions` and its balance, and services the balance now covers resume. ' +
      'This is how money enters an account when no escrow adapter confirms deposits (`ESCROW_DEPOSITS=none`, the production default). At most 1,000,000 cents per credit (422 above).',
    request: {
      params: customerParams,
      headers: z.object({ 'idempotency-key': z.string().max(255).optional() }),
      body: jsonBody(creditBody, { amount_usd_cents: 5_000, reason: 'Goodwill: outage of 3 Dec' }),
    },
    responses: { 201: json(credit, 'Credited'), 200: json(credit, 'The same Idempotency-Key: the first credit, again') },
    problems: [404, 422],
  });
};
