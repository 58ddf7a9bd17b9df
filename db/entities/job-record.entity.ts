import { EntitySchema } from '@mikro-orm/core';

export const jobStates = ['queued', 'delayed', 'active', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof jobStates)[number];
export const finalStates: readonly JobState[] = ['completed', 'failed', 'cancelled'];
/** The states a job can be retried from (SPEC §9); any other answers 409. */
export const retryableStates: readonly JobState[] = ['failed', 'cancelled'];

/**
 * The durable record of an accepted job. PostgreSQL is the record; the BullMQ job (same id) is transport.
 * `jobs` is range-partitioned by `id` (a UUIDv7, so a range of ids is a range of time) by hand-written
 * migrations and db/jobs/job-partitions.ts; MikroORM sees one table.
 */
export interface JobRecord {
  id: string;
  customerId: string;
  type: string;
  state: JobState;
  payload: unknown;
  result: unknown;
  error: string | null;
  progress: unknown;
  attemptsMade: number;
  maxAttempts: number;
  priority: number;
  delayMs: number;
  webhookUrl: string | null;
  /** The BullMQ job id when it differs from `id`: only rows of scheduled runs recorded before runs became ordinary jobs. */
  queueJobId: string | null;
  /**
   * The BullMQ job that carries this one with others of its submit (queue/bundles.ts), on the same queue;
   * null for a job carried alone under its own id.
   */
  bundleId: string | null;
  /** The key the job was submitted with (informative; `job_idempotency_keys` decides which job a key names). */
  idempotencyKey: string | null;
  requestHash: string | null;
  /** The name of the schedule whose run this job is (`platform:<type>` for the platform's own); null otherwise. */
  scheduleName: string | null;
  /** The job this one retries (POST /jobs/:id/retry); a plain column, not a foreign key: a retry may outlive its original. */
  retryOf: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export const JobRecordSchema = new EntitySchema<JobRecord>({
  name: 'JobRecord',
  tableName: 'jobs',
  indexes: [
    { name: 'jobs_customer_id_id_index', properties: ['customerId', 'id'] },
    // The sweeper pages through it by (created_at, id) in one ordered index scan (db/jobs/recovery.ts).
    {
      name: 'jobs_unfinished_index',
      expression: `create index "jobs_unfinished_index" on "jobs" ("created_at", "id") where "state" in ('queued', 'delayed', 'active')`,
    },
    // Admission control counts one customer's unfinished jobs by state (queue/admission.ts), and the backlog
    // view and gauges group them by customer, without touching finished history.
    // Not a duplicate of jobs_customer_state_index below: that one also holds failed and cancelled rows, so
    // the every-customer backlog cannot read it index-only. Without this index, with 300,000 failed jobs and
    // 4,000 unfinished ones, the backlog query read 3,056 buffers through jobs_unfinished_index and the heap
    // instead of 11 here (per-customer admission counts: 9 buffers instead of 3).
    {
      name: 'jobs_customer_unfinished_index',
      expression: `create index "jobs_customer_unfinished_index" on "jobs" ("customer_id", "state") where "state" in ('queued', 'delayed', 'active')`,
    },
    // GET /stats reads the last hour's jobs (all customers' for admins) without scanning the table's history.
    { name: 'jobs_created_at_index', properties: ['createdAt'] },
    // A schedule's runs, newest first (GET /jobs?schedule=); ordinary jobs stay out of it.
    {
      name: 'jobs_schedule_index',
      expression: `create index "jobs_schedule_index" on "jobs" ("customer_id", "schedule_name", "id") where "schedule_name" is not null`,
    },
    // GET /jobs?state=… and the admin's searches: a customer's jobs in any state but `completed`, newest first,
    // and every customer's. Partial, so the common outcome adds no entry on the hot path; a rare state (failed,
    // queued) among millions of completed rows is one index range away.
    {
      name: 'jobs_customer_state_index',
      expression: `create index "jobs_customer_state_index" on "jobs" ("customer_id", "state", "id") where "state" <> 'completed'`,
    },
    // The same with a type filter (GET /jobs?type=batch&state=queued,failed): a customer's state of one type is
    // one index range even when none match, instead of every row of that state (19 ms at 1,000,000 jobs).
    {
      name: 'jobs_customer_type_state_index',
      expression: `create index "jobs_customer_type_state_index" on "jobs" ("customer_id", "type", "state", "id") where "state" <> 'completed'`,
    },
    {
      name: 'jobs_state_index',
      expression: `create index "jobs_state_index" on "jobs" ("state", "id") where "state" <> 'completed'`,
    },
    // A job's retries (the admin's retry skips failed jobs already retried); only retries have an entry.
    {
      name: 'jobs_retry_of_index',
      expression: `create index "jobs_retry_of_index" on "jobs" ("retry_of") where "retry_of" is not null`,
    },
    // GET /admin/jobs?error_contains=: trigram search over error text (pg_trgm, created by the same migration).
    {
      name: 'jobs_error_trgm_index',
      expression: `create index "jobs_error_trgm_index" on "jobs" using gin ("error" gin_trgm_ops) where "error" is not null`,
    },
  ],
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid' },
    type: { type: 'text' },
    state: { type: 'text' },
    payload: { type: 'json' },
    result: { type: 'json', nullable: true },
    error: { type: 'text', nullable: true },
    progress: { type: 'json', nullable: true },
    attemptsMade: { type: 'integer', default: 0 },
    maxAttempts: { type: 'integer', default: 3 },
    priority: { type: 'integer', default: 0 },
    delayMs: { type: 'integer', default: 0 },
    webhookUrl: { type: 'text', nullable: true },
    queueJobId: { type: 'text', nullable: true },
    bundleId: { type: 'text', nullable: true },
    idempotencyKey: { type: 'text', nullable: true },
    requestHash: { type: 'text', nullable: true },
    scheduleName: { type: 'text', nullable: true },
    retryOf: { type: 'uuid', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
    startedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    finishedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
  },
});
