import type { EntityManager } from '@mikro-orm/postgresql';
import type { Tier } from '../../db/entities/service-instance.entity.js';
import {
  lockCustomerAccount,
  postCustomerTransaction,
  readCustomerAccount,
  setMaxMonthlySpend,
  shareLockCustomer,
  type CustomerAccount,
  type LedgerTransaction,
} from '../../db/repositories/ledger.js';
import { lockServiceInstance, upsertServiceInstance, type ServiceInstanceRow } from '../../db/repositories/service-instances.js';
import { validateOperation, type OperationCheck } from './billing-rules.js';
import type { DepositAdapter } from './escrow/deposit-adapter.js';
import { isUpgrade, tierPrice } from './pricing.js';
import { reviewBillingBlock, type BlockReview } from './review-block.js';
import { inTransaction } from '../../db/transaction.js';

/**
 * What customers do to their own billing (the API's use cases), each in one transaction under the
 * customer's account lock, with the billing suspension reviewed whenever the change could lift it.
 */

export interface DepositOutcome {
  transaction: LedgerTransaction;
  /** The Idempotency-Key named an earlier deposit: nothing moved this time. */
  replayed: boolean;
  review: BlockReview;
  account: CustomerAccount;
}

export interface DepositRequest {
  customerId: string;
  amountUsdCents: number;
  idempotencyKey: string;
  /** The user who asked. */
  createdBy?: string | null;
}

/**
 * Credits the customer's escrow account with a deposit the escrow confirmed (from `platform:funding`) and
 * resumes services the balance now covers. Callers outside tests go through `depositThroughEscrow`.
 */
export async function deposit(em: EntityManager, request: DepositRequest): Promise<DepositOutcome> {
  return inTransaction(em, (tx) => postMoneyIn(tx, { ...request, txType: 'deposit' }));
}

/**
 * A customer's deposit: the adapter confirms the payment first, outside the ledger's transaction (a remote
 * escrow may take its time; the account lock is not held meanwhile), then the ledger credits it.
 */
export async function depositThroughEscrow(
  em: EntityManager,
  adapter: DepositAdapter,
  request: DepositRequest,
): Promise<({ confirmed: true } & DepositOutcome) | { confirmed: false; detail: string }> {
  const confirmation = await adapter.confirm(request);
  if (!confirmation.confirmed) return confirmation;
  return { confirmed: true, ...(await deposit(em, request)) };
}

export interface CreditRequest {
  customerId: string;
  amountUsdCents: number;
  idempotencyKey: string;
  /** The admin who gives it. */
  createdBy: string;
  /** Why, in the admin's words; the customer sees it in the ledger. */
  reason: string;
}

/**
 * An admin's credit (from `platform:credits`, naming the admin and the reason); resumes services the balance
 * now covers. Null when there is no such customer. The customer row is share-locked meanwhile, so the credit
 * cannot land on a customer being deleted.
 */
export async function creditCustomer(em: EntityManager, request: CreditRequest): Promise<DepositOutcome | null> {
  return inTransaction(em, async (tx) => {
    if (!(await shareLockCustomer(tx, request.customerId))) return null;
    return postMoneyIn(tx, { ...request, txType: 'credit' });
  });
}

/** Posts money into the customer's account and reviews its suspension; `tx` is the caller's open transaction. */
async function postMoneyIn(
  tx: EntityManager,
  request: DepositRequest & { txType: 'deposit' | 'credit'; reason?: string },
): Promise<DepositOutcome> {
  const posting = await postCustomerTransaction(tx, request);
  if (posting.status === 'insufficient-funds') throw new Error(`a ${request.txType} cannot lack funds`);
  const review = await reviewBillingBlock(tx, request.customerId);
  return {
    transaction: posting.transaction,
    replayed: posting.status === 'replayed',
    review,
    account: await readCustomerAccount(tx, request.customerId),
  };
}

/** Sets (or, with null, removes) the monthly limit; a higher limit can resume services suspended for it. */
export async function setMonthlyLimit(
  em: EntityManager,
  customerId: string,
  maxMonthlyUsdCents: number | null,
): Promise<{ review: BlockReview; account: CustomerAccount }> {
  return inTransaction(em, async (tx) => {
    await lockCustomerAccount(tx, customerId);
    await setMaxMonthlySpend(tx, customerId, maxMonthlyUsdCents);
    const review = await reviewBillingBlock(tx, customerId);
    return { review, account: await readCustomerAccount(tx, customerId) };
  });
}

export type ServiceChange = { allowed: true; service: ServiceInstanceRow } | Extract<OperationCheck, { allowed: false }>;

/**
 * Sets a service's tier and enabled flag. Enabling it, or raising its tier while enabled, first passes the
 * seed's `validateOperation` with the tier's estimated cost; disabling and downgrading always pass.
 */
export async function changeService(
  em: EntityManager,
  customerId: string,
  serviceType: string,
  change: { tier: Tier; enabled: boolean },
): Promise<ServiceChange> {
  return inTransaction(em, async (tx): Promise<ServiceChange> => {
    const account = await lockCustomerAccount(tx, customerId);
    const current = await lockServiceInstance(tx, customerId, serviceType);
    const costsMore = change.enabled && (!current || !current.enabled || isUpgrade(current.tier, change.tier));
    if (costsMore) {
      const check = validateOperation(account, tierPrice(serviceType, change.tier).estimatedUsdCents);
      if (!check.allowed) return check;
    }
    return { allowed: true, service: await upsertServiceInstance(tx, customerId, serviceType, change) };
  });
}
