import type { JobRecord } from '../entities/job-record.entity.js';

/**
 * The `jobs` table as its statements see it: each JobRecord property's column and SQL type. Every column
 * list of the statements in db/jobs/ (select lists, insert lists, `jsonb_to_recordset` row types) is made
 * from this one constant, and the compiler holds it to JobRecord: a new property on the entity fails the
 * type check here until its column is added. (The public view, db/jobs/job-view.ts, and the OpenAPI schema
 * choose what they show on purpose and stay written out.)
 */
const columns = {
  id: ['id', 'uuid'],
  customerId: ['customer_id', 'uuid'],
  type: ['type', 'text'],
  state: ['state', 'text'],
  payload: ['payload', 'jsonb'],
  result: ['result', 'jsonb'],
  error: ['error', 'text'],
  progress: ['progress', 'jsonb'],
  attemptsMade: ['attempts_made', 'int'],
  maxAttempts: ['max_attempts', 'int'],
  priority: ['priority', 'int'],
  delayMs: ['delay_ms', 'int'],
  webhookUrl: ['webhook_url', 'text'],
  queueJobId: ['queue_job_id', 'text'],
  idempotencyKey: ['idempotency_key', 'text'],
  requestHash: ['request_hash', 'text'],
  scheduleName: ['schedule_name', 'text'],
  retryOf: ['retry_of', 'uuid'],
  createdAt: ['created_at', 'timestamptz'],
  startedAt: ['started_at', 'timestamptz'],
  finishedAt: ['finished_at', 'timestamptz'],
} as const satisfies { [Property in keyof JobRecord]-?: readonly [column: string, type: string] };

export type JobProperty = keyof typeof columns;
const everyProperty = Object.keys(columns) as JobProperty[];

/** The column of a property, e.g. `customer_id` for `customerId`. */
export type JobColumnOf<Property extends JobProperty> = (typeof columns)[Property][0];

/** A `jsonb_to_recordset` row of these properties: their columns as keys. */
export type JobRecordsetRow<Property extends JobProperty> = { [P in Property as JobColumnOf<P>]: unknown };

/** `customer_id as "customerId", …`: a select list that reads rows as JobRecords; `alias.` before each column when given. */
export function jobSelectList(properties: readonly JobProperty[] = everyProperty, alias?: string): string {
  const prefix = alias ? `${alias}.` : '';
  return properties
    .map((property) => (columns[property][0] === property ? `${prefix}${property}` : `${prefix}${columns[property][0]} as "${property}"`))
    .join(', ');
}

/** `customer_id, type, …`: the columns of an insert list, or of `v.` values when `alias` is given. */
export function jobColumnList(properties: readonly JobProperty[], alias?: string): string {
  const prefix = alias ? `${alias}.` : '';
  return properties.map((property) => `${prefix}${columns[property][0]}`).join(', ');
}

/** `customer_id uuid, type text, …`: the row type of `jsonb_to_recordset(…) as v(…)`. */
export function jobRecordsetType(properties: readonly JobProperty[]): string {
  return properties.map((property) => `${columns[property][0]} ${columns[property][1]}`).join(', ');
}

/** `?` per property, `?::jsonb` for a JSON column (whose value is bound as its JSON text). */
export function jobPlaceholders(properties: readonly JobProperty[]): string {
  return properties.map((property) => (columns[property][1] === 'jsonb' ? '?::jsonb' : '?')).join(', ');
}

/** Every column of a JobRecord, as a select list: what every statement that returns jobs selects. */
export const jobColumns = jobSelectList();

/**
 * A CTE that makes its statement's commit skip the WAL flush (`synchronous_commit` is read at commit
 * time), so one autocommit statement does what SET LOCAL would need a transaction for. Statements join
 * it (`from …, durability`) so that it runs.
 */
export const asyncCommit = `durability as (select set_config('synchronous_commit', 'off', true))`;

// ── Finished-job notices: the contract between a worker's final write and a waiting API process ─────────

/** Largest row sent whole, in bytes of JSON (PostgreSQL refuses NOTIFY payloads from 8,000 bytes). */
export const maxNoticeBytes = 7900;

/** A JobRecord as `row_to_json` writes it: its times as ISO strings. */
export type JobRecordJson = {
  [P in keyof JobRecord]: JobRecord[P] extends Date ? string : JobRecord[P] extends Date | null ? string | null : JobRecord[P];
};

/** A job as read from PostgreSQL, or as a finished-job notice carried it (its times then ISO strings). */
export type StoredJob = JobRecord | JobRecordJson;

/** What a finished-job notice carries: the stored row (selected with `jobColumns`), or, when that is over `maxNoticeBytes`, its id alone. */
export type FinishedJobNotice = JobRecordJson | { id: string; state?: undefined };

/**
 * The end of a statement that announces the rows of the CTE `updated` whose `notify` is set, on the
 * channel bound as `channelParameter` (`$3`): each row as `FinishedJobNotice`. The worker's final write
 * ends with it (db/jobs/job-states.ts); the API's listener reads it with `readFinishedJobNotice`.
 */
export const notifyFinishedJobs = (channelParameter: string): string =>
  `select pg_notify(${channelParameter}, case when octet_length(notice.text) <= ${maxNoticeBytes} then notice.text else json_build_object('id', stored.id)::text end)
     from (select ${jobColumns} from updated where notify) stored, lateral (select row_to_json(stored)::text as text) notice`;

/** A notice's payload as sent by `notifyFinishedJobs`. */
export const readFinishedJobNotice = (payload: string): FinishedJobNotice => JSON.parse(payload) as FinishedJobNotice;
