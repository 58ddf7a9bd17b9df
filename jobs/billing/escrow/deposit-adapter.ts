import type { Config } from '../../../config.js';

export interface DepositRequest {
  customerId: string;
  /** Whole cents, > 0. */
  amountUsdCents: number;
  /** The same key names the same payment: asked again, an adapter answers as it did the first time. */
  idempotencyKey: string;
}

export type DepositConfirmation =
  | { confirmed: true }
  /** The escrow holds no payment that backs the request: nothing may be credited. */
  | { confirmed: false; detail: string };

/**
 * What stands between `POST /billing/deposits` and a balance: the ledger credits a deposit only once its
 * adapter has confirmed that money arrived — in the seeds, the customer's wallet deposit into the on-chain
 * escrow contract, mirrored by the platform once the chain confirms it. Idempotent by `idempotencyKey`.
 */
export interface DepositAdapter {
  readonly name: string;
  confirm(request: DepositRequest): Promise<DepositConfirmation>;
}

/**
 * The seeds' mock escrow (`MOCK_ESCROW`): confirms every deposit at once, so local use and tests can fund
 * accounts. No money moves, which is why config.ts refuses it with NODE_ENV=production.
 */
export const developmentDeposits: DepositAdapter = {
  name: 'development',
  confirm: async () => ({ confirmed: true }),
};

/** The adapter `ESCROW_DEPOSITS` names; null when nothing confirms deposits (customers cannot deposit). */
export function depositAdapterFor(setting: Config['escrowDeposits']): DepositAdapter | null {
  return setting === 'development' ? developmentDeposits : null;
}
