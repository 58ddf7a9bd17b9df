import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobState } from '../entities/job-record.entity.js';

/** Whose jobs: one customer's, or everybody's (admins). */
export interface StatsScope {
  customerId: string | null;
  /** The recent window the rates, latencies and invocation figures cover, in seconds. */
  windowSeconds: number;
}

const since = `created_at >= now() - make_interval(secs => ?)`;
const customerFilter = (scope: StatsScope): { sql: string; params: unknown[] } =>
  scope.customerId === null ? { sql: '', params: [] } : { sql: 'and customer_id = ?', params: [scope.customerId] };

/**
 * Jobs by state: unfinished ones (queued, delayed, active) whenever they were created — read through the
 * partial `jobs_unfinished_index` — and finished ones created within the window, through
 * `jobs_created_at_index`. Neither read grows with the table's history.
 */
export async function jobCountsByState(em: EntityManager, scope: StatsScope): Promise<Partial<Record<JobState, number>>> {
  const customer = customerFilter(scope);
  const rows = await em.getConnection().execute<Array<{ state: JobState; count: number }>>(
    `select state, count(*)::int as count from jobs
      where state in ('queued', 'delayed', 'active') ${customer.sql}
      group by state
     union all
     select state, count(*)::int as count from jobs
      where ${since} and state in ('completed', 'failed', 'cancelled') ${customer.sql}
      group by state`,
    [...customer.params, scope.windowSeconds, ...customer.params],
  );
  return Object.fromEntries(rows.map((row) => [row.state, row.count]));
}

export interface JobWindowFigures {
  submitted: number;
  completed: number;
  failed: number;
  /** finished_at − created_at of jobs that completed or failed, in ms; null without any. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** Jobs created within the window: how many, how they ended, and how long they took from submit to finish. */
export async function jobWindowFigures(em: EntityManager, scope: StatsScope): Promise<JobWindowFigures> {
  const customer = customerFilter(scope);
  const latency = `extract(epoch from (finished_at - created_at)) * 1000`;
  const finished = `filter (where state in ('completed', 'failed') and finished_at is not null)`;
  const [row] = await em.getConnection().execute<JobWindowFigures[]>(
    `select count(*)::int as submitted,
            count(*) filter (where state = 'completed')::int as completed,
            count(*) filter (where state = 'failed')::int as failed,
            percentile_cont(0.5) within group (order by ${latency}) ${finished} as p50,
            percentile_cont(0.95) within group (order by ${latency}) ${finished} as p95,
            percentile_cont(0.99) within group (order by ${latency}) ${finished} as p99
       from jobs
      where ${since} ${customer.sql}`,
    [scope.windowSeconds, ...customer.params],
  );
  return row ?? { submitted: 0, completed: 0, failed: 0, p50: null, p95: null, p99: null };
}

export interface InvocationFigures {
  /** `invoke` jobs created within the window. */
  invocations: number;
  /** Those that completed with a result that went through the cache (plain invocations, not operators). */
  cacheable: number;
  /** Those answered from the cache (`cached: true`). */
  cached: number;
}

export async function invocationFigures(em: EntityManager, scope: StatsScope): Promise<InvocationFigures> {
  const customer = customerFilter(scope);
  const [row] = await em.getConnection().execute<InvocationFigures[]>(
    `select count(*)::int as invocations,
            count(*) filter (where state = 'completed' and result->>'cached' is not null)::int as cacheable,
            count(*) filter (where state = 'completed' and result->>'cached' = 'true')::int as cached
       from jobs
      where type = 'invoke' and ${since} ${customer.sql}`,
    [scope.windowSeconds, ...customer.params],
  );
  return row ?? { invocations: 0, cacheable: 0, cached: 0 };
}

/** The substrates invoked most within the window (ties by id), at most `limit`. */
export async function mostInvokedSubstrates(
  em: EntityManager,
  scope: StatsScope,
  limit = 10,
): Promise<Array<{ substrate_id: string; invocations: number }>> {
  const customer = customerFilter(scope);
  return em.getConnection().execute(
    `select payload->>'substrate_id' as substrate_id, count(*)::int as invocations
       from jobs
      where type = 'invoke' and ${since} and payload->>'substrate_id' is not null ${customer.sql}
      group by 1
      order by 2 desc, 1
      limit ?`,
    [scope.windowSeconds, ...customer.params, limit],
  );
}

/** One substrate's `invoke` jobs, ever: how many, how they ended, the first and last, the last day's (divide's Frequency dimension). */
export async function substrateInvocationCounts(
  em: EntityManager,
  customerId: string,
  substrateId: string,
): Promise<Record<string, string | Date | null> | undefined> {
  const [counts] = await em.getConnection().execute<Array<Record<string, string | Date | null>>>(
    `select count(*) as total,
            count(*) filter (where state = 'completed') as completed,
            count(*) filter (where state = 'failed') as failed,
            min(created_at) as first, max(created_at) as last,
            count(*) filter (where created_at > now() - interval '1 day') as last_day
       from jobs where customer_id = ? and type = 'invoke' and payload->>'substrate_id' = ?`,
    [customerId, substrateId],
  );
  return counts;
}
