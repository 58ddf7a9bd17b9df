import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';

interface FinalWrite {
  id: string;
  state: 'completed' | 'failed' | 'queued';
  result: unknown;
  error: string | null;
  attemptsMade: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface JobStateWriterOptions {
  /** Rows per statement. Default 500. */
  maxBatch?: number;
  /** How long a flush keeps retrying while PostgreSQL is unreachable, in ms. Default 60,000. */
  retryForMs?: number;
  /**
   * A job is shown `active` only once it has run this long, in ms; a job that finishes sooner goes
   * straight from `queued` to its outcome, saving a write per job. Default 50.
   */
  activeAfterMs?: number;
}

/**
 * Writes job state to PostgreSQL in batches (group commit): when idle, a write goes out at once; while a
 * flush is in flight, new writes gather and go out together in the next one UPDATE … FROM (VALUES …).
 * Low latency at low load, one statement per many jobs at high load. A processor awaits its final write,
 * so BullMQ never marks a job completed before its result is stored. Final states are never overwritten
 * (the writes are idempotent), except that a later attempt may reopen a `failed` row: that is a retry an
 * operator asked for (Bull Board's Retry; BullMQ keeps counting attempts).
 */
export class JobStateWriter {
  private finals: FinalWrite[] = [];
  private actives = new Map<string, number>();
  /** Attempts started less than `activeAfterMs` ago: their `active` write is still waiting. */
  private startingSoon = new Map<string, { timer: NodeJS.Timeout; attemptsMade: number }>();
  private progress = new Map<string, unknown>();
  private scheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private readonly maxBatch: number;
  private readonly retryForMs: number;
  private readonly activeAfterMs: number;

  constructor(
    private readonly em: EntityManager,
    private readonly logger: Logger,
    options: JobStateWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.retryForMs = options.retryForMs ?? 60_000;
    this.activeAfterMs = options.activeAfterMs ?? 50;
  }

  /** Records that an attempt started (once it has run `activeAfterMs`). Not awaited; best effort, batched. */
  markActive(id: string, attemptsMade: number): void {
    this.settle(id);
    const timer = setTimeout(() => {
      this.startingSoon.delete(id);
      this.actives.set(id, attemptsMade);
      this.schedule();
    }, this.activeAfterMs);
    timer.unref();
    this.startingSoon.set(id, { timer, attemptsMade });
  }

  /** The attempt ended: no `active` write is needed any more if it has not gone out yet. */
  private settle(id: string): void {
    const pending = this.startingSoon.get(id);
    if (pending) clearTimeout(pending.timer);
    this.startingSoon.delete(id);
  }

  /** Records progress for GET /jobs/:id. Best effort, batched; only while the job is active. */
  markProgress(id: string, value: unknown): void {
    this.progress.set(id, value);
    this.schedule();
  }

  complete(id: string, result: unknown, attemptsMade: number): Promise<void> {
    return this.push({ id, state: 'completed', result, error: null, attemptsMade });
  }

  fail(id: string, error: string, attemptsMade: number): Promise<void> {
    return this.push({ id, state: 'failed', result: null, error, attemptsMade });
  }

  /** An attempt failed and BullMQ will retry: back to queued, with the error so far. */
  retrying(id: string, error: string, attemptsMade: number): Promise<void> {
    return this.push({ id, state: 'queued', result: null, error, attemptsMade });
  }

  private push(write: Omit<FinalWrite, 'resolve' | 'reject'>): Promise<void> {
    this.settle(write.id);
    return new Promise((resolve, reject) => {
      this.finals.push({ ...write, resolve, reject });
      this.schedule();
    });
  }

