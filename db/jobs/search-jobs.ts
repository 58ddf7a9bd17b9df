import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord, JobState } from '../entities/job-record.entity.js';
import { resultsAsJsonText } from '../../lib/json-text.js';
import { readPage, resultAndErrorBytes, type PageBound, type PageRows } from '../page-budget.js';
import { queryWithParameters } from '../query-with-parameters.js';
import {
  idRange,
  idsWithin,
  jobSelectList,
  retryOriginalColumns,
  retryOriginalsOf,
  type JobProperty,
  type RetryOriginal,
} from './job-columns.js';

/**
 * What GET /jobs and the admin's GET /admin/jobs, POST /admin/jobs/retry and POST /admin/jobs/cancel look for.
 * Every field narrows; an empty filter is every job (of the customer, when `customerId` is set).
 */
export interface JobSearch {
  /** One customer's jobs (GET /jobs always sets it); omitted: every customer's (admins). */
  customerId?: string;
  types?: readonly string[];
  /** Any of these states. */
  states?: readonly JobState[];
  /** `created_at >= createdAfter`. */
  createdAfter?: Date;
  /** `created_at < createdBefore`. */
  createdBefore?: Date;
  /** Runs of the customer's schedule of this name. */
  scheduleName?: string;
  /** Case-insensitive substring of `error` (a trigram index serves it). */
  errorContains?: string;
  /** Only jobs no retry names yet (the admin's bulk retry, so that running it twice retries each job once). */
  notRetried?: boolean;
  /** Only ids below this one (the cursor: UUIDv7 ids sort by creation time). */
  beforeId?: string;
  limit: number;
}

/**
 * How far a job's UUIDv7 id time may be from its `created_at`. The id is made by the submitter just before
 * the INSERT whose `now()` is `created_at`, so they differ by milliseconds (plus clock skew between an API
 * host and PostgreSQL); an hour is a wide margin. The time filters bound the id with it (a primary-key
 * range, which an index scan newest-first stops inside) and still test `created_at` exactly.
 */
const idClockSlackMs = 3600_000;

/** The smallest UUIDv7 (as text) whose time is `ms`: ids at that time or later are ≥ it. */
export function uuidv7Floor(ms: number): string {
  const hex = Math.max(0, Math.min(ms, 2 ** 48 - 1))
    .toString(16)
    .padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/** `%`, `_` and `\` taken literally in a LIKE pattern. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The WHERE clauses (ANDed) and their parameters of a search's filters other than its states. */
export function conditions(search: Omit<JobSearch, 'limit'>): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, ...values: unknown[]) => {
    where.push(clause);
    params.push(...values);
  };
  if (search.customerId) add('customer_id = ?', search.customerId);
  if (search.types?.length === 1) add('type = ?', search.types[0]);
  else if (search.types?.length) add('type in (select jsonb_array_elements_text(?::jsonb))', JSON.stringify(search.types));
  if (search.scheduleName) add('schedule_name = ?', search.scheduleName);
  if (search.createdAfter) {
    add('id >= ?::uuid', uuidv7Floor(search.createdAfter.getTime() - idClockSlackMs));
    add('created_at >= ?', search.createdAfter);
  }
  if (search.createdBefore) {
    add('id < ?::uuid', uuidv7Floor(search.createdBefore.getTime() + idClockSlackMs));
    add('created_at < ?', search.createdBefore);
  }
  if (search.errorContains) add(`error ilike ? escape '\\'`, `%${likeLiteral(search.errorContains)}%`);
  if (search.notRetried) add('not exists (select 1 from jobs retry where retry.retry_of = jobs.id)');
  if (search.beforeId) add('id < ?::uuid', search.beforeId);
  return { where, params };
}

/**
 * What a job list reads of a job: every column but the payload, which no list shows (jobView; GET /jobs/:id
 * shows it on request), so a page of jobs with payloads near 1 MiB is not that much read. A column added to
 * JobRecord and not listed here fails the type check where a ListedJob is shown as a job.
 */
const listedProperties = [
  'id',
  'customerId',
  'type',
  'state',
  'result',
  'error',
  'progress',
  'attemptsMade',
  'maxAttempts',
  'priority',
  'delayMs',
  'webhookUrl',
  'queueJobId',
  'bundleId',
  'idempotencyKey',
  'requestHash',
  'scheduleName',
  'retryOf',
  'createdAt',
  'startedAt',
  'finishedAt',
] as const satisfies readonly JobProperty[];

/** A job as the lists read it: its payload left in PostgreSQL (null). */
export type ListedJob = Pick<JobRecord, (typeof listedProperties)[number]> & { payload: null };

const listedJobColumns = `${jobSelectList(listedProperties)}, null::jsonb as payload`;
/** `listedJobColumns` with the result read as text: a page's results are written into the answer unparsed (JsonText). */
const pagedJobColumns = `${jobSelectList(listedProperties, undefined, ['result'])}, null::jsonb as payload`;

interface Statement {
  text: string;
  params: unknown[];
}

/** The statement for `search` without its error filter, each row `columns`, newest first, at most `limit`. */
function statement(search: Omit<JobSearch, 'limit'>, columns: string, limit: number): Statement {
  const { where, params } = conditions(search);
  const states = [...new Set(search.states ?? [])];
  const whereText = (extra: string[]) => {
    const all = [...where, ...extra];
    return all.length ? `where ${all.join(' and ')}` : '';
  };
  if (states.length <= 1) {
    return {
      text: `select ${columns} from jobs ${whereText(states.length ? ['state = ?'] : [])} order by id desc limit ?`,
      params: [...params, ...states, limit],
    };
  }
  // One arm per state, each an index range scan newest first (jobs_customer_state_index), merged by id.
  const arms = states.map(() => `(select ${columns} from jobs ${whereText(['state = ?'])} order by id desc limit ?)`);
  return {
    text: `select * from (${arms.join(' union all ')}) matched order by id desc limit ?`,
    params: [...states.flatMap((state) => [...params, state, limit]), limit],
  };
}

