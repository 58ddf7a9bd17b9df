import { EntitySchema } from '@mikro-orm/core';

export type Tier = 'starter' | 'pro' | 'enterprise';

/** One per customer and service type: its tier and whether calls to it are allowed. */
export interface ServiceInstance {
  customerId: string;
  serviceType: string;
  tier: Tier;
  enabled: boolean;
  suspendedReason: string | null;
  updatedAt: Date;
}

export const ServiceInstanceSchema = new EntitySchema<ServiceInstance>({
  name: 'ServiceInstance',
  tableName: 'service_instances',
  properties: {
    customerId: { type: 'uuid', primary: true },
    serviceType: { type: 'text', primary: true },
    tier: { type: 'text', default: 'starter' },
    enabled: { type: 'boolean', default: true },
    suspendedReason: { type: 'text', nullable: true },
    updatedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
