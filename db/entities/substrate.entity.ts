import { EntitySchema } from '@mikro-orm/core';

export type ExpressionType = 'expression' | 'constant';

/** A stored CEL expression or constant. The expression text never leaves the server. */
export interface Substrate {
  id: string;
  customerId: string;
  identity: string;
  expressionType: ExpressionType;
  expression: string | null;
  value: number | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

export const SubstrateSchema = new EntitySchema<Substrate>({
  name: 'Substrate',
  tableName: 'substrates',
  indexes: [
    { properties: ['customerId', 'createdAt'] },
    {
      name: 'substrates_metadata_gin',
      expression: 'create index "substrates_metadata_gin" on "substrates" using gin ("metadata" jsonb_path_ops)',
    },
  ],
  properties: {
    id: { type: 'text', primary: true },
    customerId: { type: 'uuid' },
    identity: { type: 'text' },
    expressionType: { type: 'text' },
    expression: { type: 'text', nullable: true, lazy: true },
    value: { type: 'double', nullable: true },
    metadata: { type: 'json', default: '{}' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    updatedAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
