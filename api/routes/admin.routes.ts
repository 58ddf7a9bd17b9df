import express, { Router } from 'express';
import { z } from 'zod';
import { existingCustomerIds, listCustomersForAdmin, type AdminCustomerRow } from '../../db/repositories/customers-admin.js';
import { recordAdminAction } from '../../db/repositories/admin-audit.js';
import { insertRequestLogs } from '../../db/repositories/request-logs.js';
import { summarizeBacklog, type CustomerBacklog } from '../../db/jobs/unfinished-counts.js';
import type { Tier } from '../../db/entities/service-instance.entity.js';
import { creditCustomer } from '../../jobs/billing/account-operations.js';
import { principalOf, requireAdmin } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { assertWithinCap, centsIn, ledgerIdempotencyKey, postingOnce, transactionView } from '../ledger-requests.js';
import { decodeCursor, page, paginationQuery, queryInteger } from '../pagination.js';
import { notFound, ProblemError } from '../problems.js';
import { parseIngestBody, type IngestRejection } from '../usage-ingest.js';
import { parseInput } from '../validate.js';

const ndjsonTypes = ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines'];
/** At most this many rejections are listed in an answer (`rejected_count` has them all). */
const maxListedRejections = 1000;
export const listQuery = z.strictObject({ ...paginationQuery });
export const backlogQuery = z.strictObject({
  limit: queryInteger(1, 100)
    .default(20)
    .describe('How many of the customers holding the most unfinished jobs to name (1–100, default 20); the rest are summed in `other`'),
});
export const customerParams = z.object({ id: z.uuid('a customer id is a UUID') });
export const creditBody = z.strictObject({
  amount_usd_cents: centsIn,
  reason: z
    .string()
    .trim()
    .min(1, 'must say why')
    .max(500)
    .describe('Why the customer is credited (1–500 characters); the customer sees it in the ledger'),
});

function customerView(row: AdminCustomerRow) {
  const blocked = row.services.find((service) => service.suspended_reason !== null);
  return {
    id: row.id,
    name: row.name,
    created_at: new Date(row.createdAt).toISOString(),
    deleted_at: row.deletedAt ? new Date(row.deletedAt).toISOString() : null,
    balance_usd_cents: row.balanceUsdCents,
    current_month_charged_usd_cents: row.currentMonthChargedUsdCents,
    max_monthly_usd_cents: row.maxMonthlyUsdCents,
    suspended_reason: blocked?.suspended_reason ?? null,
    paused_at: row.pausedAt === null ? null : new Date(row.pausedAt).toISOString(),
    services: row.services,
  };
}

/**
 * Admin back-office routes under /api/v1: the edge proxy's usage ingest, the customer list and credits.
 * (The Bull Board pages under /admin are elsewhere.)
 */
