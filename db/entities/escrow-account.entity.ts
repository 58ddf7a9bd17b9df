import { EntitySchema } from '@mikro-orm/core';

export type EscrowAccountKind = 'customer' | 'revenue' | 'funding' | 'credits';

/**
 * A ledger account. Each customer has one (`id` = the customer id) holding its prepaid balance and this
 * month's spend; the platform has `platform:revenue` (charges land here), `platform:funding` (the outside
 * world deposits come from, so it runs negative) and `platform:credits` (what admins give away, negative too).
 * A balance is always the sum of the account's entries.
 */
export interface EscrowAccount {
  id: string;
  customerId: string | null;
  kind: EscrowAccountKind;
  balanceUsdCents: string;
  currentMonthChargedUsdCents: string;
  lastMonthChargedUsdCents: string;
  /** First instant (UTC) of the month `currentMonthChargedUsdCents` counts. */
  currentMonthStart: Date;
  createdAt: Date;
  updatedAt: Date;
}

export const EscrowAccountSchema = new EntitySchema<EscrowAccount>({
  name: 'EscrowAccount',
  tableName: 'escrow_accounts',
  checks: [{ name: 'escrow_accounts_customer_balance_check', expression: `"kind" <> 'customer' or "balance_usd_cents" >= 0` }],
  properties: {
    id: { type: 'text', primary: true },
    customerId: { type: 'uuid', nullable: true, unique: true },
    kind: { type: 'text' },
    balanceUsdCents: { type: 'bigint', default: 0 },
    currentMonthChargedUsdCents: { type: 'bigint', default: 0 },
    lastMonthChargedUsdCents: { type: 'bigint', default: 0 },
    currentMonthStart: { type: 'datetime', columnType: 'timestamptz' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    updatedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
