import { retryableStates, type JobRecord } from '../entities/job-record.entity.js';
import { jsonTextOf, type JsonText } from '../../lib/json-text.js';

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
  bundleId: ['bundle_id', 'text'],
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

/**
 * `customer_id as "customerId", …`: a select list that reads rows as JobRecords; `alias.` before each column when given.
 * The properties of `asText` are read as their text (`result::text as result`: lib/json-text.ts `resultsAsJsonText`).
 */
export function jobSelectList(
  properties: readonly JobProperty[] = everyProperty,
  alias?: string,
  asText: readonly JobProperty[] = [],
): string {
  const prefix = alias ? `${alias}.` : '';
  return properties
    .map((property) => {
      const column = `${prefix}${columns[property][0]}`;
      if (asText.includes(property)) return `${column}::text as "${property}"`;
      return columns[property][0] === property ? column : `${column} as "${property}"`;
    })
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
 * A job as a read that shows it reads it (jobView shows no payload): every column but the payload, which can be
 * megabytes (a batch's 10,000 invocations) and, read, would be parsed on the API's event loop at every poll.
 */
export type ShownJob = Omit<JobRecord, 'payload'> & { payload: null };

/**
 * `jobColumns` with the payload left in PostgreSQL (`null::jsonb as payload`): reads a ShownJob; `alias.` before each
 * column when given; the properties of `asText` read as text.
 */
export const shownJobColumns = (alias?: string, asText: readonly JobProperty[] = []): string =>
  `${jobSelectList(
    everyProperty.filter((property) => property !== 'payload'),
    alias,
    asText,
  )}, null::jsonb as payload`;

/**
 * A job as a retry reads it (queue/retry-jobs.ts): the payload as PostgreSQL's JSON text (`RetryOriginal`), and only
 * when the job can be retried (a 409 reads none), the substrate it names read by PostgreSQL, and no result. A batch's
 * payload can be 15 MB: parsed when read and serialised again into the new row, it held the API's event loop ~3
 * parses' time a retry (~170 ms).
 */
export const retryOriginalColumns = `${jobSelectList(everyProperty.filter((property) => property !== 'result' && property !== 'payload'))},
  case when state in (${retryableStates.map((state) => `'${state}'`).join(', ')}) then payload::text end as payload, null::jsonb as result,
  case when jsonb_typeof(payload->'substrate_id') = 'string' then payload->>'substrate_id' end as "payloadSubstrateId"`;

/** A row of `retryOriginalColumns`, its payload made a JsonText (`retryOriginalsOf`). */
export type RetryOriginal = Omit<JobRecord, 'payload' | 'result'> & {
  payload: JsonText | null;
  result: null;
  /** The payload's `substrate_id` (an invoke's or a divide's), else null. */
  payloadSubstrateId: string | null;
};

/** Rows read with `retryOriginalColumns` as RetryOriginals: each payload's text made a JsonText, in place. */
export function retryOriginalsOf(rows: ReadonlyArray<Omit<RetryOriginal, 'payload'> & { payload: unknown }>): RetryOriginal[] {
  for (const row of rows) row.payload = jsonTextOf(row.payload as string | null);
  return rows as RetryOriginal[];
}

/**
 * A CTE that makes its statement's commit skip the WAL flush (`synchronous_commit` is read at commit
 * time), so one autocommit statement does what SET LOCAL would need a transaction for. Statements join
 * it (`from …, durability`) so that it runs.
 */
export const asyncCommit = `durability as (select set_config('synchronous_commit', 'off', true))`;

/**
 * For the hot statements that find jobs by a list of ids (`id = any($n::uuid[])`): the state tests they make of
 * the rows found, and the id range their ids span.
 *
 * A state test written as `state in (…)` (or an OR of such tests) lets the planner find the rows through the
 * partial indexes of unfinished rows instead of the primary key. Statistics gathered while few rows were
 * unfinished (as nearly always: ANALYZE, autovacuum) make those indexes look tiny, so a generic plan of a
 * prepared statement read every unfinished row of the partition and tested each against the id list: with a
 * backlog of 40,000 queued jobs, one batch of 300 final writes took 150 ms instead of ~2, and a drain slowed
 * as its backlog grew (issue 18's queue-drain with history). Written as a CASE the planner cannot match to an
 * index, the test only filters the rows the ids found.
 *
 * The id range: a generic plan cannot prune partitions by `id = any($n)` (it probes every partition's primary
 * key for every id, the DEFAULT partition's history included), but it prunes by `id between $a and $b` when it
 * starts; a batch of recent jobs then touches the one partition it lies in.
 */
export const stateIn = (column: string, states: readonly string[]): string =>
  `case when ${column} in (${states.map((state) => `'${state}'`).join(', ')}) then true else false end`;

/**
 * `column = any(ids) and column between least and greatest` (`idRange`), each parameter read through a one-row
 * subquery (an initplan), for the hot prepared statements that find jobs by a list of ids. With the values in
 * sight PostgreSQL's plan cache never kept the generic plan: a custom plan, pruned to one partition when it is
 * made, looks cheaper than the generic one, so every call was planned anew — the final state write's Bind took
 * ~0.38 ms, twice its execution (and GET /jobs/:id's read ~0.1 ms of its ~0.23). Read through initplans, the
 * values are known only when the plan runs: custom and generic plans cost the same, the cache keeps the generic
 * plan after its first five calls, and the partitions the range excludes are still skipped when it runs ("never
 * executed" under EXPLAIN ANALYZE).
 */
export const idsWithin = (column: string, ids: string, least: string, greatest: string): string =>
  `${column} = any((select ${ids}::uuid[])::uuid[]) and ${idBetween(column, least, greatest)}`;

/** `column between least and greatest`, both read through initplans (`idsWithin`). */
export const idBetween = (column: string, least: string, greatest: string): string =>
  `${column} between (select ${least}::uuid) and (select ${greatest}::uuid)`;

/** `column = id` with the id read through an initplan, for a hot prepared statement that finds one job (`idsWithin` says why). */
export const idIs = (column: string, id: string): string => `${column} = (select ${id}::uuid)`;

/** The least and greatest of `ids` (canonical UUID text sorts as the uuid type does), for `id between $a and $b`. */
export function idRange(ids: Iterable<string>): [string, string] {
  let least: string | null = null;
  let greatest: string | null = null;
  for (const raw of ids) {
    const id = raw.toLowerCase();
    if (least === null || id < least) least = id;
    if (greatest === null || id > greatest) greatest = id;
  }
  if (least === null || greatest === null) throw new Error('idRange of no ids');
  return [least, greatest];
}

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
