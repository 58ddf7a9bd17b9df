import type { EntityManager } from '@mikro-orm/postgresql';
import type { Tier } from '../entities/service-instance.entity.js';

/**
 * SQL condition for a record billing still has to charge: not priced, and not claimed by a live (pending or
 * posted) charge. Records of a rejected charge stay attached to it (so they never collide with the open
 * record metering has since started for their window) and are claimed again by the next charge.
 */
export const unbilledCondition = (alias: string): string =>
  `${alias}.charged_usd_cents is null and (${alias}.charge_id is null or ${alias}.charge_id in (select id from billing_charges where state = 'rejected'))`;

/** An unbilled usage record with the tier its service has now (billing prices at the current tier). */
export interface UnbilledUsageRecord {
  id: string;
  serviceType: string;
  tier: Tier;
  requestCount: string;
  bytesTransferred: string;
}

/**
 * The customer's unbilled usage records, oldest first. With `lock`,
 * they stay locked until the transaction ends, so metering cannot add to a record billing is claiming
 * (its upsert waits, then opens a new record).
 */
export async function unbilledUsageRecords(em: EntityManager, customerId: string, lock: boolean): Promise<UnbilledUsageRecord[]> {
  return em.execute<UnbilledUsageRecord[]>(
    `select r.id::text as id, r.service_type as "serviceType", coalesce(s.tier, 'starter') as tier,
            r.request_count::text as "requestCount", r.bytes_transferred::text as "bytesTransferred"
       from usage_records r
       left join service_instances s on s.customer_id = r.customer_id and s.service_type = r.service_type
      where r.customer_id = ? and ${unbilledCondition('r')}
      order by r.id${lock ? ' for update of r' : ''}`,
    [customerId],
  );
}

/** Customers with unbilled usage records or a pending charge: the ones a billing run has work for. */
export async function customersToBill(em: EntityManager): Promise<string[]> {
  const rows = await em.execute<Array<{ customer_id: string }>>(
    `select customer_id from usage_records u where ${unbilledCondition('u')}
     union
     select customer_id from billing_charges where state = 'pending'
     order by customer_id`,
  );
  return rows.map((row) => row.customer_id);
}

/** Prices records at zero without a charge (internal accounts, and records whose prices round to 0¢ when nothing else is due). */
export async function chargeRecordsNothing(em: EntityManager, recordIds: readonly string[]): Promise<void> {
  if (recordIds.length === 0) return;
  await em.execute(
    `update usage_records set charged_usd_cents = 0, updated_at = now()
      where id in (select (value #>> '{}')::bigint from jsonb_array_elements(?::jsonb)) and ${unbilledCondition('usage_records')}`,
    [JSON.stringify(recordIds)],
  );
}

export interface UsageRecordView {
  id: string;
  serviceType: string;
  windowStart: string;
  windowEnd: string;
  requestCount: number;
  bytesTransferred: number;
  chargedUsdCents: number | null;
  createdAt: string;
}

export interface UsageListFilter {
  customerId: string;
  from?: Date;
  to?: Date;
  beforeId?: string;
  limit: number;
}

/** The customer's usage records with `from <= window_start < to`, newest first, keyset-paginated on id. */
export async function listUsageRecords(em: EntityManager, filter: UsageListFilter): Promise<UsageRecordView[]> {
  const where = ['customer_id = ?'];
  const params: unknown[] = [filter.customerId];
  const add = (condition: string, value: unknown) => {
    where.push(condition);
    params.push(value);
  };
  if (filter.from) add('window_start >= ?::timestamptz', filter.from.toISOString());
  if (filter.to) add('window_start < ?::timestamptz', filter.to.toISOString());
  if (filter.beforeId) add('id < ?::bigint', filter.beforeId);
  params.push(filter.limit);
  return em.execute<UsageRecordView[]>(
    `select id::text as id, service_type as "serviceType", window_start as "windowStart", window_end as "windowEnd",
            request_count::float8 as "requestCount", bytes_transferred::float8 as "bytesTransferred",
            charged_usd_cents::float8 as "chargedUsdCents", created_at as "createdAt"
       from usage_records where ${where.join(' and ')} order by id desc limit ?`,
    params,
  );
}
