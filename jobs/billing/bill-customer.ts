import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  createPendingCharge,
  findPendingCharge,
  lockCharge,
  markChargePosted,
  markChargeRejected,
  rejectedAttempts,
  type BillingChargeRow,
  type ChargeLine,
} from '../../db/repositories/billing-charges.js';
import { hasAdminUser } from '../../db/repositories/accounts.js';
import { addMonthlySpend, lockCustomerAccount } from '../../db/repositories/ledger.js';
import { setBillingBlock, type BillingBlock } from '../../db/repositories/service-instances.js';
import { chargeRecordsNothing, unbilledUsageRecords } from '../../db/repositories/usage-records.js';
import { billingBlockFor } from './billing-rules.js';
import { withEscrowTimeout, type EscrowAdapter } from './escrow/escrow.js';
import { priceRecords, sumCents } from './price-records.js';
import { inTransaction } from '../../db/transaction.js';

export interface BillCustomerOptions {
  escrow: EscrowAdapter;
  /** How long the escrow may take to answer before the charge is left pending for the next run, in ms. */
  escrowTimeoutMs: number;
  /** Runs right after a charge's transaction commits. Tests throw here to crash between the ledger write and the job's acknowledgement. */
  afterCommit?: (outcome: CustomerBilling) => void | Promise<void>;
}

export type CustomerBilling = { customerId: string; accessChanged: boolean } & (
  | { outcome: 'charged'; amountUsdCents: number; txDigest: string }
  | { outcome: 'suspended'; reason: BillingBlock; dueUsdCents: number }
  /** Nothing to charge: no unbilled usage, or it all rounds to 0¢. */
  | { outcome: 'nothing-due' }
  /** Another run settled the pending charge first. */
  | { outcome: 'settled-elsewhere' }
  /** A platform account (it has an admin user): its usage is recorded and priced at 0¢. */
  | { outcome: 'internal' }
);

type Claim = { kind: 'settle'; charge: BillingChargeRow; resumed: boolean } | { kind: 'done'; result: CustomerBilling };

/** The escrow idempotency key of a charge: derived from the customer and the usage records it charges. */
export function chargeKey(customerId: string, lines: readonly ChargeLine[]): string {
  const ids = lines.map((line) => line.record_id).join(',');
  return `chg_${createHash('sha256').update(`${customerId}:${ids}`).digest('hex')}`;
}

/**
 * Step 1, under the customer's account lock: resume a pending charge if a run left one; else price the
 * unbilled records, check balance and monthly limit (suspending every service of the customer if either
 * fails), and write a pending charge that claims the records. Committed before the escrow is asked, so the
 * records and the key of the charge are fixed whatever happens next.
 */
async function claim(em: EntityManager, customerId: string): Promise<Claim> {
  return inTransaction(em, async (tx): Promise<Claim> => {
    const account = await lockCustomerAccount(tx, customerId);
    const pending = await findPendingCharge(tx, customerId);
    if (pending) return { kind: 'settle', charge: pending, resumed: true };

    const records = await unbilledUsageRecords(tx, customerId, true);
    if (records.length === 0) return { kind: 'done', result: { customerId, outcome: 'nothing-due', accessChanged: false } };
    const recordIds = records.map((record) => record.id);
    if (await hasAdminUser(tx, customerId)) {
      await chargeRecordsNothing(tx, recordIds);
      return { kind: 'done', result: { customerId, outcome: 'internal', accessChanged: false } };
    }
    const lines = priceRecords(records);
    const due = sumCents(lines);
    if (due === 0) {
      await chargeRecordsNothing(tx, recordIds);
      return { kind: 'done', result: { customerId, outcome: 'nothing-due', accessChanged: false } };
    }
    const block = billingBlockFor(account, due);
    if (block) {
      const accessChanged = await setBillingBlock(tx, customerId, block);
      return { kind: 'done', result: { customerId, outcome: 'suspended', reason: block, dueUsdCents: due, accessChanged } };
    }
    // A key the escrow refused once is not reused for the same records: each new attempt gets a suffix.
    const baseKey = chargeKey(customerId, lines);
    const attempt = await rejectedAttempts(tx, baseKey);
    const charge = await createPendingCharge(tx, { customerId, idempotencyKey: attempt === 0 ? baseKey : `${baseKey}.${attempt}`, lines });
    return { kind: 'settle', charge, resumed: false };
  });
}

/**
 * Step 2, in one transaction under the charge's row lock: ask the escrow (idempotent by the charge's key),
 * then mark the records charged, add to this month's spend, close the charge and lift a billing suspension.
 * With the PostgreSQL ledger the posting, balances and records all commit together. If the escrow fails or
 * times out, everything rolls back and the charge stays pending for the next run, which asks again with the
 * same key — so a charge the escrow made but never confirmed is found, not repeated.
 */
async function settle(em: EntityManager, charge: BillingChargeRow, options: BillCustomerOptions): Promise<CustomerBilling> {
  const { customerId } = charge;
  return inTransaction(em, async (tx): Promise<CustomerBilling> => {
    const current = await lockCharge(tx, charge.id);
    if (!current || current.state !== 'pending') return { customerId, outcome: 'settled-elsewhere', accessChanged: false };
    const answer = await withEscrowTimeout(
      options.escrow.charge(tx, { customerId, amountUsdCents: current.amountUsdCents, idempotencyKey: current.idempotencyKey }),
      options.escrowTimeoutMs,
    );
    if (answer.status === 'insufficient-funds') {
      await markChargeRejected(tx, current.id, `insufficient funds: balance ${answer.balanceUsdCents}¢, charge ${current.amountUsdCents}¢`);
      const accessChanged = await setBillingBlock(tx, customerId, 'insufficient_balance');
      return { customerId, outcome: 'suspended', reason: 'insufficient_balance', dueUsdCents: current.amountUsdCents, accessChanged };
    }
    await markChargePosted(tx, current, answer.txDigest);
    await addMonthlySpend(tx, customerId, current.amountUsdCents);
    const accessChanged = await setBillingBlock(tx, customerId, null);
    return { customerId, outcome: 'charged', amountUsdCents: current.amountUsdCents, txDigest: answer.txDigest, accessChanged };
  });
}

/**
 * Bills one customer exactly once for its unbilled usage. Safe to run again, concurrently, or after a crash
 * at any point: the account lock lets one run claim the records, the charge row lock lets one run settle it,
 * and the escrow key makes a repeated charge a no-op. A charge left pending by an earlier run is settled
 * first; usage metered since then is billed right after, in a charge of its own.
 */
export async function billCustomer(em: EntityManager, customerId: string, options: BillCustomerOptions): Promise<CustomerBilling[]> {
  const outcomes: CustomerBilling[] = [];
  for (;;) {
    const claimed = await claim(em, customerId);
    if (claimed.kind === 'done') {
      if (outcomes.length === 0 || claimed.result.outcome !== 'nothing-due') {
        outcomes.push(claimed.result);
        await options.afterCommit?.(claimed.result);
      }
      return outcomes;
    }
    const result = await settle(em, claimed.charge, options);
    outcomes.push(result);
    await options.afterCommit?.(result);
    const settled = result.outcome === 'charged' || result.outcome === 'settled-elsewhere';
    if (!claimed.resumed || !settled) return outcomes;
  }
}
