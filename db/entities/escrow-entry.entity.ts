import { EntitySchema } from '@mikro-orm/core';

/** One leg of an escrow transaction: a signed amount on one account. A transaction's legs sum to zero. */
export interface EscrowEntry {
  id: string;
  transactionId: string;
  accountId: string;
  amountUsdCents: string;
  createdAt: Date;
}

export const EscrowEntrySchema = new EntitySchema<EscrowEntry>({
  name: 'EscrowEntry',
  tableName: 'escrow_entries',
  indexes: [
    { name: 'escrow_entries_transaction_id_index', properties: ['transactionId'] },
    { name: 'escrow_entries_account_id_index', properties: ['accountId'] },
  ],
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    transactionId: { type: 'uuid' },
    accountId: { type: 'text' },
    amountUsdCents: { type: 'bigint' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
