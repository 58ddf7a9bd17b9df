import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobRecord } from '../entities/job-record.entity.js';
import { executePrepared } from '../prepared.js';
import { jsonArrayChunks, statementJsonMaxChars } from '../../lib/json-chunks.js';
import { asyncCommit, idRange, idsWithin, notifyFinishedJobs, shownJobColumns, stateIn, type ShownJob } from './job-columns.js';

/**
 * The state changes of running jobs, written by the workers' JobStateWriter in batches: one prepared
 * statement per kind of write, its rows passed as one JSON parameter (jsonb_to_recordset: no per-row
 * bindings to format and send) and their ids as an array with the range they span, so that the plan (made
 * once, whatever the table's size then; `idsWithin` says how it stays made once) finds the rows through the
 * primary key of the partitions that range reaches instead of hashing the table, and tests their states only on
 * the rows found (`stateIn` and the CASEs below; job-columns.ts says why): a backlog of unfinished rows costs a
 * batch nothing; each commits
 * without waiting for the WAL flush (`synchronous_commit = off`, set inside the statement so it needs no
 * transaction round trips): if PostgreSQL crashes in the next few hundred ms and loses this write, the row
 * is still `active` while BullMQ holds the outcome, and the sweeper copies the outcome from Redis (or, if
 * Redis lost it too, runs the job again). Accepting a job, by contrast, always waits for the disk.
 *
 * A start time comes from the worker's clock (epoch ms): it is kept between the row's `created_at` and
 * the database's `now()`, so clocks a little apart never show a job started before it was accepted or
 * after it finished. An outcome whose start the worker does not know (BullMQ failed a stalled job) is
 * given its finishing time.
 */

/** The stored start of an attempt: its start time `v.started` (epoch ms) kept within the row's life so far; `now()` when unknown. */
const startedAt = `greatest(j.created_at, least(to_timestamp(v.started / 1000), now()))`;

/** An attempt that has run a while: its attempt number and start (epoch ms). */
export interface ActiveState {
  attempts: number;
  started: number;
}

/**
 * Marks jobs `active`. A `failed` row comes back to life only for a later attempt than the one that
 * failed it: that is a retry an operator asked for (Bull Board's Retry; BullMQ keeps counting attempts).
 * A late write from the attempt that failed carries no higher count, and `cancelled` and `completed` rows
 * stay final.
 */
export const activeStatesStatement = `with ${asyncCommit}
     update jobs as j set state = 'active', started_at = coalesce(j.started_at, ${startedAt}), attempts_made = v.attempts,
            finished_at = case when j.state = 'failed' then null else j.finished_at end
       from jsonb_to_recordset($1::jsonb) as v(id uuid, attempts int, started float8), durability
      where ${idsWithin('j.id', '$2', '$3', '$4')} and j.id = v.id
        and case when j.state in ('queued', 'delayed') then true when j.state = 'failed' then v.attempts > j.attempts_made else false end`;

export async function writeActiveStates(em: EntityManager, actives: Map<string, ActiveState>): Promise<void> {
  await executePrepared(em, 'job-state-active', activeStatesStatement, [
    JSON.stringify([...actives].map(([id, attempt]) => ({ id, ...attempt }))),
    [...actives.keys()],
    ...idRange(actives.keys()),
  ]);
}

/** Records progress (GET /jobs/:id), only on rows still active. */
export const progressStatement = `with ${asyncCommit}
     update jobs as j set progress = v.progress
       from jsonb_to_recordset($1::jsonb) as v(id uuid, progress jsonb), durability
      where ${idsWithin('j.id', '$2', '$3', '$4')} and j.id = v.id and ${stateIn('j.state', ['active'])}`;

export async function writeProgress(em: EntityManager, progress: Map<string, unknown>): Promise<void> {
  await executePrepared(em, 'job-state-progress', progressStatement, [
    JSON.stringify([...progress].map(([id, value]) => ({ id, progress: value }))),
    [...progress.keys()],
    ...idRange(progress.keys()),
  ]);
}

/**
 * Puts rows back to `queued` for attempts handed back at shutdown (workers/shutdown.ts): BullMQ moved the job back
 * to wait without spending the attempt (`attempts`: the attempt's number), so the row reads as it did before the
 * attempt began — `attempts_made` one lower, and, when no attempt has been spent, no start time or progress, as a
 * job that never ran. Only a row still `active` for that attempt changes: an outcome stored meanwhile stays.
 */
