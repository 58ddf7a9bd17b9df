import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../lib/redis.js';
import type { Logger } from 'pino';
import type { ReleasableJob } from '../db/jobs/find-jobs.js';
import { fairQueueFront, type FairShare, type FinishedJob } from '../queue/fair-share/fair-share.js';
import type { QueuedJobData, QueuedJobHints } from '../queue/queues.js';

/** A released job ready for BullMQ: its row, the hints its submitter gave, and whether its customer is backlogged. */
export type ReleasedRow = ReleasableJob & { hints: QueuedJobHints; backlogged?: boolean };

export interface FairReleaserDeps {
  fair: FairShare;
  /** For the leader lock only. */
  redis: RedisClient;
  /** QUEUE_PREFIX; the tick's lock is `${prefix}:{fair-tick}:lock`. */
  prefix: string;
  /** The shards the leader tick serves: their queue keys (`Queue.qualifiedName`). */
  shardKeys: () => readonly string[];
  /** The rows of `ids` that are still releasable (`findReleasableJobs`). */
  readReleasable: (ids: readonly string[]) => Promise<ReleasableJob[]>;
  /** Adds released rows to the BullMQ queue of a shard, in one addBulk. */
  addToShard: (queueKey: string, rows: ReleasedRow[]) => Promise<unknown>;
  /** The customers an admin paused, as this process knows them: the leader copies them to every shard when it reconciles. */
  pausedCustomers?: () => readonly string[];
  logger: Logger;
}

export interface FairReleaserOptions {
  /** How often the leader releases with nothing finished, so a window never idles on a lost release, in ms. Default 200. */
  tickMs?: number;
  /** How often the leader repairs the in-flight accounting (`reconcile`), in ms. Default 15,000. */
  reconcileEveryMs?: number;
}

interface ShardState {
  pending: FinishedJob[];
  /** The flush under way, if any: one per shard, so releases of a shard never race each other. */
  flushing: Promise<void> | null;
}

/**
 * The addBulk entries of released rows, as `enqueue` shapes one job, under the row's id. No delay (a
 * delayed job is released once due) and no BullMQ priority (its lane ordered it). A job whose customer has
 * nothing more held goes to the front of the wait list (`fairQueueFront`), a backlogged customer's to the back.
 * (BullMQ priority 1 for the backlogged ones instead made B's jobs finish later in fair-bulk-backlog.test.ts.)
 */
export function bulkJobsOf(
  rows: readonly ReleasedRow[],
): Array<{ name: string; data: QueuedJobData; opts: { jobId: string; attempts: number; lifo?: boolean } }> {
  return rows.map((row) => ({
    name: row.type,
    data: { customerId: row.customerId, payload: row.payload, ...row.hints, ...(row.webhookUrl ? { hasWebhookUrl: true } : {}) },
    opts: { jobId: row.id, attempts: row.maxAttempts, ...(row.backlogged === false ? fairQueueFront : {}) },
  }));
}

const parseHints = (text: string): QueuedJobHints => (text === '' ? {} : (JSON.parse(text) as QueuedJobHints));

/**
 * The worker side of fair sharing (docs/design/queues-and-storage.md §2). Workers report finished jobs;
 * per shard they are batched into one release call, whose popped ids cost one PostgreSQL read and one
 * addBulk. A popped id whose row is no longer releasable (cancelled meanwhile) is reported back as not
 * run, freeing its slot. One process at a time (a Redis lock) also ticks every shard and, less often,
 * reconciles their in-flight accounting, so neither a lost release nor a crashed worker idles a window.
 */
export class FairReleaser {
  private readonly shards = new Map<string, ShardState>();
  private readonly owner = randomUUID();
  private readonly tickMs: number;
  private readonly reconcileEveryMs: number;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> = Promise.resolve();
  private lastReconcile = 0;

  constructor(
    private readonly deps: FairReleaserDeps,
    options: FairReleaserOptions = {},
  ) {
    this.tickMs = options.tickMs ?? 200;
    this.reconcileEveryMs = options.reconcileEveryMs ?? 15_000;
  }

  /** A job of `queueKey`'s shard finished (its final state written): charge it and release what fits. */
  finished(queueKey: string, job: FinishedJob): void {
    this.shard(queueKey).pending.push(job);
    this.schedule(queueKey);
  }

  /** Releases in `queueKey`'s shard now (after any flush under way); resolves when its pending work is done. */
  async flush(queueKey: string): Promise<void> {
    const shard = this.shard(queueKey);
    while (shard.flushing) await shard.flushing;
    await this.launch(queueKey, shard, false);
  }

