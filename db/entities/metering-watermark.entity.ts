import { EntitySchema } from '@mikro-orm/core';

/** How far metering has counted: every request log with `id <= lastId` is in `usage_records`, exactly once. */
export interface MeteringWatermark {
  name: string;
  lastId: string;
  updatedAt: Date;
}

export const MeteringWatermarkSchema = new EntitySchema<MeteringWatermark>({
  name: 'MeteringWatermark',
  tableName: 'metering_watermarks',
  properties: {
    name: { type: 'text', primary: true },
    lastId: { type: 'bigint', default: 0 },
    updatedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