export const handedBackStatesStatement = `with ${asyncCommit}
     update jobs as j set state = 'queued', attempts_made = v.attempts - 1,
            started_at = case when v.attempts = 1 then null else j.started_at end,
            progress = case when v.attempts = 1 then null else j.progress end
       from jsonb_to_recordset($1::jsonb) as v(id uuid, attempts int), durability
      where ${idsWithin('j.id', '$2', '$3', '$4')} and j.id = v.id
        and case when j.state = 'active' then j.attempts_made = v.attempts else false end`;

/** `attempts`: the number of the attempt handed back, by job id. */
export async function writeHandedBackStates(em: EntityManager, attempts: Map<string, number>): Promise<void> {
  await executePrepared(em, 'job-state-handed-back', handedBackStatesStatement, [
    JSON.stringify([...attempts].map(([id, attempt]) => ({ id, attempts: attempt }))),
    [...attempts.keys()],
    ...idRange(attempts.keys()),
  ]);
}

/** An attempt's outcome: final (`completed`, `failed`), or `queued` again while BullMQ retries. */
export interface FinalState {
  id: string;
  state: 'completed' | 'failed' | 'queued';
  result: unknown;
  error: string | null;
  attemptsMade: number;
  /** Someone waits for it (`Prefer: wait`): the statement announces the stored row (`notifyFinishedJobs`). */
  notify: boolean;
  /** When the attempt began (epoch ms); null when the writer does not know. */
  startedAt: number | null;
}

/**
 * Stores outcomes; never overwrites a final row, except that a later attempt may reopen a `failed` one
 * (see writeActiveStates). The rows someone waits for are announced on `noticeChannel` by the same
 * statement, so the notice leaves with the commit.
 */
export const finalStatesStatement = `with ${asyncCommit}, updated as (
       update jobs as j set state = v.state, result = v.result, error = v.error, attempts_made = v.attempts,
              started_at = coalesce(j.started_at, ${startedAt}),
              finished_at = case when v.state in ('completed', 'failed') then now() else null end
         from jsonb_to_recordset($1::jsonb) as v(id uuid, state text, result jsonb, error text, attempts int, notify boolean, started float8), durability
        where ${idsWithin('j.id', '$2', '$4', '$5')} and j.id = v.id
          and case when j.state in ('queued', 'delayed', 'active') then true when j.state = 'failed' then v.attempts > j.attempts_made else false end
       returning j.*, v.notify)
     ${notifyFinishedJobs('$3')}`;

export async function writeFinalStates(
  em: EntityManager,
  finals: Map<string, FinalState>,
  noticeChannel: string,
  /** Most characters of outcome JSON one statement carries (`jsonArrayChunks`): 500 results near 1 MiB are several. */
  maxChars = statementJsonMaxChars,
): Promise<void> {
  const outcomeJson = (w: FinalState) =>
    JSON.stringify({
      id: w.id,
      state: w.state,
      result: w.result ?? null,
      error: w.error,
      attempts: w.attemptsMade,
      notify: w.notify,
      started: w.startedAt,
    });
  for (const { items, json } of jsonArrayChunks([...finals.values()], outcomeJson, maxChars)) {
    const ids = items.map((w) => w.id);
    await executePrepared(em, 'job-state-final', finalStatesStatement, [json, ids, noticeChannel, ...idRange(ids)]);
  }
}

/** Marks a queued, delayed or active job cancelled; returns the row (its payload not read) when it changed. */
export async function cancelJobRow(em: EntityManager, customerId: string, id: string): Promise<ShownJob | null> {
  const rows = await em.getConnection().execute<ShownJob[]>(
    `update jobs set state = 'cancelled', finished_at = now(), error = coalesce(error, 'cancelled by the user')
      where id = ? and customer_id = ? and state in ('queued', 'delayed', 'active')
      returning ${shownJobColumns()}`,
    [id, customerId],
  );
  return rows[0] ?? null;
}

/** What a bulk cancel needs to take a job off its queue. */
export type CancelledJob = Pick<JobRecord, 'id' | 'customerId' | 'type' | 'queueJobId' | 'bundleId'>;

/** `cancelJobRow` for many jobs of any customers (an admin's bulk cancel): those still unfinished are cancelled. */
export async function cancelJobRows(em: EntityManager, ids: readonly string[], reason: string): Promise<CancelledJob[]> {
  if (ids.length === 0) return [];
  return em.getConnection().execute<CancelledJob[]>(
    `update jobs set state = 'cancelled', finished_at = now(), error = coalesce(error, ?)
      where id in (select (jsonb_array_elements_text(?::jsonb))::uuid) and state in ('queued', 'delayed', 'active')
      returning id, customer_id as "customerId", type, queue_job_id as "queueJobId", bundle_id as "bundleId"`,
    [reason, JSON.stringify(ids)],
  );
}
