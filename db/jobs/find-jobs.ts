import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord } from '../entities/job-record.entity.js';
import { jsonTextOf, resultsAsJsonText, type JsonText } from '../../lib/json-text.js';
import { executePrepared } from '../prepared.js';
import { queryWithParameters } from '../query-with-parameters.js';
import {
  asyncCommit,
  idBetween,
  idIs,
  idRange,
  idsWithin,
  jobSelectList,
  retryOriginalColumns,
  retryOriginalsOf,
  shownJobColumns,
  stateIn,
  type RetryOriginal,
  type ShownJob,
} from './job-columns.js';

export const findJobStatement = `select ${shownJobColumns()} from jobs where ${idIs('id', '$1')} and customer_id = $2`;

/** One job of a customer, or null: one primary-key read, a prepared statement (GET /jobs/:id polls it). Its payload is not read. */
export async function findJob(em: EntityManager, customerId: string, id: string): Promise<ShownJob | null> {
  const [row] = await executePrepared<ShownJob>(em, 'jobs-find-one', findJobStatement, [id, customerId]);
  return row ?? null;
}

const findAnyJobStatement = `select ${shownJobColumns()} from jobs where ${idIs('id', '$1')}`;

/** Any customer's job by id, or null (an administrator's read: GET /admin/jobs/:id). Its payload is not read. */
export async function findAnyJob(em: EntityManager, id: string): Promise<ShownJob | null> {
  const [row] = await executePrepared<ShownJob>(em, 'jobs-find-any', findAnyJobStatement, [id]);
  return row ?? null;
}

/** A job as GET /jobs/:id answers it: its result, and its payload when asked for, as JsonText (written unparsed). */
export type AnsweredJob = Omit<JobRecord, 'payload'> & { payload: JsonText | null };

const answeredJobStatement = (columns: string) =>
  `select ${columns} from jobs where ${idIs('id', '$1')} and ($2::uuid is null or customer_id = $2::uuid)`;
const answeredJobStatements = {
  withPayload: answeredJobStatement(jobSelectList(undefined, undefined, ['result', 'payload'])),
  withoutPayload: answeredJobStatement(shownJobColumns(undefined, ['result'])),
};

/**
 * A customer's job (or, with a null `customerId`, anyone's) as GET /jobs/:id answers it, or null: its result, and with
 * `payload` its payload, read as text and never parsed here (a poll of a megabyte result held the event loop ~35 ms).
 */
export async function findJobToAnswer(
  em: EntityManager,
  customerId: string | null,
  id: string,
  payload: boolean,
): Promise<AnsweredJob | null> {
  const [row] = await executePrepared<AnsweredJob>(
    em,
    payload ? 'jobs-answer-with-payload' : 'jobs-answer',
    payload ? answeredJobStatements.withPayload : answeredJobStatements.withoutPayload,
    [id, customerId],
  );
  if (!row) return null;
  resultsAsJsonText([row]);
  if (payload) row.payload = jsonTextOf(row.payload as unknown as string | null);
  return row;
}

const jobToRetryStatement = `select ${retryOriginalColumns} from jobs where ${idIs('id', '$1')} and ($2::uuid is null or customer_id = $2::uuid)`;

/** A customer's job (or, with a null `customerId`, anyone's) as a retry submits it again (`RetryOriginal`). */
export async function findJobToRetry(em: EntityManager, customerId: string | null, id: string): Promise<RetryOriginal | null> {
  const rows = await executePrepared<Omit<RetryOriginal, 'payload'> & { payload: unknown }>(em, 'jobs-find-to-retry', jobToRetryStatement, [
    id,
    customerId,
  ]);
  return retryOriginalsOf(rows)[0] ?? null;
}

/** A batch job as GET /batches/:id shows it: its number of invocations counted in PostgreSQL, its payload not read. */
export type ShownBatch = ShownJob & { total: number };

const batchStatement = `select ${shownJobColumns()}, coalesce(jsonb_array_length(payload->'invocations'), 0) as total from jobs
  where ${idIs('id', '$1')} and ($2::uuid is null or customer_id = $2::uuid) and type = 'batch'`;

/** A customer's batch (or, with a null `customerId`, anyone's), or null when there is no such batch job. */
export async function findBatch(em: EntityManager, customerId: string | null, id: string): Promise<ShownBatch | null> {
  const [row] = await executePrepared<ShownBatch>(em, 'jobs-find-batch', batchStatement, [id, customerId]);
  return row ?? null;
}

const jobStatesStatement = `select id, state from jobs where ${idsWithin('id', '$1', '$3', '$4')} and customer_id = $2`;

/** The states of a customer's jobs by id, in one prepared read (a bulk submit's wait polls it); an id with no row is left out. */
export async function findJobStates(
  em: EntityManager,
  customerId: string,
  ids: readonly string[],
): Promise<Array<Pick<JobRecord, 'id' | 'state'>>> {
  if (ids.length === 0) return [];
  return executePrepared(em, 'jobs-find-states', jobStatesStatement, [ids, customerId, ...idRange(ids)]);
}

