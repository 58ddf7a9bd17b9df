import { QueueEvents } from 'bullmq';
import { EventEmitter } from 'node:events';
import { finalStates, type JobRecord } from '../db/entities/job-record.entity.js';
import type { FinishedJobNotice, StoredJob } from '../db/jobs/job-columns.js';
import { jobWaits } from '../lib/metrics/catalog.js';
import { createRedis, type RedisClient, type RedisTarget } from '../lib/redis.js';

export type JobEvent =
  | { jobId: string; event: 'active' | 'waiting' | 'delayed' | 'completed' | 'failed' | 'removed' }
  | { jobId: string; event: 'progress'; data: unknown };

/** Not a job id (a symbol can never collide with one): emitted when the waiter closes. */
const closing = Symbol('closing');

/** While waiting, the row is re-read this often in case a notice was lost (notices are not queued). */
export const waitPollMs = 1000;

/** A stream entry's id (`<ms>-<seq>`): QueueEvents passes it last with every event it reads. */
const streamEntryId = /^\d+-\d+$/;

/** Longest pause before reopening a queue's event stream whose reader keeps stopping where it started, in ms. */
const maxReopenDelayMs = 5000;

/** One queue's event stream, read by a QueueEvents on a blocking connection of its own. */
interface EventReader {
  events: QueueEvents;
  connection: RedisClient;
}

/**
 * How an API process hears about jobs that any worker runs.
 *
 * `Prefer: wait` listens for the finished-job notices (queue/job-notices.ts: PostgreSQL NOTIFY sent by
 * the worker's final write), which carry the stored row; a waiter also re-reads the row every second,
 * so a lost notice costs a second, not the whole wait. The SSE stream listens to BullMQ's event streams (QueueEvents), each queue's opened on
 * the first subscriber to one of its jobs: reading every event of every queue costs CPU (and, with sharded
 * queues, a blocking connection per queue) that an API nobody streams from should not spend. The PostgreSQL row stays the truth.
 */
export class JobWaiter {
  private readonly events = new EventEmitter();
  private readonly notices = new EventEmitter();
  /** Open event streams by queue name. */
  private readonly queueEvents = new Map<string, EventReader>();
  private closed = false;

  /**
   * @param queuesOfJob the queues a job with this id may be on: one per job type, its shard for the id
   *   (`queues.types().map((type) => queues.forJob(type, id).name)`); a subscriber does not know the type.
   */
  constructor(
    private readonly redis: RedisTarget,
    private readonly prefix: string,
    private readonly queuesOfJob: (jobId: string) => string[],
  ) {
    this.events.setMaxListeners(0);
    this.notices.setMaxListeners(0);
  }

  /** Hands a finished-job notice to whoever watches that job here (the FinishedJobListener calls it). */
  receive(notice: FinishedJobNotice): void {
    this.notices.emit(notice.id, notice);
  }

  /**
   * Starts listening for one job's notice. Call it before the job is enqueued when the caller will wait
   * for it: a notice is not kept for anyone who was not listening when it arrived.
   */
  watch(jobId: string): JobWatch {
    return new JobWatch(this.notices, jobId);
  }

  /** `watch(job.id).until(…)` for a job that was already enqueued (its notice may be missed: then the poll finds the row). */
  async waitForFinal(job: StoredJob, timeoutMs: number, reread: () => Promise<JobRecord | null>): Promise<StoredJob> {
    const watch = this.watch(job.id);
    try {
      return await watch.until(job, timeoutMs, reread);
    } finally {
      watch.stop();
    }
  }

