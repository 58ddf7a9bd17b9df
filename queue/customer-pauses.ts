import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { queuedJobRefs } from '../db/jobs/find-jobs.js';
import { pausedCustomerIds } from '../db/repositories/customer-pauses.js';
import type { RedisClient } from '../lib/redis.js';
import { storedWeights } from './fair-share/fair-share.js';
import type { FairQueues } from './fair-share/fair-queues.js';
import type { JobQueues } from './queues.js';
import { isBundleData } from './bundles.js';

/**
 * Pausing a customer (POST /admin/customers/:id/pause) quarantines its work without deleting it. The
 * customer's row is the record (`customers.paused_at`); every worker process keeps the set of paused
 * customers in memory, read from PostgreSQL every `refreshMs`, and a worker that takes a paused customer's
 * job moves it back to BullMQ's delayed set for `pausedJobDelayMs` before marking it active: the row stays
 * `queued`, nothing runs, nothing is lost, and the check costs the hot path one Set lookup. The API also
 * publishes each pause and resume (`customerPauseChannel`), which workers apply at once. Submits are still
 * accepted (and counted by the admission caps), so a paused customer's clients see no new errors.
 * On resume the API promotes the set-aside jobs at once. With fair sharing, a set-aside job leaves its
 * shard's window uncharged (workers/run-workers.ts), and on resume goes back into its lane instead.
 */
export const pausedJobDelayMs = 30_000;
/** How often a worker reads the paused customers again. */
export const pauseRefreshMs = 2000;

/** The paused customers as a worker sees them, at most `refreshMs` old. */
export class PausedCustomers {
  private ids = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly em: EntityManager,
    private readonly logger: Logger,
    /** How often the set is read again. Default 2 s. */
    private readonly refreshMs = pauseRefreshMs,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  /** A message of `customerPauseChannel` (`pause:<id>`, `resume:<id>`): applied at once, ahead of the next read. */
  apply(message: string): void {
    const [action, customerId] = message.split(':');
    if (!customerId) return;
    const ids = new Set(this.ids);
    if (action === 'pause') ids.add(customerId);
    else ids.delete(customerId);
    this.ids = ids;
  }

  has(customerId: string): boolean {
    return this.ids.size > 0 && this.ids.has(customerId);
  }

  /** The paused customers' ids. */
  list(): string[] {
    return [...this.ids];
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    try {
      this.ids = new Set(await pausedCustomerIds(this.em.fork()));
    } catch (error) {
      // PostgreSQL away: keep the last known set (the jobs that would run cannot record their outcome anyway).
      this.logger.warn({ err: error }, 'could not read the paused customers; keeping the last known set');
    }
  }
}

/** Most jobs a resume promotes at once; the rest run when their delay ends (at most `pausedJobDelayMs`). */
const maxPromoted = 10_000;

/**
 * Moves a resumed customer's set-aside jobs (delayed in BullMQ, `queued` in PostgreSQL) back to waiting.
 * Answers how many. (A worker that has not heard of the resume yet sets a job aside again; the route calls
 * this once more after the workers' refresh interval.) On a fair-shared shard (`fair`) a set-aside job left
 * the window when it was set aside, so it is not promoted past the other customers: it leaves BullMQ and goes
 * back into its customer's lane (`relane`, with the weight the customer last submitted with), and is released
 * fairly. One a worker holds at that moment (its delay just ended) cannot be removed and is left to the worker.
 */
export async function releasePausedJobs(
  em: EntityManager,
  queues: JobQueues,
  customerId: string,
  fair: { queues: FairQueues; redis: RedisClient } | null = null,
): Promise<number> {
  let promoted = 0;
  const weights = new Map<string, number>(); // per shard: the weight this customer last submitted with
  const bundlesSeen = new Set<string>();
  for (const ref of await queuedJobRefs(em, customerId, maxPromoted)) {
    // A bundle's members (queue/bundles.ts) were set aside together, as their bundle: promoted once.
    if (ref.bundleId) {
      if (bundlesSeen.has(ref.bundleId)) continue;
      bundlesSeen.add(ref.bundleId);
    }
    const queue = queues.forJob(ref.type, ref.id);
    const job = (ref.bundleId && (await queue.getJob(ref.bundleId))) || (await queue.getJob(ref.queueJobId ?? ref.id));
    if (!job || !(await job.isDelayed())) continue;
    const share = fair?.queues.of(queue);
    if (share && fair) {
      const removed = await job.remove().then(
        () => true,
        () => false, // a worker took it as its delay ended
      );
      if (!removed) continue;
      const key = queue.qualifiedName;
      let weight = weights.get(key);
      if (weight === undefined) {
        weight = (await storedWeights(fair.redis, key, [customerId])).get(customerId)!;
        weights.set(key, weight);
      }
      // A bundle goes back as its members, each into the lane on its own.
      const data = job.data;
      const held = isBundleData(data)
        ? data.members.map((member) => ({ id: member.id, priority: 0 }))
        : [{ id: ref.id, priority: ref.priority }];
      promoted += (
        await share.relane(
          key,
          held.map((entry) => ({ ...entry, customerId, weight })),
          { known: true },
        )
      ).length;
    } else {
      await job.promote().catch(() => undefined); // raced with its own delay ending: it is waiting already
      promoted++;
    }
  }
  return promoted;
}
