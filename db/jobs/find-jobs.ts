import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord, JobState } from '../entities/job-record.entity.js';
import { executePrepared } from '../prepared.js';
import { jobColumns, jobSelectList } from './job-columns.js';

export async function findJob(em: EntityManager, customerId: string, id: string): Promise<JobRecord | null> {
  const rows = await em
    .getConnection()
    .execute<JobRecord[]>(`select ${jobColumns} from jobs where id = ? and customer_id = ?`, [id, customerId]);
  return rows[0] ?? null;
}

export async function findJobByIdempotencyKey(em: EntityManager, customerId: string, key: string): Promise<JobRecord | null> {
  const rows = await em
    .getConnection()
    .execute<JobRecord[]>(`select ${jobColumns} from jobs where customer_id = ? and idempotency_key = ?`, [customerId, key]);
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
  return em
    .getConnection()
    .execute<JobRecord[]>(`select ${jobColumns} from jobs where ${where.join(' and ')} order by id desc limit ?`, params);
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
                       where e.customer_id = j.customer_id and e.events && array[?]::text[]), '[]'::json) as endpoints
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

const releasableJobs = `select ${jobSelectList(releasableProperties)} from jobs where id = any($1::uuid[]) and state in ('queued', 'delayed')`;

/**
 * The rows of `ids` that may still be released to BullMQ, in one prepared statement: not started, not
 * cancelled (a delayed row keeps `delayed` until it starts; fair sharing holds it until it is due).
 * Ids missing from the answer were cancelled, finished or never stored: their release is skipped.
 */
export async function findReleasableJobs(em: EntityManager, ids: readonly string[]): Promise<ReleasableJob[]> {
  if (ids.length === 0) return [];
  return executePrepared<ReleasableJob>(em, 'find-releasable-jobs', releasableJobs, [ids]);
}