const jobsWithinStatement = `with found as (select ${shownJobColumns()}, octet_length(result::text) as "resultBytes"
     from jobs where ${idsWithin('id', '$1', '$3', '$4')} and customer_id = $2)
   select * from found where (select coalesce(sum("resultBytes"), 0) from found) <= $5`;

/**
 * A customer's jobs by id, in one prepared read, or null when their results together are over `maxResultBytes`
 * (of JSON text: what is read is bounded, whatever the jobs returned) or when an id has no row of the customer's.
 */
export async function findJobsWithin(
  em: EntityManager,
  customerId: string,
  ids: readonly string[],
  maxResultBytes: number,
): Promise<ShownJob[] | null> {
  if (ids.length === 0) return [];
  const rows = await executePrepared<ShownJob>(em, 'jobs-find-within', jobsWithinStatement, [
    ids,
    customerId,
    ...idRange(ids),
    maxResultBytes,
  ]);
  return rows.length === ids.length ? rows : null;
}

const jobPayloadStatement = `select payload from jobs where ${idIs('id', '$1')}`;

/** What a bundle's run needs of a member's row: whether it still runs, its attempts, and a payload too big to carry. */
export interface BundleMemberRow {
  id: string;
  state: JobRecord['state'];
  attemptsMade: number;
  maxAttempts: number;
  /** Only for the ids asked for (`payloadIds`); null otherwise. */
  payload: unknown;
}

const bundleMembersStatement = `select id, state, attempts_made as "attemptsMade", max_attempts as "maxAttempts",
        case when id = any($2::uuid[]) then payload end as payload
   from jobs where ${idsWithin('id', '$1', '$3', '$4')}`;

/** A bundle's members' rows (queue/bundles.ts), in one prepared read; a member with no row is left out. */
export async function findBundleMembers(
  em: EntityManager,
  ids: readonly string[],
  payloadIds: readonly string[],
): Promise<Map<string, BundleMemberRow>> {
  if (ids.length === 0) return new Map();
  const rows = await executePrepared<BundleMemberRow>(em, 'jobs-find-bundle-members', bundleMembersStatement, [
    ids,
    payloadIds,
    ...idRange(ids),
  ]);
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * A job's payload, read from its row (for a payload too big to travel in its BullMQ job: queue/queues.ts
 * `queuedPayload`); null when no row has that id.
 */
export async function findJobPayload(em: EntityManager, id: string): Promise<{ payload: unknown } | null> {
  const [row] = await executePrepared<{ payload: unknown }>(em, 'jobs-find-payload', jobPayloadStatement, [id]);
  return row ?? null;
}

