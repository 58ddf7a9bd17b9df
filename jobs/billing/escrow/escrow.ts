import type { EntityManager } from '@mikro-orm/postgresql';

export interface EscrowChargeRequest {
  customerId: string;
  /** Whole cents, > 0. */
  amountUsdCents: number;
  /** Derived from the usage records being charged; the same key must never move money twice. */
  idempotencyKey: string;
}

export type EscrowChargeResult =
  | { status: 'charged'; txDigest: string }
  /** The escrow refused: the customer's funds do not cover the amount. Nothing was charged. */
  | { status: 'insufficient-funds'; balanceUsdCents: number };

/**
 * Where billing takes a customer's money. The contract every adapter keeps: `charge` is idempotent by
 * `idempotencyKey` — asked again with a key it already charged, it answers that charge's `txDigest` and moves
 * nothing. Billing relies on this to retry safely after a failure, a timeout or a lost answer.
 *
 * `em` is billing's open transaction. An adapter backed by this database posts inside it, so the ledger,
 * balances and usage records commit (or roll back) together; a remote escrow (an on-chain contract)
 * ignores it and is reconciled through the key instead.
 */
export interface EscrowAdapter {
  readonly name: string;
  charge(em: EntityManager, request: EscrowChargeRequest): Promise<EscrowChargeResult>;
}

/** The escrow did not answer in time; whether it charged is unknown until the same key is asked again. */
export class EscrowTimeoutError extends Error {
  override name = 'EscrowTimeoutError';
}

/** The escrow could not be reached or failed before answering. */
export class EscrowUnavailableError extends Error {
  override name = 'EscrowUnavailableError';
}

/** Rejects with EscrowTimeoutError when `promise` has not settled within `ms`. */
export async function withEscrowTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new EscrowTimeoutError(`the escrow did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
