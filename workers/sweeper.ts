import type { MikroORM } from '@mikro-orm/postgresql';
import type { RedisClient } from '../lib/redis.js';
import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  finalJobIds,
  listUnfinishedJobs,
  recordLostOutcome,
  requeueLostJobs,
  waitForDurableCommits,
  type UnfinishedJob,
  type UnfinishedJobsCursor,
} from '../db/jobs/recovery.js';
import { enqueue } from '../queue/submit-job.js';
import { groupByQueue, isResultInRow, isRowId, type JobQueue, type JobQueues } from '../queue/queues.js';
import { storedWeights } from '../queue/fair-share/fair-share.js';
import type { FairQueues } from '../queue/fair-share/fair-queues.js';
import { trimCompleted } from './trim-completed.js';
import { bundleOutcomesField, isBundleId, type BundleOutcomes } from '../queue/bundles.js';

/** What the sweeper reads of a row's BullMQ job (its hash's fields; null when unset). */
interface BullmqJobFields {
  finishedOn: string | null;
  returnvalue: string | null;
  failedReason: string | null;
  attemptsMade: string | null;
  /** A bundled row's outcome as its finished bundle recorded it (queue/bundles.ts `BundleOutcomes`). */
  bundled?: { state: 'completed'; result: unknown } | { state: 'failed'; error: string; attemptsMade: number };
}

const unfinishedFields = { finishedOn: null, returnvalue: null, failedReason: null, attemptsMade: null } as const;

/** A bundle's recorded member outcomes; null when it has none (it has not run to its end, or the field is not JSON). */
function parseOutcomes(stored: string | null): BundleOutcomes | null {
  if (!stored) return null;
  try {
    const value: unknown = JSON.parse(stored);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as BundleOutcomes) : null;
  } catch {
    return null;
  }
}

export interface SweeperOptions {
  /** How often a sweep runs, in ms. Default 5,000. */
  intervalMs?: number;
  /** Jobs younger than this are left alone (their enqueue may still be in flight), in ms. Default 10,000. */
  graceMs?: number;
  /** Rows checked per round trip. Default 500. */
  batchSize?: number;
  /** How often finished jobs whose outcome PostgreSQL holds durably are removed from BullMQ, in ms; 0: never. Default 1000. */
  trimIntervalMs?: number;
  /**
   * Only jobs BullMQ finished at least this long before the durability barrier are removed (clocks of
   * worker processes a little apart), in ms. Default 500: NTP keeps machines' clocks milliseconds apart, and
   * completed jobs wait in Redis for the margin plus up to one interval (at 2,500 jobs/s, 2 s of margin had kept
   * ~6,000 job hashes, 6–9 MiB, waiting).
   */
  trimMarginMs?: number;
}

export interface TrimReport {
  /** Finished BullMQ jobs looked at. */
  checked: number;
  /** Removed from BullMQ: their row's final state was on disk. */
  removed: number;
}

export interface SweepReport {
  checked: number;
  reenqueued: number;
  /** Rows still unfinished whose outcome BullMQ already held, now copied into PostgreSQL. */
  reconciled: number;
}

