import type { Request } from 'express';
import { uuidv7 } from '../lib/uuid.js';
import { z } from 'zod';
import { IdempotencyKeyConflictError, type LedgerTransaction } from '../db/repositories/ledger.js';
import { ProblemError } from './problems.js';

/**
 * What the routes that put money into an account (a customer's deposit, an admin's credit) share: the amount's
 * rules, the `Idempotency-Key` that makes a retry safe, and how a ledger posting is shown.
 */

/** The most one deposit or credit may add: $10,000. More is a 422 (split it, or talk to us). */
export const maxMoneyInUsdCents = 1_000_000;

export const centsIn = z.number().int('must be a whole number of cents').positive('must be positive');

/** A well-formed amount above the cap breaks a rule: 422 naming the field. */
export function assertWithinCap(amountUsdCents: number, what: string): void {
  if (amountUsdCents <= maxMoneyInUsdCents) return;
  throw new ProblemError('unprocessable', `a ${what} may add at most ${maxMoneyInUsdCents} cents`, {
    errors: [{ field: 'body.amount_usd_cents', message: `must be at most ${maxMoneyInUsdCents}` }],
  });
}

const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;

/**
 * The ledger's idempotency key for this request: the `Idempotency-Key` header within `scope` (so two customers,
 * or a deposit and a credit, never share one), or a fresh key when the header is absent.
 */
export function ledgerIdempotencyKey(req: Request, scope: string): string {
  const header = req.header('idempotency-key');
  if (header !== undefined && !idempotencyKeyPattern.test(header)) {
    throw new ProblemError('validation', 'Idempotency-Key must be 1–255 visible ASCII characters', {
      errors: [{ field: 'header.idempotency-key', message: 'must be 1–255 visible ASCII characters' }],
    });
  }
  return `${scope}:${header ?? uuidv7()}`;
}

/** Runs a posting; a key already used for another posting is the caller's 422. */
export async function postingOnce<T>(what: string, post: () => Promise<T>): Promise<T> {
  try {
    return await post();
  } catch (error) {
    if (!(error instanceof IdempotencyKeyConflictError)) throw error;
    throw new ProblemError('unprocessable', `this Idempotency-Key was already used for a different ${what}`, {
      errors: [{ field: 'header.idempotency-key', message: 'reused with a different request' }],
    });
  }
}

export function transactionView(row: LedgerTransaction) {
  return {
    id: row.id,
    type: row.txType,
    amount_usd_cents: row.amountUsdCents,
    reason: row.reason,
    tx_digest: row.txDigest,
    created_at: new Date(row.createdAt).toISOString(),
  };
}
