import type { EntityManager } from '@mikro-orm/postgresql';
import { lockCustomerAccount } from '../../db/repositories/ledger.js';
import { currentBillingBlock, setBillingBlock, type BillingBlock } from '../../db/repositories/service-instances.js';
import { billingBlockFor } from './billing-rules.js';
import { outstandingUsdCents } from './price-records.js';

export interface BlockReview {
  before: BillingBlock | null;
  after: BillingBlock | null;
  /** True when the services' state changed (callers then invalidate cached principals). */
  changed: boolean;
}

/**
 * Decides again whether a suspended customer's services stay suspended, after something that can lift it:
 * a deposit, a higher monthly limit, a new month. The rule is billing's own (`billingBlockFor`) applied to
 * what the customer still owes: the block is lifted when the balance and the limit now cover it, switched
 * when the other rule now applies, kept otherwise. A customer without a billing block is left alone.
 * Run inside a transaction; takes the customer's account lock.
 */
export async function reviewBillingBlock(em: EntityManager, customerId: string): Promise<BlockReview> {
  const before = await currentBillingBlock(em, customerId);
  if (!before) return { before, after: null, changed: false };
  const account = await lockCustomerAccount(em, customerId);
  const after = billingBlockFor(account, await outstandingUsdCents(em, customerId));
  const changed = after !== before && (await setBillingBlock(em, customerId, after));
  return { before, after, changed };
}