export function adminRoutes(deps: ApiDeps): Router {
  const router = Router();
  const ndjson = express.text({ type: ndjsonTypes, limit: '16mb' });

  /**
   * NDJSON request-log rows (`timestamp, customer_id, service_type, method, status_code, bytes_out`), each
   * validated alone: valid lines are stored (all in one transaction), bad ones reported by line number.
   * 200 `{accepted, rejected, rejected_count}`; 400 when no line is valid.
   */
  router.post('/admin/usage/ingest', requireAdmin, ndjson, async (req, res) => {
    if (!req.is(ndjsonTypes)) {
      throw new ProblemError(
        'unsupported-media-type',
        `send the rows as NDJSON (Content-Type: ${ndjsonTypes[0]}), one JSON object per line`,
        { errors: [{ field: 'header.content-type', message: `must be ${ndjsonTypes[0]}` }] },
      );
    }
    const body = typeof req.body === 'string' ? req.body : '';
    const parsed = await parseIngestBody(body, { keptRejections: maxListedRejections });
    const known = await existingCustomerIds(deps.orm.em.fork(), [...new Set(parsed.rows.map((row) => row.customerId))]);
    const accepted = parsed.rows.filter((row) => known.has(row.customerId));
    const unknown = parsed.rows.filter((row) => !known.has(row.customerId));
    // The first rejections by line: the first the parse kept, and those of unknown customers among them.
    const listed: IngestRejection[] = [
      ...parsed.rejected,
      ...unknown.slice(0, maxListedRejections).map((row) => ({ line: row.line, error: `customer_id: no customer ${row.customerId}` })),
    ]
      .sort((a, b) => a.line - b.line)
      .slice(0, maxListedRejections);
    const rejectedCount = parsed.rejectedCount + unknown.length;
    if (accepted.length === 0) {
      throw new ProblemError('validation', rejectedCount === 0 ? 'the body holds no rows' : `no valid rows: ${rejectedCount} rejected`, {
        errors:
          listed.length === 0
            ? [{ field: 'body', message: 'holds no rows: send one JSON object per line' }]
            : listed.map((r) => ({ field: `body.line.${r.line}`, message: r.error })),
        accepted: 0,
        rejected: listed,
        rejected_count: rejectedCount,
      });
    }
    await insertRequestLogs(deps.orm.em.fork(), accepted);
    res.json({ accepted: accepted.length, rejected: listed, rejected_count: rejectedCount });
  });

  /**
   * Who holds the backlog: the customers with the most unfinished jobs (queued, delayed, active), each
   * with its tier's admission caps, the rest summed, and the totals — read from PostgreSQL's partial index
   * of unfinished rows, never the history.
   */
  router.get('/admin/backlog', requireAdmin, async (req, res) => {
    const query = parseInput(backlogQuery, req.query, 'query');
    const backlog = await summarizeBacklog(deps.orm.em.fork(), query.limit);
    const capsOf = (tier: string | null) =>
      tier && tier in deps.config.tierMaxQueued
        ? { max_queued: deps.config.tierMaxQueued[tier as Tier], max_active: deps.config.tierMaxActive[tier as Tier] }
        : { max_queued: null, max_active: null };
    const view = (row: CustomerBacklog) => ({
      customer_id: row.customerId,
      name: row.name,
      tier: row.tier,
      queued: row.queued,
      delayed: row.delayed,
      active: row.active,
      ...capsOf(row.tier),
    });
    const sum = (key: 'queued' | 'delayed' | 'active') => backlog.top.reduce((total, row) => total + row[key], backlog.other[key]);
    res.json({
      items: backlog.top.map(view),
      other: backlog.other,
      total: {
        customers: backlog.top.length + backlog.other.customers,
        queued: sum('queued'),
        delayed: sum('delayed'),
        active: sum('active'),
      },
      as_of: new Date().toISOString(),
    });
  });

  router.get('/admin/customers', requireAdmin, async (req, res) => {
    const query = parseInput(listQuery, req.query, 'query');
    const beforeId = decodeCursor(query.cursor, z.uuid());
    const rows = await listCustomersForAdmin(deps.orm.em.fork(), beforeId, query.limit + 1);
    res.json(page(rows, query.limit, customerView, (row) => row.id));
  });

  /**
   * Money an admin gives a customer (a refund, a goodwill gesture, a payment taken outside the escrow): a
   * ledger entry of type `credit` naming the admin and the reason. A signed-in admin, not a key, so the ledger
   * names a person. `Idempotency-Key` makes a retry safe, as for deposits.
   */
  router.post('/admin/customers/:id/credits', requireAdmin, async (req, res) => {
    const principal = principalOf(req);
    if (!principal.userId) throw new ProblemError('forbidden', 'crediting a customer needs an admin access token, not an API key');
    const { id: customerId } = parseInput(customerParams, req.params, 'params');
    const body = parseInput(creditBody, req.body, 'body');
    assertWithinCap(body.amount_usd_cents, 'credit');
    const request = {
      customerId,
      amountUsdCents: body.amount_usd_cents,
      reason: body.reason,
      createdBy: principal.userId,
      idempotencyKey: ledgerIdempotencyKey(req, `credit_${customerId}`),
    };
    const outcome = await postingOnce('credit', () => creditCustomer(deps.orm.em.fork(), request));
    if (!outcome) throw notFound(`customer ${customerId}`);
    if (outcome.review.changed) await deps.principals.invalidateCustomer(customerId);
    if (!outcome.replayed) {
      await recordAdminAction(deps.orm.em.fork(), {
        adminUserId: principal.userId,
        action: 'customer.credit',
        customerId,
        details: { amount_usd_cents: body.amount_usd_cents, reason: body.reason, transaction_id: outcome.transaction.id },
      });
    }
    res.status(outcome.replayed ? 200 : 201).json({
      customer_id: customerId,
      credited_by: outcome.transaction.createdBy,
      transaction: transactionView(outcome.transaction),
      balance_usd_cents: outcome.account.balanceUsdCents,
      suspended_reason: outcome.review.after,
      services_resumed: outcome.review.before !== null && outcome.review.after === null,
    });
  });

  return router;
}
