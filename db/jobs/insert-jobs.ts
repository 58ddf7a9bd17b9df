import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord, JobState } from '../entities/job-record.entity.js';
import { executePrepared } from '../prepared.js';
import { queryWithParameters } from '../query-with-parameters.js';
import { inTransaction } from '../transaction.js';
import { findJobsByIdempotencyKeys } from './find-jobs.js';
import { jsonArrayChunks, statementJsonMaxChars } from '../../lib/json-chunks.js';
import { JsonText, stringifyWithJsonText } from '../../lib/json-text.js';
import { asyncCommit, jobColumnList, jobRecordsetType, shownJobColumns, type JobRecordsetRow, type ShownJob } from './job-columns.js';

/** What a submitter sets on a new job's row; the database fills the rest (created_at, attempts so far…). */
const newJobProperties = [
  'id',
  'customerId',
  'type',
  'state',
  'payload',
  'maxAttempts',
  'priority',
  'delayMs',
  'webhookUrl',
  'idempotencyKey',
  'requestHash',
  'scheduleName',
  'retryOf',
  'bundleId',
] as const satisfies ReadonlyArray<keyof JobRecord>;

const newJobColumns = jobColumnList(newJobProperties);

export type NewJobRow = Omit<Pick<JobRecord, (typeof newJobProperties)[number]>, 'state' | 'bundleId'> & {
  state: Extract<JobState, 'queued' | 'delayed'>;
  /** Set when the job will be carried in a bundle (queue/bundles.ts). Default null. */
  bundleId?: string | null;
};

/**
 * Inserts the row; with an idempotency key already used, inserts nothing and returns null. With
 * `requireSubstrateId`, inserts only if the customer owns that substrate — the existence check and the
 * insert in one statement (`insertJobs`' statement with one row, on the entity manager's transaction if any).
 */
export async function insertJob(em: EntityManager, row: NewJobRow, requireSubstrateId?: string): Promise<JobRecord | null> {
  const [job] = await queryWithParameters<ShownJob>(em, insertOneJob, [
    `[${recordsetJson({ ...recordsetRow(row), substrate_id: requireSubstrateId ?? null })}]`,
  ]);
  return job ? { ...job, payload: row.payload ?? null } : null;
}

/**
 * The JSON of one new row, as the inserts' parameter holds it: a payload that came as JSON text (a batch's, as the batch checker's thread answered
 * it: lib/json-text.ts) is written into it as is. The stored rows come back without their payloads (`shownJobColumns`),
 * which their callers have: 15 MB would otherwise come back from PostgreSQL only to be parsed.
 */
function recordsetJson(row: object): string {
  return (row as { payload?: unknown }).payload instanceof JsonText ? stringifyWithJsonText(row) : JSON.stringify(row);
}

/**
 * The order in which every statement takes (inserts) or frees (deletes) rows of `job_idempotency_keys`:
 * by customer, then key (byte order, whatever the database's collation). A row whose key another
 * transaction holds uncommitted waits for that transaction; taken in request order, two overlapping bulk
 * submits with keys in different orders waited on each other in a cycle (40P01 "deadlock detected", a 500).
 * In one fixed order, the transaction holding the lowest contested key never waits on the other.
 */
const keyOrder = (alias: string) => `${alias}.customer_id, ${alias}.idempotency_key collate "C"`;

/**
 * The rows of `v` (a CTE of new rows, with their position in the statement as `ordinality`) with an
 * idempotency key take their key in `job_idempotency_keys` in the same statement; a row whose key is taken
 * (by an earlier job, or by an earlier row of the same statement) is not inserted. `jobs` is partitioned by
 * id, so the key's uniqueness cannot live on it. PostgreSQL inserts the rows of an INSERT … SELECT … ORDER BY
 * one by one in the select's order, so the keys are taken in `keyOrder` (and, of one key, by the row first in
 * the statement).
 */
