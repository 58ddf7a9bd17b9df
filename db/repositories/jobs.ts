import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord, JobState } from '../entities/job-record.entity.js';
import { executePrepared } from '../prepared.js';

export interface NewJobRow {
  id: string;
  customerId: string;
  type: string;
  state: Extract<JobState, 'queued' | 'delayed'>;
  payload: unknown;
  maxAttempts: number;
  priority: number;
  delayMs: number;
  webhookUrl: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  /** The schedule whose run this is; null for a job submitted directly. */
  scheduleName: string | null;
}

/** The columns of a JobRecord, as a select list. */
export const jobColumns = `id, customer_id as "customerId", type, state, payload, result, error, progress,
  attempts_made as "attemptsMade", max_attempts as "maxAttempts", priority, delay_ms as "delayMs",
  webhook_url as "webhookUrl", queue_job_id as "queueJobId", idempotency_key as "idempotencyKey", request_hash as "requestHash",
  schedule_name as "scheduleName", created_at as "createdAt", started_at as "startedAt", finished_at as "finishedAt"`;

/**
 * Inserts the row; with an idempotency key already used, inserts nothing and returns null. With
 * `requireSubstrateId`, inserts only if the customer owns that substrate — the existence check and the
 * insert in one statement.
 */
export async function insertJob(em: EntityManager, row: NewJobRow, requireSubstrateId?: string): Promise<JobRecord | null> {
  const guard = requireSubstrateId ? 'where exists (select 1 from substrates where id = ? and customer_id = ?)' : '';
  const rows = await em.getConnection().execute<JobRecord[]>(
    `insert into jobs (id, customer_id, type, state, payload, max_attempts, priority, delay_ms, webhook_url, idempotency_key, request_hash, schedule_name)
     select ?, ?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?, ? ${guard}
     on conflict (customer_id, idempotency_key) do nothing
     returning ${jobColumns}`,
    [
      row.id, row.customerId, row.type, row.state, JSON.stringify(row.payload), row.maxAttempts, row.priority, row.delayMs, row.webhookUrl, row.idempotencyKey, row.requestHash, row.scheduleName,
      ...(requireSubstrateId ? [requireSubstrateId, row.customerId] : []),
    ],
  );
  return rows[0] ?? null;
}

/**
 * A CTE that makes its statement's commit skip the WAL flush (`synchronous_commit` is read at commit
 * time), so one autocommit statement does what SET LOCAL would need a transaction for. Statements join
 * it (`from …, durability`) so that it runs.
 */
export const asyncCommit = `durability as (select set_config('synchronous_commit', 'off', true))`;

const insertJobsSelect = (durability: string) => `
  insert into jobs (id, customer_id, type, state, payload, max_attempts, priority, delay_ms, webhook_url, idempotency_key, request_hash, schedule_name)
  select v.id, v.customer_id, v.type, v.state, v.payload, v.max_attempts, v.priority, v.delay_ms, v.webhook_url, v.idempotency_key, v.request_hash, v.schedule_name
    from jsonb_to_recordset($1::jsonb) as v(id uuid, customer_id uuid, type text, state text, payload jsonb, max_attempts int, priority int, delay_ms int,
                                            webhook_url text, idempotency_key text, request_hash text, schedule_name text, substrate_id text)
    -- One primary-key probe per row: a plain EXISTS here became a hash of the whole substrates table.
    left join lateral (select true as found from substrates s where s.id = v.substrate_id and s.customer_id = v.customer_id limit 1) owned on true${durability}
   where v.substrate_id is null or owned.found
  on conflict (customer_id, idempotency_key) do nothing
  returning ${jobColumns}`;
const insertJobsDurably = insertJobsSelect('');
const insertJobsQuickly = `with ${asyncCommit} ${insertJobsSelect(', durability')}`;

export interface JobInsert {
  row: NewJobRow;
  requireSubstrateId?: string;
  /**
   * Commit without waiting for the disk (default false: wait). Only for a job whose submitter will
   * answer 200 with its outcome, or else call `makeJobDurable` before answering 202.
   */
  quick?: boolean;
}

/**
 * Many `insertJob`s in one prepared statement (for a GroupCommit): each row with its own optional
 * substrate guard; returns, per row, the inserted record or null (key already used, or substrate
 * missing). The commit waits for the disk unless every row is `quick`.
 */
