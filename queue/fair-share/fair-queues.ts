import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../../config.js';
import { jobRegistry, type JobRegistry } from '../../jobs/registry.js';
import { shardConcurrency, type JobQueue, type JobQueues } from '../queues.js';
import { createFairShare, fairWeight, type FairShare } from './fair-share.js';
import { HeldLately } from './held-lately.js';

/**
 * Which queues are fair-shared, and their engines (docs/design/queues-and-storage.md §2): every shard of a
 * sharded job type (invoke, divide, batch) when FAIR_SHARING is on. One `FairShare` per type, because a
 * shard's minimum in flight is its worker's concurrency (at least 2). `share` routes a call by its queue key,
 * so one releaser serves every fair-shared shard.
 */
export interface FairQueues {
  /** The fair share of `queue`, or null when it is not fair-shared (an unsharded type). */
  of(queue: JobQueue): FairShare | null;
  /** Every fair-shared shard: its queue key (`Queue.qualifiedName`) and queue. */
  readonly queues: ReadonlyMap<string, JobQueue>;
  /** One engine for every fair-shared shard, routing each call by its queue key. */
  readonly share: FairShare;
  /** The weight of a customer's tier (FAIR_WEIGHTS); 1 for none. */
  weightOf(tier: string | null | undefined): number;
  /** Where a customer's last single submit was held, in this process (`submitJob` skips its probe there). */
  readonly heldLately: HeldLately;
}

type FairConfig = Pick<
  Config,
  | 'fairSharing'
  | 'fairWindowMs'
  | 'fairBaseCostMs'
  | 'fairMaxChargeMs'
  | 'fairWeights'
  | 'fairMaxReleasedPerCustomer'
  | 'workerConcurrency'
  | 'sweeperIntervalMs'
>;

/**
 * Worker slots of a fair-shared shard beyond its concurrency: a backlogged customer's released jobs fill at most
 * the window, or its minimum in flight when that is more — for expensive jobs the concurrency — so a job released
 * to the front of the wait list (another customer's) starts at once instead of waiting for one of them to end.
 * A bundled type's minimum counts these slots too (below): its bundles are short.
 */
export const fairSpareSlots = 2;

/**
 * FAIR_MAX_RELEASED_PER_CUSTOMER bounds a customer's released jobs over all shards of a type, so it is split
 * between them: per shard, 16 shards (a cluster's default) had let one customer release 16 × the cap.
 */
export function perShardCap(totalCap: number, shards: number): number {
  return totalCap === 0 ? 0 : Math.max(1, Math.ceil(totalCap / shards));
}

/** The fair-shared queues of `queues`; null when FAIR_SHARING is off (every queue keeps plain FIFO). */
export function createFairQueues(
  redis: Redis | Cluster,
  config: FairConfig,
  queues: JobQueues,
  registry: JobRegistry = jobRegistry,
): FairQueues | null {
  if (!config.fairSharing) return null;
  const byKey = new Map<string, { queue: JobQueue; share: FairShare }>();
  for (const definition of registry.values()) {
    if (!definition.queue.sharded || !queues.types().includes(definition.name)) continue;
    const shards = queues.ofType(definition.name);
    // The minimum in flight is the shard worker's concurrency: with 2 bundles a shard (and a cap of 32 jobs a
    // shard, one bundle) a flood ran a quarter of FIFO's members at once, so its state writes carried a third of
    // FIFO's rows per UPDATE and PostgreSQL spent ~40 µs a job more. Another customer's next job goes to the front
    // of the wait list, and the worker has `fairSpareSlots` beyond this for it. A bundled type's minimum counts the
    // spare slots as well: left idle for another customer, they cost a flood's drain ~2 s of worker CPU per 50,000
    // jobs (README, fairness bench), and another customer's job then takes the slot the next of the shard's bundles
    // frees (with several worker processes, a free slot of another). An unbundled type keeps them free: its jobs
    // may run long, and one customer's would then hold every slot.
    const typeConcurrency = shardConcurrency(definition.queue.concurrency ?? config.workerConcurrency, shards.length);
    const share = createFairShare(redis, {
      windowMs: config.fairWindowMs,
      baseCostMs: config.fairBaseCostMs,
      maxChargeMs: config.fairMaxChargeMs,
      minInflight: typeConcurrency + (definition.queue.bundled ? fairSpareSlots : 0),
      maxReleasedPerCustomer: perShardCap(config.fairMaxReleasedPerCustomer, shards.length),
      bundleSize: definition.queue.bundled ? queues.bundleSize : 1,
    });
    for (const queue of shards) byKey.set(queue.qualifiedName, { queue, share });
  }
  const engineOf = (key: string): FairShare => {
    const entry = byKey.get(key);
    if (!entry) throw new Error(`queue ${key} is not fair-shared`);
    return entry.share;
  };
  const share: FairShare = {
    admit: (key, jobs, options) => engineOf(key).admit(key, jobs, options),
    releaseBatch: (key, finished) => engineOf(key).releaseBatch(key, finished),
    withdraw: (key, id, customerId, options) => engineOf(key).withdraw(key, id, customerId, options),
    relane: (key, jobs, options) => engineOf(key).relane(key, jobs, options),
    reconcile: (key) => engineOf(key).reconcile(key),
    setPaused: (key, customerId, paused) => engineOf(key).setPaused(key, customerId, paused),
    syncPaused: (key, customerIds) => engineOf(key).syncPaused(key, customerIds),
  };
  return {
    of: (queue) => byKey.get(queue.qualifiedName)?.share ?? null,
    queues: new Map([...byKey].map(([key, entry]) => [key, entry.queue])),
    share,
    weightOf: (tier) => (tier ? fairWeight(tier, config.fairWeights as Partial<Record<string, number>>) : 1),
    heldLately: new HeldLately(),
  };
}
