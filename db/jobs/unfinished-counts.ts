import type { EntityManager } from '@mikro-orm/postgresql';
import { executePrepared } from '../prepared.js';

/** A customer's unfinished jobs: `queued` counts queued and delayed ones (not started yet), `active` the running ones. */
export interface UnfinishedCounts {
  queued: number;
  active: number;
}

// Each count stops at its cap (`limit`): admission only asks whether a cap is reached, so an enterprise
// customer holding 100,000 queued jobs costs at most one cap's worth of index entries, never its history.
// Both read the partial index jobs_customer_unfinished_index (customer_id, state).
const countUnfinishedStatement = `
  select (select count(*)::int from (select 1 from jobs where customer_id = $1 and state in ('queued', 'delayed') limit $2) q) as queued,
         (select count(*)::int from (select 1 from jobs where customer_id = $1 and state = 'active' limit $3) a) as active`;

/**
 * One customer's queued (queued or delayed) and active jobs, each counted up to `upTo` of its kind: a
 * figure equal to its bound means "at least that many".
 */
export async function countUnfinishedJobs(
  em: EntityManager,
  customerId: string,
  upTo: { queued: number; active: number },
): Promise<UnfinishedCounts> {
  const [row] = await executePrepared<UnfinishedCounts>(em, 'jobs-count-unfinished', countUnfinishedStatement, [
    customerId,
    upTo.queued,
    upTo.active,
  ]);
  return { queued: row?.queued ?? 0, active: row?.active ?? 0 };
}

/** One customer's share of the unfinished work, for the backlog view and the per-customer gauges. */
export interface CustomerBacklog {
  customerId: string;
  /** The customer's name; null for a customer row that is gone (the platform's system customer). */
  name: string | null;
  /** The tier of its compute service; null without one. */
  tier: string | null;
  queued: number;
  delayed: number;
  active: number;
}

export interface BacklogSummary {
  /** The `top` customers holding the most unfinished jobs (queued + delayed + active), most first. */
  top: CustomerBacklog[];
  /** Everybody else, summed. */
  other: { customers: number; queued: number; delayed: number; active: number };
}

/**
 * Who holds the unfinished work: every customer's queued, delayed and active jobs, grouped through the
 * partial index of unfinished rows (history is never read), the `top` largest named and the rest summed.
 */
export async function summarizeBacklog(em: EntityManager, top: number): Promise<BacklogSummary> {
  const rows = await em
    .getConnection()
    .execute<Array<Omit<CustomerBacklog, 'customerId'> & { customerId: string | null; customers: number }>>(
      `with per_customer as (
       select customer_id,
              count(*) filter (where state = 'queued')::int as queued,
              count(*) filter (where state = 'delayed')::int as delayed,
              count(*) filter (where state = 'active')::int as active
         from jobs where state in ('queued', 'delayed', 'active')
        group by customer_id),
     ranked as (
       select *, row_number() over (order by queued + delayed + active desc, customer_id) as rank from per_customer)
     select r.customer_id as "customerId", c.name, s.tier, r.queued, r.delayed, r.active, 1 as customers
       from ranked r
       left join customers c on c.id = r.customer_id
       left join service_instances s on s.customer_id = r.customer_id and s.service_type = 'compute'
      where r.rank <= ?
     union all
     select null, null, null, coalesce(sum(queued), 0)::int, coalesce(sum(delayed), 0)::int, coalesce(sum(active), 0)::int, count(*)::int
       from ranked where rank > ?`,
      [top, top],
    );
  const size = (row: { queued: number; delayed: number; active: number }) => row.queued + row.delayed + row.active;
  const otherRow = rows.find((row) => row.customerId === null);
  return {
    top: rows
      .filter((row): row is typeof row & { customerId: string } => row.customerId !== null)
      .map(({ customers: _customers, ...row }) => row)
      .sort((a, b) => size(b) - size(a) || a.customerId.localeCompare(b.customerId)),
    other: {
      customers: otherRow?.customers ?? 0,
      queued: otherRow?.queued ?? 0,
      delayed: otherRow?.delayed ?? 0,
      active: otherRow?.active ?? 0,
    },
  };
}
