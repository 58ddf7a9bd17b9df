import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../lib/redis.js';
import type { Logger } from 'pino';
import type { ReleasableJob } from '../db/jobs/find-jobs.js';
import { fairQueueFront, unpackHints, type FairShare, type FinishedJob } from '../queue/fair-share/fair-share.js';
import { queuedPayload, type QueuedJobData, type QueuedJobHints } from '../queue/queues.js';
import { isBundleId, unpackBundleEntry, type BundleJob } from '../queue/bundles.js';

/**
 * A released job ready for BullMQ: its row, the hints its submitter gave, whether its customer is backlogged, and
 * the bundle to carry it (queue/bundles.ts), if the release named one.
 */
export type ReleasedRow = ReleasableJob & { hints: QueuedJobHints; backlogged?: boolean; bundleId?: string };

export interface FairReleaserDeps {
  fair: FairShare;
  /** For the leader lock only. */
  redis: RedisClient;
  /** QUEUE_PREFIX; the tick's lock is `${prefix}:{fair-tick}:lock`. */
  prefix: string;
  /** The shards the leader tick serves: their queue keys (`Queue.qualifiedName`). */
  shardKeys: () => readonly string[];
  /** The rows of `jobs` that are still releasable, their bundles recorded (`claimReleasableJobs`). */
  readReleasable: (jobs: ReadonlyArray<{ id: string; bundleId?: string }>) => Promise<ReleasableJob[]>;
  /** Adds released rows, and released bundles held whole (queue/bundles.ts `fairEntry`), to the BullMQ queue of a shard, in one addBulk. */
  addToShard: (queueKey: string, rows: ReleasedRow[], bundles: BundleJob[]) => Promise<unknown>;
  /** The customers an admin paused, as this process knows them: the leader copies them to every shard when it reconciles. */
  pausedCustomers?: () => readonly string[];
  logger: Logger;
}

export interface FairReleaserOptions {
  /** How often the leader releases with nothing finished, so a window never idles on a lost release, in ms. Default 200. */
  tickMs?: number;
  /** How often the leader repairs the in-flight accounting (`reconcile`), in ms. Default 15,000. */
  reconcileEveryMs?: number;
  /**
   * Longest a finished job waits to be reported while its shard gathers a batch (`ReleaseOutcome.gather`), in
   * ms. Default 50.
   */
  gatherMs?: number;
}

interface ShardState {
  pending: FinishedJob[];
  /** Callers of `finishedAndReleased` waiting for the release that takes what is pending now. */
  waiting: Array<() => void>;
  /** Finished jobs to gather before a release call (the last reply's `gather`); 1 until a reply says more. */
  gather: number;
  /** When the oldest pending job finished (ms since the epoch); null: nothing pending. */
  since: number | null;
  /** When a release call of this process last reported finished jobs of the shard (ms since the epoch); 0: never. */
  releasedAt: number;
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
    data: { customerId: row.customerId, ...queuedPayload(row.payload), ...row.hints, ...(row.webhookUrl ? { hasWebhookUrl: true } : {}) },
    opts: { jobId: row.id, attempts: row.maxAttempts, ...(row.backlogged === false ? fairQueueFront : {}) },
  }));
}

/**
 * The worker side of fair sharing (docs/design/queues-and-storage.md §2). Workers report finished jobs;
 * per shard they are gathered into one release call — as many as the shard's last reply says it can spare
 * (`ReleaseOutcome.gather`: half of what it has in flight beyond its workers' concurrency), or whatever
 * finished within `gatherMs` (then every shard reports what it gathered) — so a script call, its bookkeeping and its addBulk serve several jobs. One
 * flush at a time serves every due shard: their release calls go out together, and the ids they pop cost
 * one PostgreSQL read in all and one addBulk per shard. A popped id whose row is no longer releasable (cancelled
 * meanwhile) is reported back as not run, freeing its slot. One process at a time (a Redis lock) also ticks
 * every shard and, less often, reconciles their in-flight accounting, so neither a lost release nor a
 * crashed worker idles a window.
 */
