import type { BillingBlock } from '../../db/repositories/service-instances.js';

/** The money figures the rules look at, in cents. `maxMonthlyUsdCents` null = no monthly limit. */
export interface AccountFigures {
  balanceUsdCents: number;
  currentMonthChargedUsdCents: number;
  maxMonthlyUsdCents: number | null;
}

export type OperationCheck =
  | { allowed: true }
  | {
      allowed: false;
      reason: 'insufficient_balance';
      details: { current_balance_usd_cents: number; estimated_cost_usd_cents: number; required_deposit_usd_cents: number };
    }
  | {
      allowed: false;
      reason: 'monthly_limit_exceeded';
      details: {
        max_monthly_usd_cents: number;
        current_month_charged_usd_cents: number;
        estimated_cost_usd_cents: number;
        remaining_authorization_usd_cents: number;
      };
    };

/**
 * The seed's `validateOperation`, in cents: before enabling a service or raising its tier, the balance must
 * cover the estimated cost, and this month's spend plus that cost must stay within the monthly limit.
 * The answer carries the same figures as the seed's (as `_usd_cents` integers, SPEC §5).
 */
export function validateOperation(account: AccountFigures, estimatedUsdCents: number): OperationCheck {
  if (account.balanceUsdCents < estimatedUsdCents) {
    return {
      allowed: false,
      reason: 'insufficient_balance',
      details: {
        current_balance_usd_cents: account.balanceUsdCents,
        estimated_cost_usd_cents: estimatedUsdCents,
        required_deposit_usd_cents: estimatedUsdCents - account.balanceUsdCents,
      },
    };
  }
  const limit = account.maxMonthlyUsdCents;
  if (limit !== null && account.currentMonthChargedUsdCents + estimatedUsdCents > limit) {
    return {
      allowed: false,
      reason: 'monthly_limit_exceeded',
      details: {
        max_monthly_usd_cents: limit,
        current_month_charged_usd_cents: account.currentMonthChargedUsdCents,
        estimated_cost_usd_cents: estimatedUsdCents,
        remaining_authorization_usd_cents: Math.max(0, limit - account.currentMonthChargedUsdCents),
      },
    };
  }
  return { allowed: true };
}

/**
 * What stops billing from charging `dueUsdCents` now: the balance first (a charge never overdraws), then
 * the monthly limit. Null when the charge may go ahead (or nothing is due).
 */
export function billingBlockFor(account: AccountFigures, dueUsdCents: number): BillingBlock | null {
  if (dueUsdCents <= 0) return null;
  if (account.balanceUsdCents < dueUsdCents) return 'insufficient_balance';
  if (account.maxMonthlyUsdCents !== null && account.currentMonthChargedUsdCents + dueUsdCents > account.maxMonthlyUsdCents)
    return 'monthly_limit_exceeded';
  return null;
}