  start(): void {
    const tick = () => {
      this.ticking = this.tickIfLeader()
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'fair-share tick failed; will try again'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.tickMs);
        });
    };
    this.timer = setTimeout(tick, this.tickMs);
  }

  /** Stops ticking, lets the flushes under way end and hands the lock on. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.ticking;
    await Promise.all([...this.shards.values()].map((shard) => shard.flushing));
    await this.deps.redis.eval(
      `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`,
      1,
      this.lockKey(),
      this.owner,
    );
  }

  /**
   * One leader tick: when this process holds (or takes) the lock, a reconcile of every shard when one is
   * due, then a release with nothing finished in every shard not flushing already. Every process also
   * retries here the batches of its own that a failed release kept.
   */
  async tickIfLeader(): Promise<boolean> {
    const held = await this.deps.redis.eval(
      `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
       if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
       return 0`,
      1,
      this.lockKey(),
      this.owner,
      this.tickMs * 5,
    );
    if (held !== 1) {
      // Not the leader: only retry this process's own batches that a failed release kept.
      await Promise.all(
        [...this.shards].map(([key, shard]) => (shard.pending.length > 0 && !shard.flushing ? this.flush(key) : undefined)),
      );
      return false;
    }
    const keys = this.deps.shardKeys();
    // Repair first, so a window it frees fills in the same tick.
    if (Date.now() - this.lastReconcile >= this.reconcileEveryMs) {
      this.lastReconcile = Date.now();
      for (const key of keys) {
        // The pause routes write each shard's copy; this repairs one Redis lost or a route failed to write.
        if (this.deps.pausedCustomers) await this.deps.fair.syncPaused(key, this.deps.pausedCustomers());
        const dropped = await this.deps.fair.reconcile(key);
        if (dropped > 0) this.deps.logger.warn({ shard: key, dropped }, 'fair share dropped in-flight jobs BullMQ no longer runs');
      }
    }
    await Promise.all(keys.map((key) => (this.shard(key).flushing ? undefined : this.flush(key))));
    return true;
  }

  private lockKey(): string {
    // Its own hash tag: a single key, placed on whichever master its tag hashes to.
    return `${this.deps.prefix}:{fair-tick}:lock`;
  }

  private shard(queueKey: string): ShardState {
    let shard = this.shards.get(queueKey);
    if (!shard) this.shards.set(queueKey, (shard = { pending: [], flushing: null }));
    return shard;
  }

  /** Flushes on the next turn of the event loop, so the jobs that finish together share one call. */
  private schedule(queueKey: string): void {
    const shard = this.shard(queueKey);
    if (!shard.flushing) void this.launch(queueKey, shard, true); // else the flush under way takes the new ones
  }

  private launch(queueKey: string, shard: ShardState, deferred: boolean): Promise<void> {
    const ran = deferred
      ? new Promise((resolve) => setImmediate(resolve)).then(() => this.run(queueKey, shard))
      : this.run(queueKey, shard);
    shard.flushing = ran
      .catch(() => false)
      .then((ok) => {
        shard.flushing = null;
        // Jobs that finished as it ended; after a failure the next tick retries instead.
        if (ok && shard.pending.length > 0) this.schedule(queueKey);
      });
    return shard.flushing;
  }

  /** Release calls until nothing is pending: one release, one PostgreSQL read and one addBulk each. */
  private async run(queueKey: string, shard: ShardState): Promise<boolean> {
    let first = true;
    while (first || shard.pending.length > 0) {
      first = false;
      const batch = shard.pending.splice(0);
      let released;
      try {
        released = await this.deps.fair.release(queueKey, batch);
      } catch (error) {
        // Nothing was charged: keep the batch for the next tick.
        shard.pending.unshift(...batch);
        this.deps.logger.warn({ err: error, shard: queueKey }, 'fair-share release failed; the next tick tries again');
        return false;
      }
      if (released.length === 0) continue;
      try {
        const rows = await this.deps.readReleasable(released.map((job) => job.id));
        const byId = new Map(rows.map((row) => [row.id, row]));
        const ready: ReleasedRow[] = [];
        for (const job of released) {
          const row = byId.get(job.id);
          if (row) ready.push({ ...row, hints: parseHints(job.hints), backlogged: job.backlogged });
          // Cancelled or finished meanwhile: free its slot, refund its charge.
          else shard.pending.push({ id: job.id, customerId: job.customerId });
        }
        if (ready.length > 0) await this.deps.addToShard(queueKey, ready);
      } catch (error) {
        // The popped ids stay counted in flight; reconcile frees their slots after its grace and the
        // sweeper puts their rows back into their lanes.
        this.deps.logger.warn(
          { err: error, shard: queueKey, jobs: released.length },
          'fair-share release could not add its jobs to BullMQ',
        );
      }
    }
    return true;
  }
}
