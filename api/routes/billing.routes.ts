import { Router } from 'express';
import { z } from 'zod';
import { listLedgerTransactions, readCustomerAccount, type CustomerAccount } from '../../db/repositories/ledger.js';
import { currentBillingBlock } from '../../db/repositories/service-instances.js';
import { listUsageRecords, type UsageRecordView } from '../../db/repositories/usage-records.js';
import { depositThroughEscrow, setMonthlyLimit } from '../../jobs/billing/account-operations.js';
import { depositAdapterFor } from '../../jobs/billing/escrow/deposit-adapter.js';
import { atMost } from '../../jobs/input-limits.js';
import { outstandingUsdCents } from '../../jobs/billing/price-records.js';
import { principalOf } from '../auth/authenticate.js';
import type { Principal } from '../auth/principal.js';
import type { ApiDeps } from '../deps.js';
import { assertWithinCap, centsIn, ledgerIdempotencyKey, postingOnce, transactionView } from '../ledger-requests.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { ProblemError } from '../problems.js';
import { parseInput, refuseQueryFields } from '../validate.js';
import { filterTime } from '../storable-time.js';
import { isoTime } from '../../lib/iso-time.js';

/** The highest monthly limit accepted: $1,000,000,000. */
const maxMonthlyLimitUsdCents = 100_000_000_000;

export const depositBody = z.strictObject({ amount_usd_cents: centsIn });
export const limitsBody = z.strictObject({
  max_monthly_usd_cents: atMost(z.number().int('must be a whole number of cents').min(0), maxMonthlyLimitUsdCents).nullable(),
});
export const usageQuery = z.strictObject({
  from: filterTime().optional(),
  to: filterTime().optional(),
  ...paginationQuery,
});
export const listQuery = z.strictObject({ ...paginationQuery });
const maxBigint = 2n ** 63n - 1n;

function balanceView(account: CustomerAccount, outstanding: number, suspendedReason: string | null) {
  return {
    balance_usd_cents: account.balanceUsdCents,
    outstanding_usd_cents: outstanding,
    current_month_charged_usd_cents: account.currentMonthChargedUsdCents,
    last_month_charged_usd_cents: account.lastMonthChargedUsdCents,
    current_month_start: account.currentMonthStart,
    max_monthly_usd_cents: account.maxMonthlyUsdCents,
    suspended_reason: suspendedReason,
  };
}

function usageView(row: UsageRecordView) {
  return {
    id: row.id,
    service_type: row.serviceType,
    window_start: isoTime(row.windowStart),
    window_end: isoTime(row.windowEnd),
    request_count: row.requestCount,
    bytes_transferred: row.bytesTransferred,
    charged_usd_cents: row.chargedUsdCents,
  };
}

/** Moving money or limits takes a signed-in user; API keys may read. */
function requireUser(principal: Principal, action: string): void {
  if (!principal.userId) throw new ProblemError('forbidden', `${action} needs a user access token, not an API key`);
}

/**
 * Billing (SPEC §5): balance, usage, ledger transactions, deposits and the monthly limit. Mounted after
 * authentication but before the suspended-service check, so a suspended customer can still pay.
 */
export function billingRoutes(deps: ApiDeps): Router {
  const router = Router();
  const deposits = depositAdapterFor(deps.config.escrowDeposits);

  router.get('/billing/balance', async (req, res) => {
    refuseQueryFields(req.query);
    const { customerId } = principalOf(req);
    const em = deps.orm.em.fork();
    const account = await readCustomerAccount(em, customerId);
    res.json(balanceView(account, await outstandingUsdCents(em, customerId), await currentBillingBlock(em, customerId)));
  });

  router.get('/billing/usage', async (req, res) => {
    const { customerId } = principalOf(req);
    const query = parseInput(usageQuery, req.query, 'query');
    const from = query.from ? new Date(query.from) : undefined;
    const to = query.to ? new Date(query.to) : undefined;
    if (from && to && from >= to)
      throw new ProblemError('unprocessable', 'query.from must be before query.to', {
        errors: [{ field: 'query.from', message: 'must be before query.to' }],
      });
    // Usage record ids are bigints: a forged 19-digit cursor past their range would make PostgreSQL fail.
    const beforeId = decodeCursor(
      query.cursor,
      z
        .string()
        .regex(/^\d{1,19}$/)
        .refine((id) => BigInt(id) <= maxBigint),
    );
    const rows = await listUsageRecords(deps.orm.em.fork(), { customerId, from, to, beforeId, limit: query.limit + 1 });
    res.json(page(rows, query.limit, usageView, (row) => row.id));
  });

  router.get('/billing/transactions', async (req, res) => {
    const { customerId } = principalOf(req);
    const query = parseInput(listQuery, req.query, 'query');
    const beforeId = decodeCursor(query.cursor, z.uuid());
    const rows = await listLedgerTransactions(deps.orm.em.fork(), { customerId, beforeId, limit: query.limit + 1 });
    res.json(page(rows, query.limit, transactionView, (row) => row.id));
  });

  /**
   * Credits the balance only once the deposit adapter confirms the payment (SPEC §9); without one (the
   * production default) it answers 403. `Idempotency-Key` makes a retried deposit safe: the same key answers
   * the first deposit (200) and moves nothing.
   */
  router.post('/billing/deposits', async (req, res) => {
    const principal = principalOf(req);
    requireUser(principal, 'depositing');
    if (!deposits) {
      throw new ProblemError(
        'forbidden',
        'deposits need an escrow adapter that confirms the payment, and this instance has none (ESCROW_DEPOSITS=none): an administrator credits accounts instead',
      );
    }
    const body = parseInput(depositBody, req.body, 'body');
    assertWithinCap(body.amount_usd_cents, 'deposit');
    const request = {
      customerId: principal.customerId,
      amountUsdCents: body.amount_usd_cents,
      idempotencyKey: ledgerIdempotencyKey(req, `dep_${principal.customerId}`),
      createdBy: principal.userId,
    };
    const outcome = await postingOnce('deposit', () => depositThroughEscrow(deps.orm.em.fork(), deposits, request));
    if (!outcome.confirmed) throw new ProblemError('payment-required', outcome.detail, { reason: 'deposit_not_confirmed' });
    if (outcome.review.changed) await deps.principals.invalidateCustomer(principal.customerId);
    res.status(outcome.replayed ? 200 : 201).json({
      transaction: transactionView(outcome.transaction),
      balance_usd_cents: outcome.account.balanceUsdCents,
      suspended_reason: outcome.review.after,
      services_resumed: outcome.review.before !== null && outcome.review.after === null,
    });
  });

  router.patch('/billing/limits', async (req, res) => {
    const principal = principalOf(req);
    requireUser(principal, 'changing the monthly limit');
    const body = parseInput(limitsBody, req.body, 'body');
    const em = deps.orm.em.fork();
    const outcome = await setMonthlyLimit(em, principal.customerId, body.max_monthly_usd_cents);
    if (outcome.review.changed) await deps.principals.invalidateCustomer(principal.customerId);
    res.json(
      balanceView(
        outcome.account,
        await outstandingUsdCents(em, principal.customerId),
        await currentBillingBlock(em, principal.customerId),
      ),
    );
  });

  return router;
}
