import { z } from 'zod';
import { listQuery } from '../routes/admin.routes.js';
import { ingestRowSchema } from '../usage-ingest.js';
import { documentRoute, json, pageOf, timestamp, type RouteDocs } from './document-route.js';

export const adminCustomerSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    created_at: timestamp,
    balance_usd_cents: z.int(),
    current_month_charged_usd_cents: z.int(),
    max_monthly_usd_cents: z.int().nullable(),
    suspended_reason: z.string().nullable(),
    services: z.array(z.object({ service_type: z.string(), tier: z.string(), enabled: z.boolean(), suspended_reason: z.string().nullable() })),
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
    description: 'One JSON object per line, each checked alone: valid lines are stored in one transaction, bad ones reported by line number. 400 when no line is valid.',
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
};
