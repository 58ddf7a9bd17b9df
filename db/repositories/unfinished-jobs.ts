import type { EntityManager } from '@mikro-orm/postgresql';

export interface UnfinishedJob {
  id: string;
  queueJobId: string | null;
  type: string;
  state: 'queued' | 'delayed' | 'active';
  customerId: string;
  payload: unknown;
  maxAttempts: number;
  priority: number;
  delayMs: number;
  webhookUrl: string | null;
  createdAt: Date;
}

/** Accepted jobs not yet final and older than `graceMs`, oldest first, after `afterId` (keyset). */
export async function listUnfinishedJobs(em: EntityManager, graceMs: number, afterId: string | null, limit: number): Promise<UnfinishedJob[]> {
  return em.getConnection().execute<UnfinishedJob[]>(
    `select id, queue_job_id as "queueJobId", type, state, customer_id as "customerId", payload,
            max_attempts as "maxAttempts", priority, delay_ms as "delayMs", webhook_url as "webhookUrl", created_at as "createdAt"
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
