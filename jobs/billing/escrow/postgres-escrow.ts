import type { EntityManager } from '@mikro-orm/postgresql';
import { postCustomerTransaction } from '../../../db/repositories/ledger.js';
import type { EscrowAdapter, EscrowChargeRequest, EscrowChargeResult } from './escrow.js';

/**
 * The default escrow: the PostgreSQL double-entry ledger, posting inside billing's transaction (customer
 * account → platform revenue, balance checked under the account lock, idempotent by key).
 */
export const postgresEscrow: EscrowAdapter = {
  name: 'postgres-ledger',
  async charge(em: EntityManager, request: EscrowChargeRequest): Promise<EscrowChargeResult> {
    const outcome = await postCustomerTransaction(em, {
      customerId: request.customerId,
      txType: 'charge',
      amountUsdCents: request.amountUsdCents,
      idempotencyKey: request.idempotencyKey,
    });
    if (outcome.status === 'insufficient-funds') return outcome;
    return { status: 'charged', txDigest: outcome.transaction.txDigest };
  },
};
