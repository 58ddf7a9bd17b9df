import { EntitySchema } from '@mikro-orm/core';

/** One invocation's outcome in a batch. Written in bulk, one multi-row INSERT per evaluated chunk. */
export interface BatchItem {
  batchId: string;
  index: number;
  substrateId: string;
  state: 'completed' | 'failed';
  result: unknown;
  error: string | null;
}

export const BatchItemSchema = new EntitySchema<BatchItem>({
  name: 'BatchItem',
  tableName: 'batch_items',
  properties: {
    batchId: {
      kind: 'm:1',
      entity: 'JobRecord',
      fieldName: 'batch_id',
      primary: true,
      mapToPk: true,
      deleteRule: 'cascade',
      updateRule: 'cascade',
    },
    index: { type: 'integer', primary: true },
    substrateId: { type: 'text' },
    state: { type: 'text' },
    result: { type: 'json', nullable: true },
    error: { type: 'text', nullable: true },
  },
});