const takeKeys = `keys as (
    insert into job_idempotency_keys (customer_id, idempotency_key, job_id)
    select v.customer_id, v.idempotency_key, v.id from v where v.idempotency_key is not null
     order by ${keyOrder('v')}, v.ordinality
    on conflict do nothing
    returning job_id)`;
const keyTaken = `(v.idempotency_key is null or v.id in (select job_id from keys))`;

/** The new rows of a JSON array parameter, as `v`: the columns of `recordsetType`, and each row's position (`ordinality`, from 1). */
const newRows = (parameter: string, recordsetType: string) =>
  `rows from (jsonb_to_recordset(${parameter}::jsonb) as (${recordsetType})) with ordinality as v`;

const insertJobsSelect = (durability: string, parameter = '$1') => `
  with v as materialized (
    select v.* from ${newRows(parameter, `${jobRecordsetType(newJobProperties)}, substrate_id text`)}
      -- One primary-key probe per row: a plain EXISTS here became a hash of the whole substrates table.
      left join lateral (select true as found from substrates s where s.id = v.substrate_id and s.customer_id = v.customer_id limit 1) owned on true
     where v.substrate_id is null or owned.found),
  ${takeKeys}${durability ? `, ${asyncCommit}` : ''}
  insert into jobs (${newJobColumns})
  select ${jobColumnList(newJobProperties, 'v')} from v${durability}
   where ${keyTaken}
  returning ${shownJobColumns()}`;
const insertJobsDurably = insertJobsSelect('');
const insertJobsQuickly = insertJobsSelect(', durability');
const insertOneJob = insertJobsSelect('', '?');

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
 * A new job's row as the inserts' `jsonb_to_recordset` reads it (snake_case columns). A null column is left
 * out (`undefined` is not written to JSON; a missing key reads as NULL): less JSON to write and to parse.
 */
function recordsetRow(row: JobInsert['row']): JobRecordsetRow<(typeof newJobProperties)[number]> {
  return {
    id: row.id,
    customer_id: row.customerId,
    type: row.type,
    state: row.state,
    payload: row.payload ?? null,
    max_attempts: row.maxAttempts,
    priority: row.priority,
    delay_ms: row.delayMs,
    webhook_url: row.webhookUrl ?? undefined,
    idempotency_key: row.idempotencyKey ?? undefined,
    request_hash: row.requestHash ?? undefined,
    schedule_name: row.scheduleName ?? undefined,
    retry_of: row.retryOf ?? undefined,
    bundle_id: row.bundleId ?? undefined,
  };
}

/** PostgreSQL's SQLSTATE for a transaction ended to break a deadlock. */
const deadlockDetected = '40P01';

/** How many times a transaction ended to break a deadlock is run in all, and the pause before each rerun. */
const deadlockTries = 3;
const deadlockPauseMs = { least: 5, most: 40 };

/**
 * Runs `run` (a whole transaction: one autocommit statement, or an `inTransaction`) again when PostgreSQL ended it
 * to break a deadlock: it was rolled back whole, so running it again does nothing twice. Keys taken in `keyOrder`
 * leave one cycle: a statement waiting on a key a bulk submit freed (deleted, uncommitted) while holding a key the
 * bulk then wants. A short random pause first lets the other side of the cycle, woken by the rollback, take its
 * locks and finish, rather than meet the rerun in the same cycle again. Not when `em` is in a transaction: that
 * one's earlier statements may hold locks of the cycle, and are the caller's to repeat.
 */
async function againOnDeadlock<T>(em: EntityManager, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const deadlocked = (error as { code?: unknown } | null)?.code === deadlockDetected;
      if (!deadlocked || attempt >= deadlockTries || em.getTransactionContext()) throw error;
      await sleep(deadlockPauseMs.least + Math.random() * (deadlockPauseMs.most - deadlockPauseMs.least));
    }
  }
}

