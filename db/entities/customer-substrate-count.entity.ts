import { EntitySchema } from '@mikro-orm/core';

/**
 * How many substrates a customer keeps, maintained by the statements that insert and delete them
 * (db/repositories/substrate-store.ts), so a create checks the tier's cap (TIER_MAX_SUBSTRATES) by one
 * primary-key read rather than by counting the customer's rows. No row means none yet.
 */
export interface CustomerSubstrateCount {
  customerId: string;
  substrates: number;
}

export const CustomerSubstrateCountSchema = new EntitySchema<CustomerSubstrateCount>({
  name: 'CustomerSubstrateCount',
  tableName: 'customer_substrate_counts',
  properties: {
    customerId: { type: 'uuid', primary: true },
    substrates: { type: 'integer', default: 0 },
  },
});
