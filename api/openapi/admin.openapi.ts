import { z } from 'zod';
import { creditBody, customerParams, listQuery } from '../routes/admin.routes.js';
import { ingestRowSchema } from '../usage-ingest.js';
import { transactionSchema } from './billing.openapi.js';
import { documentRoute, json, jsonBody, pageOf, timestamp, type RouteDocs } from './document-route.js';

export const adminCustomerSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    created_at: timestamp,
    balance_usd_cents: z.int(),
    current_month_charged_usd_cents: z.int(),
    max_monthly_usd_cents: z.int().nullable(),
    suspended_reason: z.string().nullable(),
    services: z.array(
      z.object({ service_type: z.string(), tier: z.string(), enabled: z.boolean(), suspended_reason: z.string().nullable() }),
    ),
  })
  .meta({ id: 'AdminCustomer' });

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
        content: { 'application/x-ndjson': { schema: z.string().describe('Lines, each an IngestRow') } },
      },
    },
    responses: {
      200: json(z.object({ accepted: z.int(), rejected: z.array(rejection), rejected_count: z.int() }), 'Stored the valid lines'),
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
  const credit = z
    .object({
      customer_id: z.uuid(),
      credited_by: z.uuid().describe('The admin user who gave the credit'),
      transaction: transactionSchema,
      balance_usd_cents: z.int(),
      suspended_reason: z.string().nullable(),
      services_resumed: z.boolean(),
    })
    .meta({ id: 'AdminCredit' });
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
      body: jsonBody(creditBody),
    },
    responses: { 201: json(credit, 'Credited'), 200: json(credit, 'The same Idempotency-Key: the first credit, again') },
    problems: [404, 422],
  });
};
