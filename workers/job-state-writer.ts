import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { GroupCommit } from '../db/group-commit.js';
import {
  writeActiveStates,
  writeFinalStates,
  writeHandedBackStates,
  writeProgress,
  type ActiveState,
  type FinalState,
} from '../db/jobs/job-states.js';
import { storableText } from '../jobs/storable-text.js';

/** `startedAt`: when the attempt began (epoch ms, this process's clock); null when this process did not run it. */
type StateWrite =
  | { kind: 'active'; id: string; attemptsMade: number; startedAt: number }
  | { kind: 'progress'; id: string; value: unknown }
  | { kind: 'handedBack'; id: string; attemptsMade: number }
  | ({ kind: 'final' } & FinalState);
type FinalWrite = Extract<StateWrite, { kind: 'final' }>;

export interface JobStateWriterOptions {
  /** Rows per statement. Default 500. */
  maxBatch?: number;
  /** How long a flush keeps retrying while PostgreSQL is unreachable, in ms. Default 60,000. */
  retryForMs?: number;
  /**
   * A job is shown `active` only once it has run this long, in ms; a job that finishes sooner goes
   * straight from `queued` to its outcome, saving a write per job (its start time goes out with the
   * outcome instead). Default 100.
   */
  activeAfterMs?: number;
  /**
   * Least time between two writes under load, in ms (see GroupCommit). These commits do not wait for
   * the disk, so without it a busy worker would write a handful of rows per statement. Default 3.
   */
  lingerMs?: number;
}

/**
 * Writes job state to PostgreSQL in batches (a GroupCommit): when idle, a write goes out at once;
 * under load, writes gather for a few milliseconds and go out together as one UPDATE per kind. A
 * processor awaits its final write, so BullMQ never marks a job completed before its result is stored. Final states are never overwritten (the writes are idempotent), except that a later attempt
 * may reopen a `failed` row: that is a retry an operator asked for (Bull Board's Retry; BullMQ keeps
 * counting attempts).
 */
export class JobStateWriter {
  /** Attempts running in this process; `timer` is set while their `active` write is still waiting. */
  private readonly running = new Map<string, { attemptsMade: number; startedAt: number; timer: NodeJS.Timeout | null }>();
  private readonly writes: GroupCommit<StateWrite>;
  /**
   * Outcomes someone waits for (`notify`: a `Prefer: wait` call) go out in writes of their own, at once: behind
   * a flood's batch in flight (hundreds of rows, 20–30 ms on a busy machine) the waiting call took that long more.
   */
  private readonly awaitedWrites: GroupCommit<StateWrite>;
  private readonly retryForMs: number;
  private readonly activeAfterMs: number;

  constructor(
    private readonly em: EntityManager,
    private readonly logger: Logger,
    /** Where a final write someone waits for (`notify`) is announced: `finishedJobsChannel(queuePrefix)`. */
    private readonly noticeChannel: string,
    options: JobStateWriterOptions = {},
  ) {
    this.retryForMs = options.retryForMs ?? 60_000;
    this.activeAfterMs = options.activeAfterMs ?? 100;
    this.writes = new GroupCommit((batch) => this.withRetry(() => this.write(batch)), {
      maxBatch: options.maxBatch ?? 500,
      lingerMs: options.lingerMs ?? 3,
    });
    this.awaitedWrites = new GroupCommit((batch) => this.withRetry(() => this.write(batch)), { maxBatch: options.maxBatch ?? 500 });
  }

  /**
   * Records that an attempt started at `startedAt`: written `active` (with that start time) once it has
   * run `activeAfterMs`, else only with its outcome. Not awaited; best effort, batched.
   */
  markActive(id: string, attemptsMade: number, startedAt = Date.now()): void {
    this.settle(id);
    const attempt = { attemptsMade, startedAt, timer: null as NodeJS.Timeout | null };
    attempt.timer = setTimeout(() => {
      attempt.timer = null;
      this.bestEffort({ kind: 'active', id, attemptsMade, startedAt });
    }, this.activeAfterMs);
    attempt.timer.unref();
    this.running.set(id, attempt);
  }

  /**
   * Writes `active` now and resolves once it is stored (or could not be: a job need not wait for its
   * state to show), for jobs that always run long: a batch reads `active` before its first item is stored.
   */
  async markActiveNow(id: string, attemptsMade: number, startedAt = Date.now()): Promise<void> {
    this.settle(id);
    this.running.set(id, { attemptsMade, startedAt, timer: null });
    await this.writes
      .add({ kind: 'active', id, attemptsMade, startedAt })
      .catch((error: unknown) => this.logger.warn({ err: error, jobId: id }, 'job state write failed'));
  }