export async function insertJobs(em: EntityManager, rows: JobInsert[]): Promise<Array<JobRecord | null>> {
  if (rows.length === 0) return [];
  const quick = rows.every((insert) => insert.quick === true);
  const inserted = await executePrepared<JobRecord>(em, quick ? 'jobs-insert-quick' : 'jobs-insert', quick ? insertJobsQuickly : insertJobsDurably, [
    JSON.stringify(
      rows.map(({ row, requireSubstrateId }) => ({
        id: row.id, customer_id: row.customerId, type: row.type, state: row.state, payload: row.payload ?? null, max_attempts: row.maxAttempts, priority: row.priority,
        delay_ms: row.delayMs, webhook_url: row.webhookUrl, idempotency_key: row.idempotencyKey, request_hash: row.requestHash, schedule_name: row.scheduleName ?? undefined,
        substrate_id: requireSubstrateId ?? null,
      })),
    ),
  ]);
  const byId = new Map(inserted.map((job) => [job.id, job]));
  return rows.map(({ row }) => byId.get(row.id) ?? null);
}

/**
 * Whether the job's row is stored, made durable: this statement's commit writes a record (the
 * transaction id forces one) and waits for the disk, which flushes every earlier quick commit too.
 * False means the row was lost (PostgreSQL restarted before its quick commit reached the disk).
 */
export async function isJobDurable(em: EntityManager, id: string): Promise<boolean> {
  const [row] = await em.getConnection().execute<Array<{ present: boolean }>>(`select txid_current() as xid, exists (select 1 from jobs where id = ?) as present`, [id]);
  return row?.present === true;
}

export async function findJobByIdempotencyKey(em: EntityManager, customerId: string, key: string): Promise<JobRecord | null> {
  const rows = await em.getConnection().execute<JobRecord[]>(`select ${jobColumns} from jobs where customer_id = ? and idempotency_key = ?`, [customerId, key]);
  return rows[0] ?? null;
}

/** Frees a key whose 24 h window has passed, so it can name a new job. */
export async function releaseIdempotencyKey(em: EntityManager, jobId: string): Promise<void> {
  await em.getConnection().execute(`update jobs set idempotency_key = null where id = ?`, [jobId]);
}

export async function findJob(em: EntityManager, customerId: string, id: string): Promise<JobRecord | null> {
  const rows = await em.getConnection().execute<JobRecord[]>(`select ${jobColumns} from jobs where id = ? and customer_id = ?`, [id, customerId]);
  return rows[0] ?? null;
}

export interface JobListFilter {
  customerId: string;
  type?: string;
  state?: JobState;
  /** Only ids below this one (UUIDv7 ids sort by creation time). */
  beforeId?: string;
  limit: number;
}

/** Newest first, keyset-paginated on the UUIDv7 id. */
export async function listJobs(em: EntityManager, filter: JobListFilter): Promise<JobRecord[]> {
  const where = ['customer_id = ?'];
  const params: unknown[] = [filter.customerId];
  const add = (clause: string, value: unknown) => {
    where.push(clause);
    params.push(value);
  };
  if (filter.type) add('type = ?', filter.type);
  if (filter.state) add('state = ?', filter.state);
  if (filter.beforeId) add('id < ?', filter.beforeId);
  params.push(filter.limit);
  return em.getConnection().execute<JobRecord[]>(`select ${jobColumns} from jobs where ${where.join(' and ')} order by id desc limit ?`, params);
}

/** Marks a queued, delayed or active job cancelled; returns the row when it changed. */
export async function cancelJobRow(em: EntityManager, customerId: string, id: string): Promise<JobRecord | null> {
  const rows = await em.getConnection().execute<JobRecord[]>(
    `update jobs set state = 'cancelled', finished_at = now(), error = coalesce(error, 'cancelled by the user')
      where id = ? and customer_id = ? and state in ('queued', 'delayed', 'active')
      returning ${jobColumns}`,
    [id, customerId],
  );
  return rows[0] ?? null;
}

export interface FinishedJobRow {
  id: string;
  customerId: string;
  type: string;
  payload: unknown;
  result: unknown;
}

/**
 * Jobs answered without running (an invocation served from the cache), recorded completed in one
 * prepared INSERT. The commit does not wait for the disk: the caller already has its answer (200 with
 * the result), so a row lost to a crash in the next moments breaks no promise of acceptance.
 */
export async function insertFinishedJobs(em: EntityManager, rows: FinishedJobRow[]): Promise<void> {
  if (rows.length === 0) return;
  await executePrepared(
    em,
    'jobs-insert-finished',
    `with ${asyncCommit}
     insert into jobs (id, customer_id, type, state, payload, result, attempts_made, max_attempts, started_at, finished_at)
     select v.id, v.customer_id, v.type, 'completed', v.payload, v.result, 0, 1, now(), now()
       from jsonb_to_recordset($1::jsonb) as v(id uuid, customer_id uuid, type text, payload jsonb, result jsonb), durability`,
    [JSON.stringify(rows.map((row) => ({ id: row.id, customer_id: row.customerId, type: row.type, payload: row.payload, result: row.result })))],
  );
}
