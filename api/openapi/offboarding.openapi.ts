import { z } from 'zod';
import { exportKinds } from '../../db/offboarding/customer-export.js';
import { customerParams } from '../routes/admin.routes.js';
import { documentRoute, ex, json, timestamp, type RouteDocs } from './document-route.js';

const kinds = exportKinds.map((kind) => kind.kind);

const exportExample = [
  {
    kind: 'header',
    format: 'chrysalis.customer-export',
    version: 1,
    customer: { id: ex.customerId, name: 'ada@example.com', created_at: ex.at, paused_at: null, deleted_at: null },
    exported_at: ex.later,
    counts: Object.fromEntries(kinds.map((kind) => [kind, kind === 'job' ? 1 : 0])),
  },
  { kind: 'job', id: ex.jobId, customer_id: ex.customerId, type: 'invoke', state: 'completed', payload: { substrate_id: ex.substrateId } },
  { kind: 'end', rows: 1 },
]
  .map((line) => JSON.stringify(line))
  .join('\n');

const deletedCounts = z.object({
  jobs: z.int().min(0),
  batch_items: z.int().min(0),
  substrates: z.int().min(0),
  relationships: z.int().min(0),
  schedules: z.int().min(0),
  webhook_endpoints: z.int().min(0),
  webhook_deliveries: z.int().min(0),
  webhook_attempts: z.int().min(0),
  api_keys: z.int().min(0),
  request_logs: z.int().min(0),
});

export const customerDeletionSchema = z
  .object({
    customer_id: z.uuid(),
    deleted_at: timestamp.describe('When the customer was first deleted (a second DELETE answers the same time)'),
    cancelled_jobs: z.int().min(0).describe('Unfinished jobs submitted between the check and the lock-out, cancelled by the delete'),
    deleted: deletedCounts.describe('Rows removed by this call'),
    kept: z
      .object({
        usage_records: z.int().min(0),
        charges: z.int().min(0),
        ledger_transactions: z.int().min(0),
        request_logs: z
          .int()
          .min(0)
          .describe('Request logs not yet metered, or in an hour not yet billed: metering and billing finish them, retention removes them'),
      })
      .describe('The billing evidence that stays'),
  })
  .meta({
    id: 'CustomerDeletion',
    example: {
      customer_id: ex.customerId,
      deleted_at: ex.at,
      cancelled_jobs: 0,
      deleted: {
        jobs: 1_204,
        batch_items: 48_000,
        substrates: 37,
        relationships: 12,
        schedules: 2,
        webhook_endpoints: 1,
        webhook_deliveries: 1_180,
        webhook_attempts: 1_233,
        api_keys: 3,
        request_logs: 96_411,
      },
      kept: { usage_records: 212, charges: 9, ledger_transactions: 14, request_logs: 18 },
    },
  });

/** offboarding.routes.ts: export a customer's data, delete the customer. */
export const offboardingDocs: RouteDocs = (registry) => {
  const tag = 'Admin';
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'get',
    path: '/admin/customers/:id/export',
    summary: "Export one customer's data as NDJSON (gzip when accepted)",
    description:
      'Streams one line per row, read in one consistent snapshot: a `header` line (`customer`, `exported_at`, and `counts` per kind), ' +
      `then every row of each kind in this order — ${kinds.map((kind) => `\`${kind}\``).join(', ')} — each line \`{"kind": "<kind>", …the row's columns}\`, ` +
      'then an `end` line with the number of rows. A file without its `end` line was cut short (an error after the answer began can only end the stream). ' +
      'Secrets are left out: no key hashes or encrypted keys, no webhook signing secrets, no password hashes. ' +
      'Memory stays flat whatever the size; one export runs at a time per API process (429 with `Retry-After` otherwise). Audited as `customer.export`.',
    request: { params: customerParams },
    responses: {
      200: {
        description: 'The export, streamed',
        headers: {
          'Content-Disposition': { description: 'attachment; filename="customer-<id>-<date>.ndjson"', schema: { type: 'string' } },
          'Content-Encoding': { description: '`gzip` when the request accepts it', schema: { type: 'string' } },
        },
        content: { 'application/x-ndjson': { schema: z.string().describe('NDJSON lines'), example: `${exportExample}\n` } },
      },
    },
    problems: [404, 429],
  });
  documentRoute(registry, {
    tag,
    auth: 'admin',
    method: 'delete',
    path: '/admin/customers/:id',
    summary: 'Delete (offboard) a customer, keeping the billing evidence',
    description:
      '409 while the customer has unfinished jobs (cancel them first with `POST /admin/jobs/cancel` and `{"customer_id": …}`; the problem lists `unfinished` by state), ' +
      "and for an operator's own customer (one with admin users). Otherwise, at once: the customer is marked deleted, its name and its users' emails become tombstones " +
      '(`deleted-<id>`), their passwords unusable, their sessions (refresh tokens) ended and its API keys revoked — every token of the customer answers 401 from then on, in every API process — ' +
      'and its schedules stop firing. Then its jobs with their batch items, substrates, relationships, schedules, webhook endpoints, deliveries and attempts, API keys and request logs are ' +
      'deleted in bounded steps (RETENTION_STEP_ROWS rows each). Kept: the customer row and its users (anonymised), its service rows (its tier prices a final bill), usage records, charges, ' +
      'the ledger (accounts, transactions, entries), terms-of-service acceptances, the admin audit log, and request logs that metering or billing still needs. ' +
      'A second DELETE of a deleted customer finishes a purge that was cut short and answers the same way. Audited as `customer.delete`.',
    request: { params: customerParams },
    responses: { 200: json(customerDeletionSchema, 'Deleted; what went and what stays') },
    problems: [404, 409],
  });
};
