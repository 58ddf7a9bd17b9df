import { EntitySchema } from '@mikro-orm/core';

/**
 * How many relationships a customer keeps, maintained by triggers on `relationships` (every insert and delete,
 * a substrate's cascade included: Migration20261207165733), so a create checks the tier's cap
 * (TIER_MAX_RELATIONSHIPS) by one primary-key read rather than by counting the customer's rows. No row means none yet.
 */
export interface CustomerRelationshipCount {
  customerId: string;
  relationships: number;
}

export const CustomerRelationshipCountSchema = new EntitySchema<CustomerRelationshipCount>({
  name: 'CustomerRelationshipCount',
  tableName: 'customer_relationship_counts',
  properties: {
    customerId: { type: 'uuid', primary: true },
    relationships: { type: 'integer', default: 0 },
  },
});
