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
    // References jobs(id), but not as a foreign key MikroORM knows: both tables are partitioned by job id
    // (db/jobs/job-partitions.ts), and each `batch_items` partition has its own foreign key to its `jobs` twin
    // (ON DELETE CASCADE). A foreign key to the partitioned `jobs` would make PostgreSQL add a constraint per
    // `jobs` partition on `batch_items`, which MikroORM's schema reader would count as the table's own.
    batchId: { type: 'uuid', fieldName: 'batch_id', primary: true },
    index: { type: 'integer', primary: true },
    substrateId: { type: 'text' },
    state: { type: 'text' },
    result: { type: 'json', nullable: true },
    error: { type: 'text', nullable: true },
  },
});
