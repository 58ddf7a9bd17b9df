import type { EntityManager } from '@mikro-orm/postgresql';
import { pendingChargeTotal, type ChargeLine } from '../../db/repositories/billing-charges.js';
import { unbilledUsageRecords, type UnbilledUsageRecord } from '../../db/repositories/usage-records.js';
import { PermanentJobError } from '../errors.js';
import { isKnownServiceType, priceUsage, tierPrice } from './pricing.js';

/** Prices each record at its service's current tier (rounded half up per record, see `priceUsage`). */
export function priceRecords(records: readonly UnbilledUsageRecord[]): ChargeLine[] {
  return records.map((record) => {
    if (!isKnownServiceType(record.serviceType))
      throw new PermanentJobError(`usage record ${record.id} has unknown service type "${record.serviceType}"`);
    return { record_id: record.id, usd_cents: priceUsage(tierPrice(record.serviceType, record.tier), record) };
  });
}

export const sumCents = (lines: readonly ChargeLine[]): number => lines.reduce((sum, line) => sum + line.usd_cents, 0);

/** What the customer owes and billing has not yet taken: unbilled records at today's prices plus a pending charge. */
export async function outstandingUsdCents(em: EntityManager, customerId: string): Promise<number> {
  const records = (await unbilledUsageRecords(em, customerId, false)).filter((record) => isKnownServiceType(record.serviceType));
  return sumCents(priceRecords(records)) + (await pendingChargeTotal(em, customerId));
}