/**
 * Many `insertJob`s in one prepared statement (for a GroupCommit), or in several when their JSON is over
 * `maxChars` (`statementJsonMaxChars`: twenty concurrent submits of 15 MB batches were one statement past
 * PostgreSQL's 256 MiB jsonb limit, and each of them failed with a 500): each row with its own optional substrate guard; returns, per row, the
 * inserted record or null (key already used, or substrate missing). The commit waits for the disk unless every
 * row is `quick`. When a statement after the first fails, the rows of those before it are stored and the call
 * still throws: as when a commit's answer is lost, a job may exist whose submit failed (the sweeper enqueues it).
 */
export async function insertJobs(em: EntityManager, rows: JobInsert[], maxChars = statementJsonMaxChars): Promise<Array<JobRecord | null>> {
  if (rows.length === 0) return [];
  const quick = rows.every((insert) => insert.quick === true);
  const recordset = rows.map(({ row, requireSubstrateId }) => ({ ...recordsetRow(row), substrate_id: requireSubstrateId ?? null }));
  const inserted: ShownJob[] = [];
  for (const { json } of jsonArrayChunks(recordset, recordsetJson, maxChars)) {
    // Its own connection, never in a transaction: an autocommit statement, safe to run again.
    const stored = await againOnDeadlock(em, () =>
      executePrepared<ShownJob>(em, quick ? 'jobs-insert-quick' : 'jobs-insert', quick ? insertJobsQuickly : insertJobsDurably, [json]),
    );
    inserted.push(...stored);
  }
  const byId = new Map(inserted.map((job) => [job.id, job]));
  return rows.map(({ row }) => {
    const job = byId.get(row.id);
    return job ? { ...job, payload: row.payload ?? null } : null;
  });
}

const bulkProperties = ['id', 'payload', 'bundleId'] as const;

/**
 * Many jobs of one type and customer, queued with the type's attempts, in one multi-row INSERT (the bulk
 * submit path: no idempotency keys, no substrate guard). `jobs` pairs each new id with its payload.
 */
export async function insertJobsBulk(
  em: EntityManager,
  customerId: string,
  type: string,
  maxAttempts: number,
  /** `bundle_id` when the job travels in a bundle (queue/bundles.ts). */
  jobs: Array<JobRecordsetRow<'id' | 'payload'> & Partial<JobRecordsetRow<'bundleId'>>>,
): Promise<void> {
  await queryWithParameters(
    em,
    `insert into jobs (${jobColumnList(['id', 'customerId', 'type', 'state', 'payload', 'maxAttempts', 'bundleId'])})
     select v.id, ?, ?, 'queued', v.payload, ?, v.bundle_id from jsonb_to_recordset(?::jsonb) as v(${jobRecordsetType(bulkProperties)})`,
    [customerId, type, maxAttempts, JSON.stringify(jobs)],
  );
}

/**
 * What a job answered without running records: the rest is fixed (completed, no attempt). `createdAt` is the
 * instant the caller's answer shows as the job's created, started and finished time, so the stored row and the
 * answer agree (the database's `now()` would be a few ms later).
 */
export type FinishedJobRow = Pick<JobRecord, 'id' | 'customerId' | 'type' | 'payload' | 'result' | 'createdAt'>;
const finishedJobProperties = ['id', 'customerId', 'type', 'payload', 'result', 'createdAt'] as const satisfies ReadonlyArray<
  keyof FinishedJobRow
>;

const insertFinishedJobsStatement = `with ${asyncCommit}
     insert into jobs (${jobColumnList(['id', 'customerId', 'type', 'state', 'payload', 'result', 'attemptsMade', 'maxAttempts', 'createdAt', 'startedAt', 'finishedAt'])})
     select v.id, v.customer_id, v.type, 'completed', v.payload, v.result, 0, 1, v.created_at, v.created_at, v.created_at
       from jsonb_to_recordset($1::jsonb) as v(${jobRecordsetType(finishedJobProperties)}), durability`;

/**
 * Jobs answered without running (an invocation served from the cache), recorded completed in one
 * prepared INSERT. The commit does not wait for the disk: the caller already has its answer (200 with
 * the result), so a row lost to a crash in the next moments breaks no promise of acceptance.
 */
