import { EntitySchema } from '@mikro-orm/core';

export interface TosAcceptance {
  id: string;
  userId: string;
  version: string;
  acceptedAt: Date;
}

export const TosAcceptanceSchema = new EntitySchema<TosAcceptance>({
  name: 'TosAcceptance',
  tableName: 'tos_acceptances',
  uniques: [{ properties: ['userId', 'version'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    userId: { type: 'uuid' },
    version: { type: 'text' },
    acceptedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
