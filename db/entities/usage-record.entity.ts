import { EntitySchema } from '@mikro-orm/core';

/**
 * Aggregated usage of one customer's service in one hourly window. A record is open (metering adds to it)
 * until billing claims it (`chargeId`) or prices it (`chargedUsdCents`); from then on it never changes, and
 * rows arriving late for the same window open a new record. The partial unique index allows one open record
 * per (customer, service type, window), which is what metering's upsert targets.
 */
export interface UsageRecord {
  id: string;
  customerId: string;
  serviceType: string;
  windowStart: Date;
  windowEnd: Date;
  requestCount: string;
  bytesTransferred: string;
  /** Null while unbilled; the cents this record was charged once its charge is posted. */
  chargedUsdCents: string | null;
  /** The billing charge that claimed this record (pending or posted). */
  chargeId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export const UsageRecordSchema = new EntitySchema<UsageRecord>({
  name: 'UsageRecord',
  tableName: 'usage_records',
  checks: [{ name: 'usage_records_charged_non_negative_check', expression: '"charged_usd_cents" is null or "charged_usd_cents" >= 0' }],
  indexes: [
    { name: 'usage_records_customer_window_index', properties: ['customerId', 'windowStart'] },
    {
      name: 'usage_records_open_window_unique',
      expression:
        'create unique index "usage_records_open_window_unique" on "usage_records" ("customer_id", "service_type", "window_start") where "charge_id" is null and "charged_usd_cents" is null',
    },
    { name: 'usage_records_charge_id_index', properties: ['chargeId'] },
  ],
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    customerId: { type: 'uuid' },
    serviceType: { type: 'text' },
    windowStart: { type: 'datetime', columnType: 'timestamptz' },
    windowEnd: { type: 'datetime', columnType: 'timestamptz' },
    requestCount: { type: 'bigint', default: 0 },
    bytesTransferred: { type: 'bigint', default: 0 },
    chargedUsdCents: { type: 'bigint', nullable: true },
    chargeId: { type: 'uuid', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    updatedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