/** The least UUIDv7 of the millisecond `ms`: every UUIDv7 made earlier sorts before it. */
const firstUuidv7Of = (ms: number) => {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-7000-8000-000000000000`;
};

/**
 * The newest retry of a customer's job `id` that had ended before `askedAt` (epoch ms): created before then (by its
 * UUIDv7's time, when the API made it) and finished before then (by `finished_at`), or null when none had. POST
 * /jobs/:id/retry names its retry after it (`retryIdempotencyKeyAfter`): retries asked for while the newest retry
 * was running, or before it even existed, all name the same one and so share it.
 */
export async function findRetryEndedBefore(em: EntityManager, customerId: string, id: string, askedAt: number): Promise<string | null> {
  const [row] = await queryWithParameters<{ id: string }>(
    em,
    `select id from jobs
      where retry_of = ?::uuid and customer_id = ?::uuid and id > ?::uuid and id < ?::uuid
        and state in ('completed', 'failed', 'cancelled') and coalesce(finished_at, created_at) < ?::timestamptz
      order by id desc limit 1`,
    [id, customerId, id, firstUuidv7Of(askedAt), new Date(askedAt).toISOString()],
  );
  return row?.id ?? null;
}

/** The job a customer's idempotency key names, or null (the key is free, or its job is gone). */
export async function findJobByIdempotencyKey(em: EntityManager, customerId: string, key: string): Promise<ShownJob | null> {
  return (await findJobsByIdempotencyKeys(em, customerId, [key])).get(key) ?? null;
}

/** The jobs the customer's `keys` name, by key (keys that name no stored job are left out). */
export async function findJobsByIdempotencyKeys(
  em: EntityManager,
  customerId: string,
  keys: readonly (string | null)[],
): Promise<Map<string, ShownJob>> {
  // A replay answers with the job's id and state, never its payload (a bulk's 1,000 of them need not be parsed).
  const rows = await queryWithParameters<ShownJob & { namedBy: string }>(
    em,
    `select ${shownJobColumns('j')}, k.idempotency_key as "namedBy"
       from job_idempotency_keys k join jobs j on j.id = k.job_id
      where k.customer_id = ? and k.idempotency_key in (select jsonb_array_elements_text(?::jsonb))`,
    [customerId, JSON.stringify(keys)],
  );
  return new Map(rows.map(({ namedBy, ...job }) => [namedBy, job]));
}

/** An endpoint subscribed to at least one of the events a finished job emits. */
export interface SubscribedEndpoint {
  id: string;
  url: string;
  events: string[];
}

const jobColumnsOfJ = jobSelectList(undefined, 'j');

/**
 * A finished job and the endpoints that want its events, in one round trip. Null when nobody does
 * (no subscribed endpoint and no `webhook_url`), which is the common case and costs one indexed read.
 */
export async function findJobWebhookTargets(
  em: EntityManager,
  jobId: string,
  customerId: string,
  events: string[],
): Promise<{ job: JobRecord; endpoints: SubscribedEndpoint[] } | null> {
  const [row] = await em.getConnection().execute<Array<JobRecord & { endpoints: SubscribedEndpoint[] }>>(
    `select ${jobColumnsOfJ},
            coalesce((select json_agg(json_build_object('id', e.id, 'url', e.url, 'events', e.events) order by e.id)
                        from webhook_endpoints e
                       where e.customer_id = j.customer_id and e.events && array[?]::text[] and e.disabled_at is null), '[]'::json) as endpoints
       from jobs j
      where j.id = ? and j.customer_id = ?`,
    [events, jobId, customerId],
  );
  if (!row) return null;
  const { endpoints, ...job } = row;
  if (endpoints.length === 0 && !job.webhookUrl) return null;
  return { job, endpoints };
}

/** What a fair-share release needs of a row to add its job to BullMQ (db/jobs' half of queue/fair-share). */
const releasableProperties = ['id', 'customerId', 'type', 'payload', 'maxAttempts', 'webhookUrl'] as const satisfies ReadonlyArray<
  keyof JobRecord
>;
export type ReleasableJob = Pick<JobRecord, (typeof releasableProperties)[number]>;

export const releasableJobsStatement = `select ${jobSelectList(releasableProperties)} from jobs
  where ${idsWithin('id', '$1', '$2', '$3')} and ${stateIn('state', ['queued', 'delayed'])}`;

/**
 * The rows of `ids` that may still be released to BullMQ, in one prepared statement: not started, not
 * cancelled (a delayed row keeps `delayed` until it starts; fair sharing holds it until it is due). Found by
 * id and tested for state afterwards, as the workers' state writes are (job-columns.ts `stateIn`).
 * Ids missing from the answer were cancelled, finished or never stored: their release is skipped.
 */
export async function findReleasableJobs(em: EntityManager, ids: readonly string[]): Promise<ReleasableJob[]> {
  if (ids.length === 0) return [];
  return executePrepared<ReleasableJob>(em, 'find-releasable-jobs', releasableJobsStatement, [ids, ...idRange(ids)]);
}

// Committed without waiting for the disk, as the workers' state writes are: a bundle id lost to a crash leaves
// the sweeper looking the job up under its own id, which it does for a missing bundle anyway.
const bundleReleasableStatement = `with ${asyncCommit}
  update jobs j set bundle_id = v.bundle_id
    from jsonb_to_recordset($1::jsonb) as v(id uuid, bundle_id text), durability
   where j.id = v.id and ${idBetween('j.id', '$2', '$3')} and ${stateIn('j.state', ['queued', 'delayed'])}
  returning ${jobSelectList(releasableProperties, 'j')}`;

/**
 * `findReleasableJobs` for released jobs, those a release put into bundles (queue/bundles.ts) recorded in their
 * rows as they are read (`bundle_id`, which the sweeper follows): one prepared statement for each kind.
 */
export async function claimReleasableJobs(
  em: EntityManager,
  jobs: ReadonlyArray<{ id: string; bundleId?: string }>,
): Promise<ReleasableJob[]> {
  const alone = jobs.filter((job) => !job.bundleId).map((job) => job.id);
  const bundled = jobs.filter((job) => job.bundleId);
  const [aloneRows, bundledRows] = await Promise.all([
    findReleasableJobs(em, alone),
    bundled.length === 0
      ? []
      : executePrepared<ReleasableJob>(em, 'bundle-releasable-jobs', bundleReleasableStatement, [
          JSON.stringify(bundled.map((job) => ({ id: job.id, bundle_id: job.bundleId }))),
          ...idRange(bundled.map((job) => job.id)),
        ]),
  ]);
  return [...aloneRows, ...bundledRows];
}

/** A customer's jobs still waiting to start (row state `queued`), oldest first: what a resumed customer has set aside. */
export async function queuedJobRefs(
  em: EntityManager,
  customerId: string,
  limit: number,
): Promise<Array<Pick<JobRecord, 'id' | 'type' | 'queueJobId' | 'bundleId' | 'priority'>>> {
  return em
    .getConnection()
    .execute(
      `select id, type, queue_job_id as "queueJobId", bundle_id as "bundleId", priority from jobs where customer_id = ? and state = 'queued' order by created_at limit ?`,
      [customerId, limit],
    );
}