  /** Queues a flush behind the one in flight (if any); writes made in the same tick share it. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flushing.then(() => this.flush());
    });
  }

  /** Writes everything pending now; resolves when it is stored. */
  async drain(): Promise<void> {
    for (const [id, { timer, attemptsMade }] of this.startingSoon) {
      // Jobs still running when we drain (shutdown): record them as started now.
      clearTimeout(timer);
      this.actives.set(id, attemptsMade);
    }
    this.startingSoon.clear();
    this.flushing = this.flushing.then(() => this.flush());
    await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.actives.size > 0 || this.progress.size > 0 || this.finals.length > 0) {
      const actives = [...this.actives];
      this.actives.clear();
      const progress = [...this.progress];
      this.progress.clear();
      const finals = this.finals.splice(0, this.maxBatch);
      try {
        await this.withRetry(() => this.write(actives, progress, finals));
        for (const write of finals) write.resolve();
      } catch (error) {
        for (const write of finals) write.reject(error);
      }
    }
  }

  /**
   * Everything pending in one transaction. The commit does not wait for the WAL flush
   * (`synchronous_commit = off`): if PostgreSQL crashes in the next few hundred ms and loses this write,
   * the row is still `active` while BullMQ holds the outcome, and the sweeper copies the outcome from
   * Redis (or, if Redis lost it too, runs the job again). Accepting a job, by contrast, always waits.
   */
  private async write(actives: Array<[string, number]>, progress: Array<[string, unknown]>, finals: FinalWrite[]): Promise<void> {
    await this.em.getConnection().getKnex().transaction(async (trx) => {
      await trx.raw('set local synchronous_commit = off');
      await this.writeIn({ execute: (sql: string, params: unknown[]) => trx.raw(sql, params as never[]) }, actives, progress, finals);
    });
  }

  private async writeIn(
    connection: { execute(sql: string, params: unknown[]): PromiseLike<unknown> },
    actives: Array<[string, number]>,
    progress: Array<[string, unknown]>,
    finals: FinalWrite[],
  ): Promise<void> {
    if (actives.length > 0) {
      await connection.execute(
        // A `failed` row comes back to life only for a later attempt than the one that failed it: that is a
        // retry an operator asked for (Bull Board's Retry; BullMQ keeps counting attempts). A late write from
        // the attempt that failed carries no higher count, and `cancelled` and `completed` rows stay final.
        `update jobs as j set state = 'active', started_at = coalesce(j.started_at, now()), attempts_made = v.attempts,
                finished_at = case when j.state = 'failed' then null else j.finished_at end
           from (values ${actives.map(() => '(?::uuid, ?::int)').join(', ')}) as v(id, attempts)
          where j.id = v.id and (j.state in ('queued', 'delayed') or (j.state = 'failed' and v.attempts > j.attempts_made))`,
        actives.flat(),
      );
    }
    if (progress.length > 0) {
      await connection.execute(
        `update jobs as j set progress = v.progress::jsonb
           from (values ${progress.map(() => '(?::uuid, ?::text)').join(', ')}) as v(id, progress)
          where j.id = v.id and j.state = 'active'`,
        progress.flatMap(([id, value]) => [id, JSON.stringify(value)]),
      );
    }
    if (finals.length > 0) {
      // The last write per id wins within a batch (a retry then a completion, say).
      const byId = new Map(finals.map((write) => [write.id, write]));
      const rows = [...byId.values()];
      await connection.execute(
        `update jobs as j set state = v.state, result = v.result::jsonb, error = v.error, attempts_made = v.attempts,
                finished_at = case when v.state in ('completed', 'failed') then now() else null end
           from (values ${rows.map(() => '(?::uuid, ?::text, ?::text, ?::text, ?::int)').join(', ')}) as v(id, state, result, error, attempts)
          where j.id = v.id and (j.state in ('queued', 'delayed', 'active') or (j.state = 'failed' and v.attempts > j.attempts_made))`,
        rows.flatMap((w) => [w.id, w.state, w.result === null || w.result === undefined ? null : JSON.stringify(w.result), w.error, w.attemptsMade]),
      );
    }
  }

  private async withRetry(write: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.retryForMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        const wait = Math.min(100 * 2 ** attempt, 2000);
        this.logger.warn({ err: error, retryInMs: wait }, 'job state write failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
}
