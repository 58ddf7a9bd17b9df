import type { EntityManager } from '@mikro-orm/postgresql';
import type { ServiceInstance, Tier } from '../entities/service-instance.entity.js';

/** Why billing blocked a customer's services; anything else in `suspended_reason` is not billing's to lift. */
export type BillingBlock = 'insufficient_balance' | 'monthly_limit_exceeded';
export const billingBlocks: readonly BillingBlock[] = ['insufficient_balance', 'monthly_limit_exceeded'];

export type ServiceInstanceRow = Omit<ServiceInstance, 'customerId'>;

const columns = `service_type as "serviceType", tier, enabled, suspended_reason as "suspendedReason", updated_at as "updatedAt"`;

export async function listServiceInstances(em: EntityManager, customerId: string): Promise<ServiceInstanceRow[]> {
  return em.execute<ServiceInstanceRow[]>(`select ${columns} from service_instances where customer_id = ? order by service_type`, [
    customerId,
  ]);
}

/** The customer's instance of one service, locked for the rest of the transaction; null when it has none. */
export async function lockServiceInstance(em: EntityManager, customerId: string, serviceType: string): Promise<ServiceInstanceRow | null> {
  const [row] = await em.execute<ServiceInstanceRow[]>(
    `select ${columns} from service_instances where customer_id = ? and service_type = ? for update`,
    [customerId, serviceType],
  );
  return row ?? null;
}

/** Creates or replaces the instance's tier and enabled flag; a suspension stays as it is. */
export async function upsertServiceInstance(
  em: EntityManager,
  customerId: string,
  serviceType: string,
  change: { tier: Tier; enabled: boolean },
): Promise<ServiceInstanceRow> {
  const [row] = await em.execute<ServiceInstanceRow[]>(
    `insert into service_instances (customer_id, service_type, tier, enabled, suspended_reason)
     values (?, ?, ?, ?, (select suspended_reason from service_instances where customer_id = ? and suspended_reason is not null limit 1))
     on conflict (customer_id, service_type) do update set tier = excluded.tier, enabled = excluded.enabled, updated_at = now()
     returning ${columns}`,
    [customerId, serviceType, change.tier, change.enabled, customerId],
  );
  return row!;
}

/** The billing block on the customer's services, if any (a block covers all of them). */
export async function currentBillingBlock(em: EntityManager, customerId: string): Promise<BillingBlock | null> {
  const [row] = await em.execute<Array<{ reason: BillingBlock }>>(
    `select suspended_reason as reason from service_instances where customer_id = ? and suspended_reason in ('insufficient_balance', 'monthly_limit_exceeded') limit 1`,
    [customerId],
  );
  return row?.reason ?? null;
}

/**
 * Sets (or, with null, lifts) the billing block on every service of the customer — balance and monthly limit
 * belong to the customer, not to one service. Returns true when anything changed.
 */
export async function setBillingBlock(em: EntityManager, customerId: string, block: BillingBlock | null): Promise<boolean> {
  const rows = await em.execute<Array<{ service_type: string }>>(
    `update service_instances set suspended_reason = ?, updated_at = now()
      where customer_id = ? and (suspended_reason is null or suspended_reason in ('insufficient_balance', 'monthly_limit_exceeded'))
        and suspended_reason is distinct from ?
      returning service_type`,
    [block, customerId, block],
  );
  return rows.length > 0;
}

/** Customers whose services carry this billing block. */
export async function customersBlockedFor(em: EntityManager, block: BillingBlock): Promise<string[]> {
  const rows = await em.execute<Array<{ customer_id: string }>>(
    `select distinct customer_id from service_instances where suspended_reason = ? order by customer_id`,
    [block],
  );
  return rows.map((row) => row.customer_id);
}

/** The tier of each of these customers' `compute` service (what weighs their jobs in fair sharing); a customer without one is left out. */
export async function computeTiersOf(em: EntityManager, customerIds: readonly string[]): Promise<Map<string, string>> {
  if (customerIds.length === 0) return new Map();
  const rows = await em.execute<Array<{ customerId: string; tier: string }>>(
    `select customer_id as "customerId", tier from service_instances where service_type = 'compute' and customer_id = any(?::uuid[])`,
    [`{${[...new Set(customerIds)].join(',')}}`],
  );
  return new Map(rows.map((row) => [row.customerId, row.tier]));
}
