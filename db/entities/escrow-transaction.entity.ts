import { EntitySchema } from '@mikro-orm/core';

export type EscrowTransactionType = 'deposit' | 'charge';

/**
 * One posting on the escrow ledger (the mirror of an on-chain escrow event). Its entries sum to zero.
 * `idempotencyKey` makes a repeated request return the first posting; `txDigest` names it to the outside.
 */
export interface EscrowTransaction {
  id: string;
  customerId: string;
  txType: EscrowTransactionType;
  amountUsdCents: string;
  txDigest: string;
  idempotencyKey: string;
  createdAt: Date;
}

export const EscrowTransactionSchema = new EntitySchema<EscrowTransaction>({
  name: 'EscrowTransaction',
  tableName: 'escrow_transactions',
  checks: [{ name: 'escrow_transactions_amount_positive_check', expression: '"amount_usd_cents" > 0' }],
  indexes: [{ name: 'escrow_transactions_customer_id_id_index', properties: ['customerId', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid' },
    txType: { type: 'text' },
    amountUsdCents: { type: 'bigint' },
    txDigest: { type: 'text', unique: true },
    idempotencyKey: { type: 'text', unique: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
