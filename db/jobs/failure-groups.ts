import type { EntityManager } from '@mikro-orm/postgresql';
import { inTransaction } from '../transaction.js';
import { conditions, type JobSearch } from './search-jobs.js';

/** A group key is the error's first this-many characters: the longest `error_contains` a bulk retry takes. */
export const groupKeyLength = 200;

export interface FailureGroup {
  /** The error's first 200 characters; '' for failed jobs without error text. */
  error: string;
  jobs: number;
  /** Of those, the jobs no retry names yet (what a bulk retry would retry). */
  notRetried: number;
  customers: number;
  /** The first five customers, by id. */
  customerIds: string[];
  types: string[];
  firstFailedAt: string;
  lastFailedAt: string;
}

/**
 * The newest `scan` failed jobs that match `search` (an index range scan newest first: jobs_state_index, or
 * jobs_customer_state_index with a customer), grouped by their error's first 200 characters, the biggest
 * groups first, at most `groups`. `scanned` is how many failed jobs were read (= `scan`: older ones exist
 * that the groups do not count).
 */
export async function failureGroups(
  em: EntityManager,
  search: Pick<JobSearch, 'customerId' | 'types' | 'createdAfter' | 'createdBefore'>,
  options: { scan: number; groups: number },
): Promise<{ groups: FailureGroup[]; scanned: number }> {
  const { where, params } = conditions(search);
  where.push(`state = 'failed'`);
  // One bounded read: JIT compiling (tens of ms at this cost estimate) and parallel workers' start-up cost more than
  // they save here (measured at 1 M jobs: ops/bench/job-search.ts).
  const rows = await inTransaction(em, async (tx) => {
    await tx.execute('set local jit = off');
    await tx.execute('set local max_parallel_workers_per_gather = 0');
    return tx.execute<Array<FailureGroup & { scanned: number }>>(
      `with recent as (
       select id, customer_id, type, left(coalesce(error, ''), ${groupKeyLength}) as error, coalesce(finished_at, created_at) as failed_at
         from jobs where ${where.join(' and ')} order by id desc limit ?),
     grouped as (
       select error, count(*)::int as jobs,
              (count(*) filter (where not exists (select 1 from jobs retry where retry.retry_of = recent.id)))::int as "notRetried",
              count(distinct customer_id)::int as customers,
              (array_agg(distinct customer_id::text order by customer_id::text))[1:5] as "customerIds",
              array_agg(distinct type order by type) as types,
              to_char(min(failed_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "firstFailedAt",
              to_char(max(failed_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "lastFailedAt"
         from recent group by error)
     select grouped.*, (select count(*)::int from recent) as scanned
       from grouped order by jobs desc, "lastFailedAt" desc limit ?`,
      [...params, options.scan, options.groups],
    );
  });
  const scanned = rows[0]?.scanned ?? 0;
  return { groups: rows.map(({ scanned: _scanned, ...group }) => group), scanned };
}
