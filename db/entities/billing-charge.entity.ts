import { EntitySchema } from '@mikro-orm/core';

export type BillingChargeState = 'pending' | 'posted' | 'rejected';

/**
 * One billing run's charge for one customer: the usage records it claims (`lines`, each with its cents),
 * the total, and the escrow idempotency key derived from those records. Written (pending) before the
 * escrow is asked, so a run that dies after the escrow charged resumes the same charge with the same key
 * instead of building a new one; at most one charge per customer is pending at a time.
 */
export interface BillingCharge {
  id: string;
  customerId: string;
  idempotencyKey: string;
  amountUsdCents: string;
  lines: Array<{ record_id: string; usd_cents: number }>;
  state: BillingChargeState;
  txDigest: string | null;
  error: string | null;
  createdAt: Date;
  settledAt: Date | null;
}

export const BillingChargeSchema = new EntitySchema<BillingCharge>({
  name: 'BillingCharge',
  tableName: 'billing_charges',
  checks: [{ name: 'billing_charges_amount_positive_check', expression: '"amount_usd_cents" > 0' }],
  indexes: [
    { name: 'billing_charges_customer_id_index', properties: ['customerId'] },
    {
      name: 'billing_charges_one_pending_unique',
      expression: `create unique index "billing_charges_one_pending_unique" on "billing_charges" ("customer_id") where "state" = 'pending'`,
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid' },
    idempotencyKey: { type: 'text', unique: true },
    amountUsdCents: { type: 'bigint' },
    lines: { type: 'json' },
    state: { type: 'text' },
    txDigest: { type: 'text', nullable: true },
    error: { type: 'text', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    settledAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
  },
});
