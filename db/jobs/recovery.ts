import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord, JobState } from '../entities/job-record.entity.js';
import { jobSelectList } from './job-columns.js';
import { executePreparedWithSettings } from '../prepared.js';

const unfinishedJobProperties = [
  'id',
  'queueJobId',
  'bundleId',
  'type',
  'state',
  'customerId',
  'payload',
  'maxAttempts',
  'priority',
  'delayMs',
  'webhookUrl',
  'createdAt',
] as const;

/** What the sweeper needs of an accepted job not yet final. */
export type UnfinishedJob = Omit<Pick<JobRecord, (typeof unfinishedJobProperties)[number]>, 'state'> & {
  state: Extract<JobState, 'queued' | 'delayed' | 'active'>;
};

const unfinishedJobColumns = jobSelectList(unfinishedJobProperties);

/** Where a pass over the unfinished jobs stopped: the last row's `created_at` (as PostgreSQL wrote it, to the microsecond) and id. */
export interface UnfinishedJobsCursor {
  createdAt: string;
  id: string;
}

export const unfinishedJobsStatement = `select ${unfinishedJobColumns}, created_at::text as "cursor"
   from jobs
  where state in ('queued', 'delayed', 'active')
    and created_at < now() - ($1 * interval '1 millisecond')
    and (created_at, id) > ($2::timestamptz, $3::uuid)
  order by created_at, id
  limit $4`;

/**
 * A partition's statistics nearly always predate its latest burst (few unfinished rows, or none), and with
 * them a bitmap scan and a sort look cheapest. A bitmap scan never marks an index entry dead, though, so every
 * pass would visit again each entry that the queued and active versions of finished jobs left in the partial
 * indexes until VACUUM (45 ms a pass after a 65,000-job drain); and a sort reads every unfinished row before the
 * first page, a backlog's too. So the sweeper's read is the ordered scan of `jobs_unfinished_index` that stops at
 * its page, marking what it passes dead once; transaction-local settings, the only way PostgreSQL takes such a hint.
 *
 * The plan is generic, made once per connection: a custom plan for `created_at < now() - …` asks the index for
 * its actual greatest `created_at` (the cutoff lies past the statistics' histogram), and that probe walks back
 * over every entry the jobs finished since the last VACUUM left at the index's right end — about 10 ms of
 * planning a pass after a 90,000-job drain, more than the pass's own scan once those entries are marked dead.
 */
export const unfinishedJobsPlanSettings = `select set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true),
  set_config('plan_cache_mode', 'force_generic_plan', true)`;

/**
 * Accepted jobs not yet final and older than `graceMs`, oldest first, after `after` (keyset), and the cursor
 * after the last. Ordered as `jobs_unfinished_index` is, so the read is one ordered index scan that stops at
 * `limit`; a plain index scan also marks the entries of jobs finished since the last pass dead as it meets them,
 * so the next pass skips them (bitmap scans never do).
 */
export async function listUnfinishedJobs(
  em: EntityManager,
  graceMs: number,
  after: UnfinishedJobsCursor | null,
  limit: number,
): Promise<{ rows: UnfinishedJob[]; next: UnfinishedJobsCursor | null }> {
  const rows = await executePreparedWithSettings<UnfinishedJob & { cursor: string }>(
    em,
    unfinishedJobsPlanSettings,
    'jobs-list-unfinished',
    unfinishedJobsStatement,
    [graceMs, after?.createdAt ?? '-infinity', after?.id ?? '00000000-0000-0000-0000-000000000000', limit],
  );
  const last = rows.at(-1);
  return {
    rows: rows.map(({ cursor: _cursor, ...row }) => row),
    next: last ? { createdAt: last.cursor, id: last.id } : null,
  };
}

/** A job Redis lost while it ran goes back to queued before it is enqueued again. */
export async function requeueLostJobs(em: EntityManager, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await em.getConnection().execute(`update jobs set state = 'queued' where id in (?) and state = 'active'`, [ids]);
}

/** Copies an outcome BullMQ recorded into a row that never got it (a state write lost with PostgreSQL). */
export async function recordLostOutcome(
  em: EntityManager,
  outcome: { id: string; state: 'completed' | 'failed'; result: unknown; error: string | null; attemptsMade: number },
): Promise<boolean> {
  const rows = await em.getConnection().execute<unknown[]>(
    `update jobs set state = ?, result = ?::jsonb, error = ?, attempts_made = greatest(attempts_made, ?), finished_at = coalesce(finished_at, now())
      where id = ? and state not in ('completed', 'failed', 'cancelled') returning id`,
    [outcome.state, outcome.result === undefined ? null : JSON.stringify(outcome.result), outcome.error, outcome.attemptsMade, outcome.id],
  );
  return rows.length > 0;
}

/**
 * A durability barrier: a statement whose commit writes a record (the transaction id forces one) and waits
 * for the disk, which flushes every quick (`synchronous_commit = off`) commit made before it. Once it
 * returns, every job state committed before it was called survives a PostgreSQL crash.
 */
export async function waitForDurableCommits(em: EntityManager): Promise<void> {
  await em.getConnection().execute(`select txid_current() as xid`);
}

/** Of `ids`, those whose row holds a final state (completed, failed, cancelled). */
export async function finalJobIds(em: EntityManager, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await em
    .getConnection()
    .execute<Array<{ id: string }>>(`select id from jobs where id = any(?::uuid[]) and state in ('completed', 'failed', 'cancelled')`, [
      `{${ids.join(',')}}`,
    ]);
  return new Set(rows.map((row) => row.id));
}
