import type { EntityManager } from '@mikro-orm/postgresql';
import type { Tier } from '../entities/service-instance.entity.js';
import { finalStates } from '../entities/job-record.entity.js';

/**
 * Retention of finished jobs (SPEC §9), in steps that each read or delete at most `stepRows` rows, every
 * statement its own short transaction: no long locks, and a run stopped between steps loses nothing.
 *
 * A step reads the next `stepRows` jobs in id order (ids are UUIDv7, so id order is creation order, and
 * a job finished before a cutoff was created before it: the scan stops at the newest cutoff's id). Of
 * those it keeps every unfinished job and every job whose customer's tier keeps it longer; the rest go,
 * a batch's items first (in slices of `stepRows`, so a batch of 10,000 items is no one big statement),
 * then the jobs themselves.
 */

/** Days a finished job is kept, per tier of its customer's compute service; 0 keeps them for good. */
export type RetentionDays = Record<Tier, number>;

export interface ExpireJobsStep {
  /** The last job id read: the next step reads past it; null when nothing was left to read. */
  lastId: string | null;
  jobs: number;
  batchItems: number;
  /** Idempotency keys that named the deleted jobs: a key lives as long as its job. */
  idempotencyKeys: number;
}

/** The smallest UUIDv7 created at `at`: every job created before `at` has a smaller id. */
export function uuidv7Floor(at: Date): string {
  const hex = Math.max(0, Math.floor(at.getTime())).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/**
 * The id below which a row created `days` ago may have expired, with a margin of a 24th of a day (an hour) for clocks
 * apart; `daySeconds` is 86400 except in soaks that shorten the day.
 */
export function retentionScanBound(days: number, now: Date, daySeconds = 86_400): string {
  const dayMs = daySeconds * 1000;
  return uuidv7Floor(new Date(now.getTime() - days * dayMs + dayMs / 24));
}

/** The id below which a job may have expired: null when every tier keeps its jobs. */
export function jobScanBound(days: RetentionDays, now: Date, daySeconds = 86_400): string | null {
  const kept = Object.values(days).filter((d) => d > 0);
  if (kept.length === 0) return null;
  return retentionScanBound(Math.min(...kept), now, daySeconds);
}

const finalList = finalStates.map((state) => `'${state}'`).join(', ');

/** The job's cutoff: now() less its tier's days; null (never) for a tier that keeps its jobs. Parameters: pro, enterprise, starter days, seconds a day. */
const tierCutoff = `now() - (case coalesce(s.tier, 'starter') when 'pro' then ?::int when 'enterprise' then ?::int else ?::int end) * (?::int * interval '1 second')`;
const expiredJob = (alias: string) => `${alias}.state in (${finalList}) and ${alias}.finished_at < ${tierCutoff}`;
const daysParams = (days: RetentionDays, daySeconds = 86_400) => [
  days.pro || null,
  days.enterprise || null,
  days.starter || null,
  daySeconds,
];

/**
 * The end of a statement whose CTE `gone` deleted jobs (`returning id`): deletes the idempotency keys that
 * named them and selects `n` (jobs) and `keys`.
 */
export const deleteKeysOfGone = `keys as (delete from job_idempotency_keys where job_id in (select id from gone) returning 1)
     select (select count(*) from gone)::int as n, (select count(*) from keys)::int as keys`;

/**
 * Deletes the batch items of the jobs in `idArray` (a PostgreSQL uuid array literal), `stepRows` at a time, each
 * slice its own statement; returns how many went.
 */
export async function deleteBatchItemsOf(em: EntityManager, idArray: string, stepRows: number): Promise<number> {
  let deleted = 0;
  for (;;) {
    const [items] = await em.getConnection().execute<Array<{ n: number }>>(
      `with gone as (
         delete from batch_items where (batch_id, index) in (
           select batch_id, index from batch_items where batch_id = any(?::uuid[]) limit ?)
         returning 1)
       select count(*)::int as n from gone`,
      [idArray, stepRows],
    );
    deleted += items?.n ?? 0;
    if ((items?.n ?? 0) < stepRows) return deleted;
  }
}

/** One retention step over `jobs` after `afterId` and below `bound` (see above). */
export async function expireJobsStep(
  em: EntityManager,
  options: { afterId: string | null; bound: string; days: RetentionDays; stepRows: number; daySeconds?: number },
): Promise<ExpireJobsStep> {
  const connection = em.getConnection();
  const [scan] = await connection.execute<Array<{ last_id: string | null; ids: string[] }>>(
    `with scanned as (
       select id, customer_id, state, finished_at from jobs
        where id > ?::uuid and id < ?::uuid order by id limit ?)
     select (select id::text from scanned order by id desc limit 1) as last_id,
            (select coalesce(array_agg(j.id::text), '{}') from scanned j
               left join service_instances s on s.customer_id = j.customer_id and s.service_type = 'compute'
              where ${expiredJob('j')}) as ids`,
    [
      options.afterId ?? '00000000-0000-0000-0000-000000000000',
      options.bound,
      options.stepRows,
      ...daysParams(options.days, options.daySeconds),
    ],
  );
  const ids = scan?.ids ?? [];
  const idArray = `{${ids.join(',')}}`;
  if (ids.length === 0) return { lastId: scan?.last_id ?? null, jobs: 0, batchItems: 0, idempotencyKeys: 0 };
  // Items first, a slice at a time: the foreign key would cascade them anyway, but all at once.
  const batchItems = await deleteBatchItemsOf(em, idArray, options.stepRows);
  // The condition again: a failed job an operator retried since the read (writeActiveStates) stays.
  const [deleted] = await connection.execute<Array<{ n: number; keys: number }>>(
    `with gone as (
       delete from jobs where id in (
         select j.id from jobs j
           left join service_instances s on s.customer_id = j.customer_id and s.service_type = 'compute'
          where j.id = any(?::uuid[]) and ${expiredJob('j')})
       returning id),
     ${deleteKeysOfGone}`,
    [idArray, ...daysParams(options.days, options.daySeconds)],
  );
  return { lastId: scan!.last_id, jobs: deleted?.n ?? 0, batchItems, idempotencyKeys: deleted?.keys ?? 0 };
}