  /**
   * Waits for many jobs at once (a bulk submit's `Prefer: wait`) until every one is final or `timeoutMs` has
   * passed, and returns the state last seen of each, by id. Only states are kept (never a row: a thousand big
   * results are not held here). Their notices are listened for together, and the unfinished ones' states are
   * re-read in one query: at once (a job may have finished before this listened), when a notice came without
   * its row, and every `waitPollMs`.
   */
  async waitForStates(
    jobs: ReadonlyArray<Pick<JobRecord, 'id' | 'state'>>,
    timeoutMs: number,
    rereadStates: (ids: string[]) => Promise<ReadonlyArray<Pick<JobRecord, 'id' | 'state'>>>,
  ): Promise<Map<string, JobRecord['state']>> {
    const states = new Map(jobs.map((job) => [job.id, job.state]));
    let unfinished = jobs.filter((job) => !finalStates.includes(job.state)).length;
    const record = (id: string, state: JobRecord['state']) => {
      const before = states.get(id);
      if (before === undefined || finalStates.includes(before)) return;
      states.set(id, state);
      if (finalStates.includes(state)) unfinished--;
    };
    let wake: () => void = () => undefined;
    // At once (a job may have finished before this listened), after a notice without its row, and every waitPollMs.
    let reread = true;
    const onNotice = (notice: FinishedJobNotice) => {
      // A row over NOTIFY's 8,000 bytes comes as its id alone: final, but completed or failed only its row says.
      if (notice.state === undefined) reread = true;
      else record(notice.id, notice.state);
      wake();
    };
    for (const id of states.keys()) this.notices.on(id, onNotice);
    try {
      const deadline = Date.now() + timeoutMs;
      while (unfinished > 0) {
        if (reread) {
          reread = false;
          const waiting = [...states].filter(([, state]) => !finalStates.includes(state)).map(([id]) => id);
          for (const row of await rereadStates(waiting)) record(row.id, row.state);
          continue;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        let timer: NodeJS.Timeout | undefined;
        const noticed = await new Promise<boolean>((resolve) => {
          wake = () => resolve(true);
          timer = setTimeout(() => resolve(false), Math.min(remaining, waitPollMs));
        });
        clearTimeout(timer);
        if (!noticed) reread = true;
      }
    } finally {
      for (const id of states.keys()) this.notices.off(id, onNotice);
    }
    return states;
  }

  /**
   * Calls `listener` for each BullMQ event of this job until the returned function is called. The
   * first subscriber to a job of a queue opens that queue's event stream, reading from a few seconds back
   * so that nothing between this call and the first read is missed (a subscriber sees those events again:
   * the SSE stream never moves back on one).
   */
  subscribe(jobId: string, listener: (event: JobEvent) => void): () => void {
    for (const name of this.queuesOfJob(jobId)) this.openEventStream(name);
    this.events.on(jobId, listener);
    return () => this.events.off(jobId, listener);
  }

  /**
   * Starts reading queue `name`'s event stream after entry `from` (a few seconds back by default). A reader
   * whose loop ends (QueueEvents ends it for good when an entry does not parse, such as a `completed` without
   * its `returnvalue`) is replaced by a new one that resumes after the last entry read, past the bad entry:
   * one malformed event must not leave every stream on the queue deaf until the process restarts.
   * `failures`: readers in a row that stopped before reading anything (they back off).
   */
  private openEventStream(name: string, from = `${Date.now() - 5000}-0`, failures = 0): void {
    if (this.closed || this.queueEvents.has(name)) return;
    // Its own blocking connection (XREAD BLOCK), a cluster client when Redis is a cluster; closed with the stream.
    const connection = createRedis(this.redis, 'blocking');
    // Not autorun: this awaits its loop, to notice it ending.
    const events = new QueueEvents(name, { connection, prefix: this.prefix, lastEventId: from, autorun: false });
    const reader: EventReader = { events, connection };
    // The last entry QueueEvents handled, of any kind (every one it reads is emitted with its id last, unless
    // it failed to parse): a new reader resumes after it.
    let lastRead = from;
    const emit = events.emit.bind(events) as (event: string, ...args: unknown[]) => boolean;
    (events as unknown as { emit: typeof emit }).emit = (event, ...args) => {
      const heard = emit(event, ...args);
      const id = args.at(-1);
      if (typeof id === 'string' && streamEntryId.test(id)) lastRead = id;
      return heard;
    };
    for (const event of ['active', 'waiting', 'delayed', 'completed', 'failed', 'removed'] as const) {
      events.on(event, ({ jobId }: { jobId: string }) => this.events.emit(jobId, { jobId, event }));
    }
    events.on('progress', ({ jobId, data }) => this.events.emit(jobId, { jobId, event: 'progress', data }));
    // Errors it survives (a failed read is tried again); one that ends its loop rejects run(), handled below.
    events.on('error', () => undefined);
    this.queueEvents.set(name, reader);

    const stopped = async (error: unknown) => {
      if (this.closed || this.queueEvents.get(name) !== reader) return;
      let resumeAfter = lastRead;
      try {
        // The entry after the last one read is what stopped it: one that did not parse (JSON.parse threw), or one a
        // reader already stopped at without reading anything. It is skipped; events of other jobs are all it may hold.
        if (error instanceof SyntaxError || (lastRead === from && failures > 0)) {
          const bad = await connection.xrange(events.toKey('events'), `(${lastRead}`, '+', 'COUNT', 1);
          resumeAfter = bad[0]?.[0] ?? lastRead;
        }
      } catch {
        // Redis did not answer: the new reader starts after the last entry read, and skips the bad one next time.
      } finally {
        void events.close().catch(() => undefined);
        connection.disconnect();
        // Stopped again where it started: back off (Redis may be failing), up to maxReopenDelayMs.
        const nextFailures = resumeAfter === from ? failures + 1 : 0;
        const pause = nextFailures === 0 ? 0 : Math.min(maxReopenDelayMs, 100 * 2 ** (nextFailures - 1));
        setTimeout(() => {
          if (this.queueEvents.get(name) !== reader) return;
          this.queueEvents.delete(name);
          this.openEventStream(name, resumeAfter, nextFailures);
        }, pause).unref();
      }
    };
    void events.run().then(
      () => stopped(null),
      (error: unknown) => stopped(error),
    );
  }

  /** Calls `listener` once when the waiter closes (the process is shutting down), so open streams can end. */
  onClose(listener: () => void): () => void {
    this.events.once(closing, listener);
    return () => this.events.off(closing, listener);
  }

  /** How many event subscribers this job has in this process (tests check that streams clean up). */
  listenerCount(jobId: string): number {
    return this.events.listenerCount(jobId);
  }

  async close(): Promise<void> {
    this.events.emit(closing);
    this.closed = true;
    await Promise.all(
      [...this.queueEvents.values()].map(async ({ events, connection }) => {
        await events.close();
        connection.disconnect();
      }),
    );
  }
}

/** One job's finished-job notice, listened for from `JobWaiter.watch` until `stop()`. */
export class JobWatch {
  private noticed: StoredJob | null = null;
  /** A notice came without its row: read it instead of waiting for the next poll. */
  private readPending = false;
  private wake: () => void = () => undefined;
  private readonly onNotice = (notice: FinishedJobNotice) => {
    // A notice without the row (too big to send) only wakes the wait, which then reads the row.
    if (notice.state !== undefined) this.noticed = notice;
    else this.readPending = true;
    this.wake();
  };

