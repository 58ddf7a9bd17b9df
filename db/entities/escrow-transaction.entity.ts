import { EntitySchema } from '@mikro-orm/core';

/** `deposit`: money the escrow confirmed; `charge`: billing; `credit`: given by an admin, with a reason. */
export type EscrowTransactionType = 'deposit' | 'charge' | 'credit';

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
  /** The user who asked for the posting (the admin of a credit, the customer's user of a deposit); null for billing. */
  createdBy: string | null;
  /** Why: required on a credit, so every credit says who gave it and why. */
  reason: string | null;
  createdAt: Date;
}

export const EscrowTransactionSchema = new EntitySchema<EscrowTransaction>({
  name: 'EscrowTransaction',
  tableName: 'escrow_transactions',
  checks: [
    { name: 'escrow_transactions_amount_positive_check', expression: '"amount_usd_cents" > 0' },
    {
      name: 'escrow_transactions_credit_names_who_and_why_check',
      expression: `"tx_type" <> 'credit' or ("created_by" is not null and "reason" is not null)`,
    },
  ],
  indexes: [{ name: 'escrow_transactions_customer_id_id_index', properties: ['customerId', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid' },
    txType: { type: 'text' },
    amountUsdCents: { type: 'bigint' },
    txDigest: { type: 'text', unique: true },
    idempotencyKey: { type: 'text', unique: true },
    createdBy: { type: 'uuid', nullable: true },
    reason: { type: 'text', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