  /** The attempt ended: no `active` write is needed any more if it has not gone out yet. Returns when it started. */
  private settle(id: string): number | null {
    const attempt = this.running.get(id);
    if (!attempt) return null;
    if (attempt.timer) clearTimeout(attempt.timer);
    this.running.delete(id);
    return attempt.startedAt;
  }

  /**
   * The attempts of `ids` running here were handed back to their queues unspent (shutdown): their rows read
   * `queued` again, as before the attempt began (db/jobs/job-states.ts `writeHandedBackStates`), and no `active`
   * write of theirs goes out any more. Ids with no attempt running here are skipped. Resolves once stored.
   */
  async markHandedBack(ids: Iterable<string>): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const id of ids) {
      const attempt = this.running.get(id);
      if (!attempt) continue;
      // Kept in `running`, so an outcome that still comes before the refusal is stored with its start time.
      if (attempt.timer) clearTimeout(attempt.timer);
      attempt.timer = null;
      writes.push(this.writes.add({ kind: 'handedBack', id, attemptsMade: attempt.attemptsMade }));
    }
    await Promise.all(writes);
  }

  /** Records progress for GET /jobs/:id. Best effort, batched; only while the job is active. */
  markProgress(id: string, value: unknown): void {
    this.bestEffort({ kind: 'progress', id, value });
  }

  /** Active and progress writes are not awaited; a lost one is corrected by the final write. */
  private bestEffort(write: StateWrite): void {
    this.writes.add(write).catch((error: unknown) => this.logger.warn({ err: error, jobId: write.id }, 'job state write failed'));
  }

  /** Stores the outcome; with `notify`, the same statement announces the stored row (queue/job-notices.ts). */
  complete(id: string, result: unknown, attemptsMade: number, notify = false): Promise<void> {
    return this.push({ kind: 'final', id, state: 'completed', result, error: null, attemptsMade, notify, startedAt: null });
  }

  fail(id: string, error: string, attemptsMade: number, notify = false): Promise<void> {
    return this.push({ kind: 'final', id, state: 'failed', result: null, error, attemptsMade, notify, startedAt: null });
  }

  /** An attempt failed and BullMQ will retry: back to queued, with the error so far. */
  async retrying(id: string, error: string, attemptsMade: number): Promise<void> {
    await this.push({ kind: 'final', id, state: 'queued', result: null, error, attemptsMade, notify: false, startedAt: null });
  }

  /** The outcome carries the attempt's start time, so a job that never got its `active` write still has one. */
  private push(write: FinalWrite): Promise<void> {
    write.startedAt = this.settle(write.id);
    // An error message may quote user data PostgreSQL cannot store; it must not fail the batch it joins.
    if (write.error !== null) write.error = storableText(write.error);
    return (write.notify ? this.awaitedWrites : this.writes).add(write);
  }

  /** Writes everything pending now; resolves when it is stored. */
  async drain(): Promise<void> {
    for (const [id, attempt] of this.running) {
      // Jobs still running when we drain (shutdown) whose `active` write is still waiting: write it now (a
      // handed-back attempt has none waiting: `markHandedBack` dropped it).
      if (!attempt.timer) continue;
      clearTimeout(attempt.timer);
      attempt.timer = null;
      this.bestEffort({ kind: 'active', id, attemptsMade: attempt.attemptsMade, startedAt: attempt.startedAt });
    }
    await Promise.all([this.writes.drain(), this.awaitedWrites.drain()]);
  }

  /** One statement per kind of write (db/jobs/job-states.ts); the last write per id wins within a batch (a retry then a completion, say). */
  private async write(batch: StateWrite[]): Promise<void> {
    const actives = new Map<string, ActiveState>();
    const progress = new Map<string, unknown>();
    const handedBack = new Map<string, number>();
    const finals = new Map<string, FinalWrite>();
    for (const write of batch) {
      if (write.kind === 'active') actives.set(write.id, { attempts: write.attemptsMade, started: write.startedAt });
      else if (write.kind === 'progress') progress.set(write.id, write.value);
      else if (write.kind === 'handedBack') handedBack.set(write.id, write.attemptsMade);
      else finals.set(write.id, write);
    }
    if (actives.size > 0) await writeActiveStates(this.em, actives);
    if (progress.size > 0) await writeProgress(this.em, progress);
    // After the `active` writes (a hand-back undoes one in the same batch), before the outcomes (one that came
    // after the hand-back is the job's).
    if (handedBack.size > 0) await writeHandedBackStates(this.em, handedBack);
    if (finals.size > 0) await writeFinalStates(this.em, finals, this.noticeChannel);
  }

  private async withRetry<T>(write: () => Promise<T>): Promise<T> {
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