export class FairReleaser {
  private readonly shards = new Map<string, ShardState>();
  private readonly owner = randomUUID();
  private readonly tickMs: number;
  private readonly reconcileEveryMs: number;
  private readonly gatherMs: number;
  private timer: NodeJS.Timeout | null = null;
  private gatherTimer: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> = Promise.resolve();
  private lastReconcile = 0;
  /** The flush under way, if any: one at a time, so releases of a shard never race each other in this process. */
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly deps: FairReleaserDeps,
    options: FairReleaserOptions = {},
  ) {
    this.tickMs = options.tickMs ?? 200;
    this.reconcileEveryMs = options.reconcileEveryMs ?? 15_000;
    this.gatherMs = options.gatherMs ?? 50;
  }

  /** A job of `queueKey`'s shard finished (its final state written): charge it and release what fits. */
  finished(queueKey: string, job: FinishedJob): void {
    const shard = this.shard(queueKey);
    shard.pending.push(job);
    shard.since ??= Date.now();
    this.schedule();
  }

  /**
   * `finished`, released at once (not gathered): resolves when the release call this job's end makes has added
   * what it released to BullMQ, or failed (never rejects). A worker that awaits it before handing its BullMQ job
   * back finds the next job already waiting: BullMQ's move to finished fetches it, where a slot freed before
   * the release blocks on the queue's marker and fetches again (two more Redis calls and ~0.3 ms of worker CPU
   * a bundle, in a drain's profile).
   */
  finishedAndReleased(queueKey: string, job: FinishedJob): Promise<void> {
    const shard = this.shard(queueKey);
    const released = new Promise<void>((resolve) => shard.waiting.push(resolve));
    shard.pending.push(job);
    // Due now, whatever its shard gathers.
    shard.since = 0;
    this.schedule();
    return released;
  }

  /** Releases in `queueKey`'s shard now (after any flush under way); resolves when its pending work is done. */
  async flush(queueKey: string): Promise<void> {
    await this.flushNow([queueKey]);
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

  /** Stops ticking, reports what is still gathered, lets the flush under way end and hands the lock on. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
    await this.ticking;
    const gathered = [...this.shards].filter(([, shard]) => shard.pending.length > 0).map(([key]) => key);
    await this.flushNow(gathered);
    await this.deps.redis.eval(
      `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`,
      1,
      this.lockKey(),
      this.owner,
    );
  }

  /**
   * One leader tick: when this process holds (or takes) the lock, a reconcile of every shard when one is
   * due, then a release in every shard (nothing finished, or what it gathered). Every process also retries
   * here the batches of its own that a failed release kept.
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
      // Not the leader: only retry (or report) this process's own batches.
      await this.flushNow([...this.shards].filter(([, shard]) => shard.pending.length > 0).map(([key]) => key));
      return false;
    }
    const keys = this.deps.shardKeys();
    // Repair first, so a window it frees fills in the same tick.
    const reconciling = Date.now() - this.lastReconcile >= this.reconcileEveryMs;
    if (reconciling) {
      this.lastReconcile = Date.now();
      for (const key of keys) {
        // The pause routes write each shard's copy; this repairs one Redis lost or a route failed to write.
        if (this.deps.pausedCustomers) await this.deps.fair.syncPaused(key, this.deps.pausedCustomers());
        const dropped = await this.deps.fair.reconcile(key);
        if (dropped > 0) this.deps.logger.warn({ shard: key, dropped }, 'fair share dropped in-flight jobs BullMQ no longer runs');
      }
    }
    // A shard whose finished jobs this process reported within the last tick is served by those releases: a tick
    // there would repeat one (in a drain, 48 shards ticked five times a second made about as many release calls
    // as the bundles did).
    const servedAfter = Date.now() - this.tickMs;
    await this.flushNow(reconciling ? keys : keys.filter((key) => (this.shards.get(key)?.releasedAt ?? 0) < servedAfter));
    return true;
  }

  private lockKey(): string {
    // Its own hash tag: a single key, placed on whichever master its tag hashes to.
    return `${this.deps.prefix}:{fair-tick}:lock`;
  }

  private shard(queueKey: string): ShardState {
    let shard = this.shards.get(queueKey);
    if (!shard) this.shards.set(queueKey, (shard = { pending: [], waiting: [], gather: 1, since: null, releasedAt: 0 }));
    return shard;
  }

  /** A shard with this much gathered, or gathered this long, is released in the next flush. */
  private due(shard: ShardState, now: number): boolean {
    return shard.pending.length > 0 && (shard.pending.length >= shard.gather || now - (shard.since ?? now) >= this.gatherMs);
  }

  /**
   * A flush on the next turn of the event loop when a shard is due (so the jobs that finish together share
   * it), else a timer for when the oldest gathered job is due. During a flush nothing is scheduled: its end does.
   */
  private schedule(): void {
    if (this.flushing) return;
    const now = Date.now();
    let oldest = Infinity;
    for (const shard of this.shards.values()) {
      if (this.due(shard, now)) {
        if (this.gatherTimer) clearTimeout(this.gatherTimer);
        this.gatherTimer = null;
        this.launch(new Set(), true);
        return;
      }
      if (shard.since !== null) oldest = Math.min(oldest, shard.since);
    }
    if (oldest === Infinity || this.gatherTimer) return;
    // When the oldest is due, every shard reports what it gathered: one flush, one PostgreSQL read.
    this.gatherTimer = setTimeout(
      () => {
        this.gatherTimer = null;
        if (this.flushing) return;
        this.launch(new Set([...this.shards].filter(([, shard]) => shard.pending.length > 0).map(([key]) => key)), false);
      },
      Math.max(1, oldest + this.gatherMs - now),
    );
  }

  /** Releases in `keys` now (whatever they gathered, or nothing), after the flush under way. */
  private async flushNow(keys: readonly string[]): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.launch(new Set(keys), false);
  }

  private launch(forced: Set<string>, deferred: boolean): Promise<void> {
    const ran = deferred ? new Promise((resolve) => setImmediate(resolve)).then(() => this.run(forced)) : this.run(forced);
    this.flushing = ran
      .catch(() => false)
      .then((ok) => {
        this.flushing = null;
        // Jobs that finished meanwhile; after a failure the next tick retries instead.
        if (ok) this.schedule();
      });
    return this.flushing;
  }

  /**
   * Release calls, all due shards together, until none is due (`forced` ones are due in the first round):
   * each round one release call per shard, one PostgreSQL read and one addBulk per shard. False when a
   * release call failed (its batch is kept for the next tick).
   */
  private async run(forced: Set<string>): Promise<boolean> {
    let ok = true;
    const failed = new Set<string>();
    for (let round = 0; ; round++) {
      const now = Date.now();
      const keys = [...this.shards]
        .filter(([key, shard]) => !failed.has(key) && ((round === 0 && forced.has(key)) || this.due(shard, now)))
        .map(([key]) => key);
      if (round === 0) for (const key of forced) if (!this.shards.has(key)) keys.push(key);
      if (keys.length === 0) return ok;
      const waiting = keys.flatMap((key) => this.shard(key).waiting.splice(0));
      try {
        if (!(await this.releaseRound(keys, now, failed))) ok = false;
      } finally {
        for (const resolve of waiting) resolve();
      }
    }
  }

  /**
   * One round of `run`: a release call in each of `keys`' shards, then one PostgreSQL read and one addBulk per
   * shard for what they released. False when a release call failed (its shard is added to `failed`).
   */
  private async releaseRound(keys: readonly string[], now: number, failed: Set<string>): Promise<boolean> {
    let ok = true;
    const calls = await Promise.all(
      keys.map(async (key) => {
        const shard = this.shard(key);
        const batch = shard.pending.splice(0);
        shard.since = null;
        try {
          const outcome = await this.deps.fair.releaseBatch(key, batch);
          shard.gather = outcome.gather;
          if (batch.length > 0) shard.releasedAt = Date.now();
          return { key, released: outcome.released };
        } catch (error) {
          // Nothing was charged: keep the batch for the next tick.
          shard.pending.unshift(...batch);
          shard.since ??= now;
          failed.add(key);
          ok = false;
          this.deps.logger.warn({ err: error, shard: key }, 'fair-share release failed; the next tick tries again');
          return { key, released: [] };
        }
      }),
    );
    const released = calls.flatMap((call) => call.released);
    if (released.length === 0) return ok;
    try {
      // A bundle held whole needs no row: its worker reads its members' rows, and skips those cancelled meanwhile.
      const rows = await this.deps.readReleasable(released.filter((job) => !isBundleId(job.id)));
      const byId = new Map(rows.map((row) => [row.id, row]));
      await Promise.all(
        calls.map(async ({ key, released: jobs }) => {
          const ready: ReleasedRow[] = [];
          const bundles: BundleJob[] = [];
          for (const job of jobs) {
            const bundle = isBundleId(job.id) ? unpackBundleEntry(job.id, job.customerId, job.hints) : null;
            if (bundle) {
              if (!job.backlogged) bundle.opts.lifo = true;
              bundles.push(bundle);
              continue;
            }
            const row = byId.get(job.id);
            if (row) ready.push({ ...row, hints: unpackHints(job.hints), backlogged: job.backlogged, bundleId: job.bundleId });
            else {
              // Cancelled or finished meanwhile: free its slot, refund its charge (in the next round).
              const shard = this.shard(key);
              shard.pending.push({ id: job.id, customerId: job.customerId });
              shard.since = 0;
            }
          }
          if (ready.length === 0 && bundles.length === 0) return;
          try {
            await this.deps.addToShard(key, ready, bundles);
          } catch (error) {
            // The popped ids stay counted in flight; after its grace reconcile frees their slots and puts
            // them back into their lanes.
            this.deps.logger.warn({ err: error, shard: key, jobs: ready.length }, 'fair-share release could not add its jobs to BullMQ');
          }
        }),
      );
    } catch (error) {
      this.deps.logger.warn(
        { err: error, jobs: released.length },
        'fair-share release could not read its rows; reconcile heals the window',
      );
    }
    return ok;
  }
}
