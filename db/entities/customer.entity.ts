import { EntitySchema } from '@mikro-orm/core';

export interface Customer {
  id: string;
  name: string;
  balanceUsdCents: string;
  maxMonthlyUsdCents: string | null;
  /** Set while an admin has paused (quarantined) the customer's work: its jobs are kept but not started. */
  pausedAt: Date | null;
  /**
   * Set when an admin deleted (offboarded) the customer: its name is a tombstone, its users anonymised, its
   * keys revoked and its data gone; the row stays so the billing evidence that names it still has a customer.
   */
  deletedAt: Date | null;
  createdAt: Date;
}

export const CustomerSchema = new EntitySchema<Customer>({
  name: 'Customer',
  tableName: 'customers',
  properties: {
    id: { type: 'uuid', primary: true },
    name: { type: 'text' },
    balanceUsdCents: { type: 'bigint', default: 0, fieldName: 'balance_usd_cents' },
    maxMonthlyUsdCents: { type: 'bigint', nullable: true },
    pausedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    deletedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