/**
 * PostgreSQL is the record, Redis the transport. The sweeper finds accepted, unfinished jobs whose
 * BullMQ job no longer exists (Redis restarted empty, an enqueue failed while Redis was down) and
 * enqueues them again under the same id — on a fair-shared queue (FAIR_SHARING) it never enqueues: it puts
 * them back into their customers' lanes (`relane`, which also skips ids held there: a job without a priority
 * counts as held while its customer's lane list has entries this pass did not put there), and a worker
 * releases them fairly; after Redis restarts empty, that is every unfinished row. Several worker processes may run it: a Redis lock lets one
 * sweep at a time, and BullMQ ignores a second add of the same id anyway.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private trimTimer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();
  private trimming: Promise<unknown> = Promise.resolve();
  private readonly trimIntervalMs: number;
  private readonly trimMarginMs: number;
  private readonly owner = randomUUID();
  private readonly intervalMs: number;
  private readonly graceMs: number;
  private readonly batchSize: number;

  constructor(
    private readonly deps: {
      orm: MikroORM;
      redis: RedisClient;
      queues: JobQueues;
      fair: FairQueues | null;
      prefix: string;
      logger: Logger;
    },
    options: SweeperOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5_000;
    this.graceMs = options.graceMs ?? 10_000;
    this.batchSize = options.batchSize ?? 500;
    this.trimIntervalMs = options.trimIntervalMs ?? 1000;
    this.trimMarginMs = options.trimMarginMs ?? 500;
  }

  start(): void {
    const tick = () => {
      this.running = this.sweepIfLeader()
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'sweep failed; will try again'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.intervalMs);
    if (this.trimIntervalMs > 0) {
      const trimTick = () => {
        this.trimming = this.trimIfLeader()
          .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'trimming finished jobs failed; will try again'))
          .finally(() => {
            if (this.trimTimer) this.trimTimer = setTimeout(trimTick, this.trimIntervalMs);
          });
      };
      this.trimTimer = setTimeout(trimTick, this.trimIntervalMs);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.trimTimer) clearTimeout(this.trimTimer);
    this.timer = null;
    this.trimTimer = null;
    await Promise.all([this.running, this.trimming]);
  }

  /** Trims when this process holds the trim lock; null when another process does. */
  async trimIfLeader(): Promise<TrimReport | null> {
    const key = `${this.deps.prefix}:sweeper:trim-lock`;
    const acquired = await this.deps.redis.set(key, this.owner, 'PX', Math.max(5000, this.trimIntervalMs * 5), 'NX');
    if (acquired !== 'OK') return null;
    try {
      return await this.trimFinished();
    } finally {
      await this.deps.redis.eval(
        `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`,
        1,
        key,
        this.owner,
      );
    }
  }

  /**
   * Redis holds a finished job (and its return value) only as long as durability needs it (design §4): the
   * worker's final write commits without waiting for the disk, so until that commit is flushed the outcome
   * lives only in BullMQ, and the sweeper copies it from there if PostgreSQL loses it. This pass finds the jobs
   * BullMQ completed before its cutoff, waits for a durable commit (which flushes every earlier one; none when
   * it found nothing), then removes from BullMQ those whose row holds a final state — on disk now. A row that
   * is not final (its write was lost) is left in BullMQ for `sweep()` to copy; the retention limits
   * (queue/queues.ts) remain the backstop.
   */
  async trimFinished(limitPerQueue = 1000): Promise<TrimReport> {
    const cutoff = Date.now() - this.trimMarginMs;
    // Completed jobs only: failed ones stay for operators to inspect and retry in Bull Board, bounded by
    // `retention.removeOnFail` (queue/queues.ts). Every queue is asked at once: one burst, not a round trip each.
    const found = (
      await Promise.all(
        this.deps.queues.all().map(async (queue) => {
          const finished = await this.deps.redis.zrangebyscore(queue.toKey('completed'), '-inf', cutoff, 'LIMIT', 0, limitPerQueue);
          const bundles = await this.bundleMembersToTrim(
            queue,
            finished.filter((id) => isBundleId(id)),
          );
          return { queue, ids: finished.filter((id) => isRowId(id)), bundles };
        }),
      )
    ).filter(({ ids, bundles }) => ids.length > 0 || bundles.size > 0);
    // Nothing finished: no durable commit either (an idle platform would otherwise flush the disk every pass).
    if (found.length === 0) return { checked: 0, removed: 0 };
    // Their final writes committed before `cutoff`: a commit that waits for the disk now flushes every one of
    // them. Then one read for every queue's rows, and one trim script per queue, all at once.
    const em = this.deps.orm.em.fork();
    await waitForDurableCommits(em);
    const durable = await finalJobIds(
      em,
      found.flatMap(({ ids, bundles }) => [...ids, ...[...bundles.values()].flat()]),
    );
    const removed = await Promise.all(
      found.map(({ queue, ids, bundles }) =>
        // Removes only ids still in the completed set.
        trimCompleted(this.deps.redis, queue, [
          ...ids.filter((id) => durable.has(id)),
          ...[...bundles].filter(([, members]) => members.every((id) => durable.has(id))).map(([bundleId]) => bundleId),
        ]),
      ),
    );
    return {
      checked: found.reduce((sum, { ids, bundles }) => sum + ids.length + bundles.size, 0),
      removed: removed.reduce((sum, count) => sum + count, 0),
    };
  }

  /**
   * Completed bundles (queue/bundles.ts) and the members whose outcome each recorded: a bundle may go once those
   * rows are final on disk. A member it handed off to run alone, or skipped, has its own BullMQ job or none, and
   * the sweeper looks that up when the bundle is gone.
   */
  private async bundleMembersToTrim(queue: JobQueue, bundleIds: string[]): Promise<Map<string, string[]>> {
    const members = new Map<string, string[]>();
    if (bundleIds.length === 0) return members;
    const pipeline = this.deps.redis.pipeline();
    for (const id of bundleIds) pipeline.hget(queue.toKey(id), bundleOutcomesField);
    const results = (await pipeline.exec()) ?? [];
    bundleIds.forEach((id, index) => {
      const [error, stored] = results[index] ?? [new Error('no answer')];
      if (error) return;
      const outcomes = parseOutcomes(stored as string | null) ?? {};
      members.set(
        id,
        Object.entries(outcomes)
          .filter(([, outcome]) => !('h' in outcome))
          .map(([memberId]) => memberId),
      );
    });
    return members;
  }

  private lockKey(): string {
    return `${this.deps.prefix}:sweeper:lock`;
  }

  /** Sweeps when this process holds the lock; returns null when another process does. */
  async sweepIfLeader(): Promise<SweepReport | null> {
    const acquired = await this.deps.redis.set(this.lockKey(), this.owner, 'PX', this.intervalMs * 2, 'NX');
    if (acquired !== 'OK') return null;
    try {
      return await this.sweep();
    } finally {
      // Release only our own lock.
      await this.deps.redis.eval(
        `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`,
        1,
        this.lockKey(),
        this.owner,
      );
    }
  }

  /** One full pass over the unfinished jobs. */
  async sweep(): Promise<SweepReport> {
    const em = this.deps.orm.em.fork();
    const report: SweepReport = { checked: 0, reenqueued: 0, reconciled: 0 };
    const pass = randomUUID();
    let after: UnfinishedJobsCursor | null = null;
    while (true) {
      const { rows, next } = await listUnfinishedJobs(em, this.graceMs, after, this.batchSize);
      if (rows.length === 0) break;
      after = next;
      report.checked += rows.length;
      const { inRedis, missing } = await this.bullmqJobsOf(rows);
      // `queued` too: a job that finished within `activeAfterMs` was never written active.
      report.reconciled += await this.reconcileFinished(
        em,
        rows.filter((row) => row.state !== 'delayed' && inRedis.get(row)?.finishedOn),
        inRedis,
      );
      await requeueLostJobs(
        em,
        missing.filter((row) => row.state === 'active').map((row) => row.id),
      );
      const { handled: laned, relaned } = await this.relane(missing, pass);
      report.reenqueued += relaned;
      for (const row of missing) {
        if (laned.has(row)) continue;
        const remainingDelay = Math.max(0, new Date(row.createdAt).getTime() + row.delayMs - Date.now());
        // Under the row's own id even for a row whose lost BullMQ job had another (a scheduled run recorded by an
        // earlier version, `repeat:…`): jobs are now always enqueued under their row id, and only such a job runs.
        const added = await enqueue(this.deps, { ...row, delayMs: remainingDelay });
        if (added) report.reenqueued += 1;
      }
    }
    if (report.reenqueued > 0 || report.reconciled > 0)
      this.deps.logger.warn(report, 'sweeper repaired accepted jobs (re-enqueued what Redis lost, recorded outcomes PostgreSQL lost)');
    return report;
  }

  /**
   * Missing rows of fair-shared queues go back into their lanes, one script call per shard; returns the
   * rows handled so (put back, or found already held) and how many were put back. Their weight is the one their customer last
   * submitted with (kept per shard); 1 after Redis lost it, until the customer's next submit.
   */
  private async relane(missing: UnfinishedJob[], pass: string): Promise<{ handled: Set<UnfinishedJob>; relaned: number }> {
    const handled = new Set<UnfinishedJob>();
    let relaned = 0;
    const fair = this.deps.fair;
    if (!fair) return { handled, relaned };
    for (const [queue, group] of this.byQueue(missing)) {
      const share = fair.of(queue);
      if (!share) continue;
      const key = queue.qualifiedName;
      const customers = [...new Set(group.map((row) => row.customerId))];
      const weights = await storedWeights(this.deps.redis, key, customers);
      const back = await share.relane(
        key,
        group.map((row) => ({
          id: row.id,
          customerId: row.customerId,
          weight: weights.get(row.customerId) ?? 1,
          priority: row.priority,
          ...(row.delayMs > 0 ? { delayUntil: new Date(row.createdAt).getTime() + row.delayMs } : {}),
          bundleId: row.bundleId,
        })),
        { pass },
      );
      relaned += back.length;
      for (const row of group) handled.add(row);
    }
    return { handled, relaned };
  }

  /**
   * Rows still unfinished in PostgreSQL whose BullMQ job finished (`finishedOn`, read by `bullmqJobsOf`):
   * those it completed or failed for good get that outcome recorded.
   */
  private async reconcileFinished(em: EntityManager, rows: UnfinishedJob[], inRedis: Map<UnfinishedJob, BullmqJobFields>): Promise<number> {
    let reconciled = 0;
    // One pipeline per queue: its keys share the queue's hash tag, so on a cluster each goes to one slot.
    for (const row of rows) {
      const bundled = inRedis.get(row)?.bundled;
      if (!bundled) continue;
      if (bundled.state === 'completed' && isResultInRow(bundled.result)) {
        this.deps.logger.warn({ jobId: row.id }, 'a job whose result was written durably is not final in PostgreSQL');
        continue;
      }
      const changed = await recordLostOutcome(em, {
        id: row.id,
        state: bundled.state,
        result: bundled.state === 'completed' ? bundled.result : null,
        error: bundled.state === 'failed' ? bundled.error : null,
        attemptsMade: bundled.state === 'failed' ? bundled.attemptsMade : 1,
      });
      if (changed) reconciled += 1;
    }
    for (const [queue, group] of this.byQueue(rows.filter((row) => !inRedis.get(row)?.bundled))) {
      const pipeline = this.deps.redis.pipeline();
      for (const row of group) {
        const jobId = row.queueJobId ?? row.id;
        pipeline.zscore(queue.toKey('completed'), jobId).zscore(queue.toKey('failed'), jobId);
      }
      const results = (await pipeline.exec()) ?? [];
      for (const [index, row] of group.entries()) {
        const completed = results[index * 2]?.[1] !== null;
        const failed = results[index * 2 + 1]?.[1] !== null;
        if (!completed && !failed) continue;
        const { returnvalue, failedReason, attemptsMade } = inRedis.get(row)!;
        const result: unknown = completed && returnvalue ? JSON.parse(returnvalue) : null;
        if (isResultInRow(result)) {
          // Written durably before BullMQ completed the job, so the row cannot have lost it: not ours to overwrite.
          this.deps.logger.warn({ jobId: row.id }, 'a job whose result was written durably is not final in PostgreSQL');
          continue;
        }
        const changed = await recordLostOutcome(em, {
          id: row.id,
          state: completed ? 'completed' : 'failed',
          result,
          error: completed ? null : (failedReason ?? 'failed'),
          attemptsMade: Number(attemptsMade ?? 1),
        });
        if (changed) reconciled += 1;
      }
    }
    return reconciled;
  }

  /**
   * Each row's BullMQ job, in one HMGET a row (pipelined per queue): `inRedis` holds what `reconcileFinished`
   * needs of the rows that have one, `missing` the rows that have none (no `timestamp`: BullMQ writes it with
   * every job). A row whose answer was an error (its key is not a job hash, or the command failed) is in
   * neither: it is not taken for lost. Rows of a type this process does not run are in neither either.
   */
  private async bullmqJobsOf(rows: UnfinishedJob[]): Promise<{ inRedis: Map<UnfinishedJob, BullmqJobFields>; missing: UnfinishedJob[] }> {
    const inRedis = new Map<UnfinishedJob, BullmqJobFields>();
    const missing: UnfinishedJob[] = [];
    const unanswered = await this.bundledJobsOf(
      rows.filter((row) => row.bundleId),
      inRedis,
    );
    for (const [queue, group] of this.byQueue([...rows.filter((row) => !row.bundleId), ...unanswered])) {
      const pipeline = this.deps.redis.pipeline();
      for (const row of group)
        pipeline.hmget(queue.toKey(row.queueJobId ?? row.id), 'timestamp', 'finishedOn', 'returnvalue', 'failedReason', 'attemptsMade');
      const results = (await pipeline.exec()) ?? [];
      for (const [index, row] of group.entries()) {
        const [error, fields] = results[index] ?? [new Error('no answer')];
        if (error) continue;
        const [timestamp, finishedOn, returnvalue, failedReason, attemptsMade] = fields as Array<string | null>;
        if (!timestamp) missing.push(row);
        else
          inRedis.set(row, {
            finishedOn: finishedOn ?? null,
            returnvalue: returnvalue ?? null,
            failedReason: failedReason ?? null,
            attemptsMade: attemptsMade ?? null,
          });
      }
    }
    return { inRedis, missing };
  }

  /**
   * Bundled rows (queue/bundles.ts) through their bundle, one HMGET a bundle (pipelined per queue): a bundle not
   * finished holds its members (in `inRedis`, unfinished); a finished one answers for each member whose outcome it
   * recorded (`bundled`). Returns the rows no bundle answers for — it is gone, failed, or handed the member off to
   * run alone — to be looked up under their own id. A row whose bundle's answer was an error is in none.
   */
  private async bundledJobsOf(rows: UnfinishedJob[], inRedis: Map<UnfinishedJob, BullmqJobFields>): Promise<UnfinishedJob[]> {
    const unanswered: UnfinishedJob[] = [];
    for (const [queue, group] of this.byQueue(rows)) {
      const bundleIds = [...new Set(group.map((row) => row.bundleId as string))];
      const pipeline = this.deps.redis.pipeline();
      for (const id of bundleIds) pipeline.hmget(queue.toKey(id), 'timestamp', 'finishedOn', bundleOutcomesField);
      const results = (await pipeline.exec()) ?? [];
      const bundles = new Map<string, { finishedOn: string | null; outcomes: BundleOutcomes | null } | null>();
      bundleIds.forEach((id, index) => {
        const [error, fields] = results[index] ?? [new Error('no answer')];
        if (error) return;
        const [timestamp, finishedOn, outcomes] = fields as Array<string | null>;
        bundles.set(id, timestamp ? { finishedOn: finishedOn ?? null, outcomes: parseOutcomes(outcomes ?? null) } : null);
      });
      for (const row of group) {
        const bundle = bundles.get(row.bundleId as string);
        if (bundle === undefined) continue;
        if (bundle && !bundle.finishedOn) {
          inRedis.set(row, unfinishedFields);
          continue;
        }
        const outcome = bundle?.outcomes?.[row.id];
        if (bundle && outcome && 'r' in outcome)
          inRedis.set(row, { ...unfinishedFields, finishedOn: bundle.finishedOn, bundled: { state: 'completed', result: outcome.r } });
        else if (bundle && outcome && 'e' in outcome)
          inRedis.set(row, {
            ...unfinishedFields,
            finishedOn: bundle.finishedOn,
            bundled: { state: 'failed', error: outcome.e, attemptsMade: outcome.a },
          });
        else unanswered.push(row);
      }
    }
    return unanswered;
  }

  /** Rows by the queue their job lives on: their type's shard for the row id (the id every job is enqueued under). */
  private byQueue(rows: UnfinishedJob[]) {
    // A row of a type this process does not run (another registry's) is not this sweeper's to check.
    const types = new Set(this.deps.queues.types());
    const known = rows.filter((row) => types.has(row.type));
    return groupByQueue(this.deps.queues, known, (row) => ({ type: row.type, id: row.id }));
  }
}
