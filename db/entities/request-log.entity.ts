import { EntitySchema } from '@mikro-orm/core';

/**
 * One authenticated API call (recorded by the API) or one edge-proxy request (POST /admin/usage/ingest).
 * Append-only. `id` is the metering watermark: inserts go through `insertRequestLogs`, which serialises
 * them so ids become visible in id order and metering never skips a row committed late.
 */
export interface RequestLog {
  id: string;
  timestamp: Date;
  customerId: string;
  serviceType: string;
  method: string;
  statusCode: number;
  bytesOut: string;
  receivedAt: Date;
}

export const RequestLogSchema = new EntitySchema<RequestLog>({
  name: 'RequestLog',
  tableName: 'request_logs',
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    timestamp: { type: 'datetime', columnType: 'timestamptz' },
    customerId: { type: 'uuid' },
    serviceType: { type: 'text' },
    method: { type: 'text' },
    statusCode: { type: 'smallint' },
    bytesOut: { type: 'bigint' },
    receivedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