  constructor(
    private readonly notices: EventEmitter,
    private readonly jobId: string,
  ) {
    notices.on(jobId, this.onNotice);
  }

  /**
   * Waits until the job is final or `timeoutMs` has passed, and returns the latest row seen: `job` as
   * accepted, the row from the notice, or what `reread` fetched (it is polled every `waitPollMs`).
   */
  async until(job: StoredJob, timeoutMs: number, reread: () => Promise<JobRecord | null>): Promise<StoredJob> {
    let latest: StoredJob = this.noticed ?? job;
    let answeredBy: 'notice' | 'poll' | null = this.noticed || this.readPending ? 'notice' : null;
    if (!this.noticed && this.readPending) latest = (await reread()) ?? latest;
    const deadline = Date.now() + timeoutMs;
    while (!finalStates.includes(latest.state)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      const noticed = await new Promise<boolean>((resolve) => {
        this.wake = () => resolve(true);
        timer = setTimeout(() => resolve(false), Math.min(remaining, waitPollMs));
      });
      clearTimeout(timer);
      answeredBy = noticed ? 'notice' : 'poll';
      latest = noticed && this.noticed ? this.noticed : ((await reread()) ?? latest);
    }
    if (!finalStates.includes(latest.state)) jobWaits.inc({ answered_by: 'timeout' });
    else if (answeredBy) jobWaits.inc({ answered_by: answeredBy });
    return latest;
  }

  stop(): void {
    this.notices.off(this.jobId, this.onNotice);
  }
}