/**
 * With `errorContains`, the newest this-many jobs matching the other filters are tried first: when the text
 * is common among them (the usual search: "these failures"), the answer is there without the trigram
 * index's bitmap of every match; when it is rare, the trigram index finds its few rows.
 */
const errorProbeWindow = 2000;

/**
 * The statements that find `search`'s matches, each row `columns`, newest first, at most `limit`: the search
 * itself (`full`) and, with an error filter, its probe of the newest `errorProbeWindow` first. The matches a
 * probe finds are the newest of all, so its answer stands when it found all that was asked, or more than a page shows.
 */
function searchStatements(search: Omit<JobSearch, 'limit'>, columns: string, limit: number): { probe: Statement | null; full: Statement } {
  const full = statement(search, columns, limit);
  if (!search.errorContains) return { probe: null, full };
  const { errorContains, ...others } = search;
  const candidates = statement(others, columns, errorProbeWindow);
  return {
    probe: {
      text: `select * from (${candidates.text}) candidates where error ilike ? escape '\\' order by id desc limit ?`,
      params: [...candidates.params, `%${likeLiteral(errorContains)}%`, limit],
    },
    full,
  };
}

/**
 * Jobs that match, newest first, at most `limit`, as the lists read them (no payload). A list of states is one
 * arm per state, so a rare state among millions of rows is found without walking the others.
 */
export async function searchJobs(em: EntityManager, search: JobSearch): Promise<ListedJob[]> {
  return findMatches<ListedJob>(em, search, listedJobColumns);
}

/**
 * As searchJobs, as a retry reads jobs (`RetryOriginal`), for the admin's bulk retry, which resubmits each job's
 * payload: newest first, at most `search.limit`, and past the first only while their payloads add up to at most
 * `maxBytes` as stored (`pg_column_size`, compressed). The matches are found by id and size, then only the chosen
 * rows are read: 500 failed 15 MB batches (an outage's) read in one round were 7.5 GB in the API. `next` is the last
 * chosen id (the next round's `beforeId`; null when nothing matched): a chosen row gone before it was read (retention)
 * leaves `originals` short, not the search over.
 */
export async function searchJobsToRetry(
  em: EntityManager,
  search: JobSearch,
  maxBytes: number,
): Promise<{ originals: RetryOriginal[]; next: string | null }> {
  // The error filter's probe tests `error` on the rows it selects.
  const columns = `id, pg_column_size(payload) as "storedBytes"${search.errorContains ? ', error' : ''}`;
  const matches = await findMatches<{ id: string; storedBytes: number }>(em, search, columns);
  const ids: string[] = [];
  let bytes = 0;
  for (const match of matches) {
    bytes += Number(match.storedBytes);
    if (ids.length > 0 && bytes > maxBytes) break;
    ids.push(match.id);
  }
  if (ids.length === 0) return { originals: [], next: null };
  const rows = await queryWithParameters<Omit<RetryOriginal, 'payload'> & { payload: unknown }>(
    em,
    `select ${retryOriginalColumns} from jobs where ${idsWithin('id', '?', '?', '?')} order by id desc`,
    [ids, ...idRange(ids)],
  );
  return { originals: retryOriginalsOf(rows), next: ids.at(-1) ?? null };
}

async function findMatches<Row>(em: EntityManager, search: JobSearch, columns: string): Promise<Row[]> {
  const { probe, full } = searchStatements(search, columns, search.limit);
  if (probe) {
    const probed = await em.getConnection().execute<Row[]>(probe.text, probe.params);
    if (probed.length >= search.limit) return probed;
  }
  return em.getConnection().execute<Row[]>(full.text, full.params);
}

/**
 * A page of GET /jobs (and the admin's GET /admin/jobs): the jobs that match, newest first, at most `bound.limit`,
 * fewer when their results and errors add up over `bound.maxBytes` (always at least one).
 */
export async function searchJobPage(em: EntityManager, search: Omit<JobSearch, 'limit'>, bound: PageBound): Promise<PageRows<ListedJob>> {
  const { probe, full } = searchStatements(search, pagedJobColumns, bound.limit + 1);
  const measure = { orderBy: 'id desc', bytes: resultAndErrorBytes };
  let found: PageRows<ListedJob> | null = null;
  if (probe) {
    const probed = await readPage<ListedJob>(em, probe, measure, bound);
    if (probed.more) found = probed;
  }
  found ??= await readPage<ListedJob>(em, full, measure, bound);
  resultsAsJsonText(found.rows);
  return found;
}

/** How many jobs match (at most `cap`: a count past it answers `cap`), for a dry run. */
export async function countJobs(em: EntityManager, search: Omit<JobSearch, 'limit' | 'beforeId'>, cap: number): Promise<number> {
  const { where, params } = conditions(search);
  const states = [...new Set(search.states ?? [])];
  if (states.length) {
    // (Bound as JSON: knex would spread a JS array into one placeholder per item.)
    where.push('state in (select jsonb_array_elements_text(?::jsonb))');
    params.push(JSON.stringify(states));
  }
  const [row] = await em
    .getConnection()
    .execute<Array<{ count: number }>>(
      `select count(*)::int as count from (select 1 from jobs ${where.length ? `where ${where.join(' and ')}` : ''} limit ?) capped`,
      [...params, cap],
    );
  return row?.count ?? 0;
}
