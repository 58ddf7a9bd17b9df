import { EntitySchema } from '@mikro-orm/core';

/**
 * Which job a customer's idempotency key names. Its own table because `jobs` is partitioned by `id`: a
 * unique index there must contain the partition key, so `(customer_id, idempotency_key)` cannot be unique
 * on `jobs` itself. Written in the same statement as the job's row; a key lives as long as its job (retention
 * removes keys whose job is gone) and names it for 24 hours (`idempotencyWindowMs`), after which a new
 * submit with the key takes it over. `job_id` is no foreign key: retention drops whole partitions of `jobs`.
 */
export interface JobIdempotencyKey {
  customerId: string;
  idempotencyKey: string;
  jobId: string;
  createdAt: Date;
}

export const JobIdempotencyKeySchema = new EntitySchema<JobIdempotencyKey>({
  name: 'JobIdempotencyKey',
  tableName: 'job_idempotency_keys',
  indexes: [{ name: 'job_idempotency_keys_job_id_index', properties: ['jobId'] }],
  properties: {
    customerId: { type: 'uuid', primary: true },
    idempotencyKey: { type: 'text', primary: true },
    jobId: { type: 'uuid' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