export async function insertFinishedJobs(em: EntityManager, rows: FinishedJobRow[]): Promise<void> {
  if (rows.length === 0) return;
  await executePrepared(em, 'jobs-insert-finished', insertFinishedJobsStatement, [
    JSON.stringify(
      rows.map(
        (row) =>
          ({
            id: row.id,
            customer_id: row.customerId,
            type: row.type,
            payload: row.payload,
            result: row.result,
            created_at: row.createdAt.toISOString(),
          }) satisfies JobRecordsetRow<keyof FinishedJobRow>,
      ),
    ),
  ]);
}

/**
 * Whether the job's row is stored, made durable: this statement's commit writes a record (the
 * transaction id forces one) and waits for the disk, which flushes every earlier quick commit too.
 * False means the row was lost (PostgreSQL restarted before its quick commit reached the disk).
 */
export async function isJobDurable(em: EntityManager, id: string): Promise<boolean> {
  const [row] = await em
    .getConnection()
    .execute<Array<{ present: boolean }>>(`select txid_current() as xid, exists (select 1 from jobs where id = ?) as present`, [id]);
  return row?.present === true;
}

/**
 * Frees the customer's keys (of `keys`) whose `windowMs` has passed or whose job is gone (retention), so they
 * can name new jobs. The rows are locked in `keyOrder` before they are deleted (not in the order of `keys`):
 * two bulk submits freeing the same expired keys in different orders must not wait on each other in a cycle.
 */
export async function releaseIdempotencyKeys(
  em: EntityManager,
  customerId: string,
  keys: readonly string[],
  windowMs: number,
): Promise<void> {
  await queryWithParameters(
    em,
    `delete from job_idempotency_keys k
      using (select f.customer_id, f.idempotency_key from job_idempotency_keys f
              where f.customer_id = ? and f.idempotency_key in (select jsonb_array_elements_text(?::jsonb))
                and (f.created_at < now() - make_interval(secs => ?) or not exists (select 1 from jobs j where j.id = f.job_id))
              order by ${keyOrder('f')} for update of f) freed
      where k.customer_id = freed.customer_id and k.idempotency_key = freed.idempotency_key`,
    [customerId, JSON.stringify(keys), windowMs / 1000],
  );
}

/** Why `insertJobsAllOrNothing` stored nothing: the item (by index) that refused it. */
export type AllOrNothingRefusal =
  { kind: 'substrate-missing'; index: number; substrateId: string } | { kind: 'key-conflict'; index: number };

export type AllOrNothingOutcome =
  | {
      kind: 'inserted';
      /** Per row, in order: the job stored now, or (`replayed`) the one its idempotency key already named. */
      jobs: Array<{ job: JobRecord; replayed: boolean }>;
    }
  | AllOrNothingRefusal;

/** `inTransaction`, run again if PostgreSQL ends it to break a deadlock (`againOnDeadlock`). */
const inTransactionAgainOnDeadlock = <T>(em: EntityManager, work: (tx: EntityManager) => Promise<T>): Promise<T> =>
  againOnDeadlock(em, () => inTransaction(em, work));

/** Rolls back `insertJobsAllOrNothing`'s transaction, carrying why. */
class Refused extends Error {
  override name = 'Refused';
  constructor(readonly refusal: AllOrNothingRefusal) {
    super(refusal.kind);
  }
}

const insertJobsReturning = `
  with v as (select * from ${newRows('?', jobRecordsetType(newJobProperties))}),
  ${takeKeys}
  insert into jobs (${newJobColumns})
  select ${jobColumnList(newJobProperties, 'v')} from v
   where ${keyTaken}
  returning id, created_at as "createdAt"`;

