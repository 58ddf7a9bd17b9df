import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord, JobState } from '../entities/job-record.entity.js';
import { jobSelectList } from './job-columns.js';

const unfinishedJobProperties = [
  'id',
  'queueJobId',
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

/** Accepted jobs not yet final and older than `graceMs`, oldest first, after `afterId` (keyset). */
export async function listUnfinishedJobs(
  em: EntityManager,
  graceMs: number,
  afterId: string | null,
  limit: number,
): Promise<UnfinishedJob[]> {
  return em.getConnection().execute<UnfinishedJob[]>(
    `select ${unfinishedJobColumns}
       from jobs
      where state in ('queued', 'delayed', 'active')
        and created_at < now() - (? * interval '1 millisecond')
        and id > ?
      order by id
      limit ?`,
    [graceMs, afterId ?? '00000000-0000-0000-0000-000000000000', limit],
  );
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