/** A row just inserted, as read back: what the submitter sent, the database's defaults, and its `created_at`. */
function insertedJob(row: NewJobRow, createdAt: Date): JobRecord {
  // Written out, not spread: `{ ...row, … }` over 1,000 rows took a tenth of a bulk submit's CPU.
  return {
    id: row.id,
    customerId: row.customerId,
    type: row.type,
    state: row.state,
    payload: row.payload,
    maxAttempts: row.maxAttempts,
    priority: row.priority,
    delayMs: row.delayMs,
    webhookUrl: row.webhookUrl,
    idempotencyKey: row.idempotencyKey,
    requestHash: row.requestHash,
    scheduleName: row.scheduleName ?? null,
    retryOf: row.retryOf ?? null,
    result: null,
    error: null,
    progress: null,
    attemptsMade: 0,
    queueJobId: null,
    bundleId: row.bundleId ?? null,
    createdAt,
    startedAt: null,
    finishedAt: null,
  };
}

/**
 * Many jobs of one customer (`POST /jobs/bulk`), all or none, in one transaction: a substrate the customer
 * does not own (`requireSubstrateId`), or an idempotency key already used with another request
 * (`requestHash`), stores nothing and says which row. A key used with the same request answers with the
 * job it named (`replayed`); a key older than `keyWindowMs` is freed and names the new job. Rows are
 * inserted in one statement, so their ids, the payloads and the order are the caller's.
 */
export async function insertJobsAllOrNothing(em: EntityManager, rows: JobInsert[], keyWindowMs: number): Promise<AllOrNothingOutcome> {
  if (rows.length === 0) return { kind: 'inserted', jobs: [] };
  const customerId = rows[0]!.row.customerId;
  if (rows.some(({ row }) => row.customerId !== customerId)) throw new Error('insertJobsAllOrNothing: one customer per call');
  const keys = [...new Set(rows.map(({ row }) => row.idempotencyKey).filter((key): key is string => key !== null))];
  const substrates = [...new Set(rows.map((insert) => insert.requireSubstrateId).filter((id): id is string => id !== undefined))];
  try {
    // Keys are taken and freed in one order (`keyOrder`), so overlapping bulk submits do not deadlock on them.
    return await inTransactionAgainOnDeadlock(em, async (tx) => {
      if (substrates.length > 0) {
        // One primary-key probe per distinct substrate (a plain NOT EXISTS could hash the whole table).
        const [missing] = await queryWithParameters<{ id: string }>(
          tx,
          `select wanted.id from jsonb_array_elements_text(?::jsonb) as wanted(id)
             left join lateral (select true as found from substrates s where s.id = wanted.id and s.customer_id = ? limit 1) owned on true
            where owned.found is null limit 1`,
          [JSON.stringify(substrates), customerId],
        );
        if (missing) {
          const index = rows.findIndex((insert) => insert.requireSubstrateId === missing.id);
          throw new Refused({ kind: 'substrate-missing', index, substrateId: missing.id });
        }
      }
      if (keys.length > 0) await releaseIdempotencyKeys(tx, customerId, keys, keyWindowMs);
      // Only the ids and creation times come back: the rest is what was sent (1,000 payloads need not be parsed again).
      const inserted = await queryWithParameters<{ id: string; createdAt: Date }>(tx, insertJobsReturning, [
        JSON.stringify(rows.map(({ row }) => recordsetRow(row))),
      ]);
      const createdAtOf = new Map(inserted.map(({ id, createdAt }) => [id, createdAt]));
      const unstoredKeys = rows.filter(({ row }) => !createdAtOf.has(row.id)).map(({ row }) => row.idempotencyKey);
      const existing =
        unstoredKeys.length > 0 ? await findJobsByIdempotencyKeys(tx, customerId, unstoredKeys) : new Map<string, JobRecord>();
      return {
        kind: 'inserted' as const,
        jobs: rows.map(({ row }, index) => {
          const createdAt = createdAtOf.get(row.id);
          if (createdAt) return { job: insertedJob(row, createdAt), replayed: false };
          const named = row.idempotencyKey === null ? undefined : existing.get(row.idempotencyKey);
          if (!named) throw new Error(`job row ${index} was neither stored nor named by its idempotency key`);
          if (named.requestHash !== row.requestHash) throw new Refused({ kind: 'key-conflict', index });
          return { job: named, replayed: true };
        }),
      };
    });
  } catch (error) {
    if (error instanceof Refused) return error.refusal;
    throw error;
  }
}
