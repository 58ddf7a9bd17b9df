import { Queue, type WorkerOptions } from 'bullmq';
import type { RedisClient } from '../lib/redis.js';
import type { Config } from '../config.js';
import { jobRegistry, type JobRegistry } from '../jobs/registry.js';
import { queueName, shardOf } from './queue-names.js';
import { fitsJsonBytes } from '../jobs/result-limit.js';
import { JsonText } from '../lib/json-text.js';

export { queueName, shardOf } from './queue-names.js';

/** What the submitter knows that saves a worker work. Absent on jobs the sweeper re-enqueues. */
export interface QueuedJobHints {
  /** Someone waits for the outcome (`Prefer: wait`): announce the finished row (queue/job-notices.ts). */
  notify?: boolean;
  /** The submitter looked the result up in the invocation cache just before and missed. */
  cacheMissed?: boolean;
  /**
   * Set by an API with SERVER_TIMING on, for a request that waits: when it began (`monotonicMs`,
   * lib/stage-marks.ts). The worker then stores when the job reached each of its stages (`storeStageMarks`).
   */
  timingOrigin?: number;
}

/** What a BullMQ job carries; the PostgreSQL row (same id) holds the rest. */
export interface QueuedJobData extends QueuedJobHints {
  customerId: string;
  /** The job's payload when it is at most `inlinePayloadMaxBytes`; absent when `payloadInRow`. */
  payload?: unknown;
  /** The payload is too big to carry: the worker reads it from the job's row. */
  payloadInRow?: true;
  /** Set when the job has its own webhook URL, so a worker knows without reading the row. */
  hasWebhookUrl?: boolean;
  /**
   * Attempts the job made before it was enqueued alone: a bundle's member handed off to retry (queue/bundles.ts);
   * its BullMQ `attempts` are what it has left.
   */
  priorAttempts?: number;
}

export type JobQueue = Queue<QueuedJobData>;

/**
 * Largest payload a BullMQ job carries itself, in bytes of JSON. A bigger one (a batch of thousands of
 * invocations, parameters near their 16 KiB limit) stays in its PostgreSQL row only, and the worker reads it
 * from there with one primary-key select: a queued job then holds at most this much payload in Redis, so a
 * customer's queued jobs hold at most `TIER_MAX_QUEUED` times it (README "Redis memory"), however big the
 * bodies it sends.
 */
export const inlinePayloadMaxBytes = 8 * 1024;

/**
 * Largest result a completed BullMQ job keeps as its return value, in bytes of JSON; a bigger one is written
 * to its row durably first and BullMQ keeps `resultInRow` instead (workers/processor.ts `returnValueFor`).
 */
export const inlineResultMaxBytes = 8 * 1024;

/** The return value of a completed job whose (big) result is only in its row, on disk. */
export const resultInRow = Object.freeze({ 'chrysalis:result': 'in-row' });

/** True for `resultInRow` as read back from Redis. */
export const isResultInRow = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && (value as Record<string, unknown>)['chrysalis:result'] === 'in-row';

/** The payload part of a job's BullMQ data: the payload itself when small enough, else a note that the row has it. */
export function queuedPayload(payload: unknown): Pick<QueuedJobData, 'payload' | 'payloadInRow'> {
  // A payload that came as JSON text (a batch's: lib/json-text.ts) is measured by it, and parsed only to be carried.
  if (payload instanceof JsonText) {
    // A string's UTF-8 bytes are at least its length: a 15 MB text is not scanned to learn it is over 8 KiB.
    return payload.text.length <= inlinePayloadMaxBytes && Buffer.byteLength(payload.text) <= inlinePayloadMaxBytes
      ? { payload: JSON.parse(payload.text) as unknown }
      : { payloadInRow: true };
  }
  return fitsJsonBytes(payload, inlinePayloadMaxBytes) ? { payload } : { payloadInRow: true };
}

/**
 * Redis keeps finished jobs only briefly: PostgreSQL is the record. Completed jobs stay an hour
 * (at most 10,000 per queue), failed ones a day (at most 10,000), enough for Bull Board. The job queues'
 * workers apply it (BullMQ's worker options, used when a job has none of its own), so no job carries it in
 * its options: two objects fewer to pack, unpack and store per job.
 */
export const retention = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 24 * 3600, count: 10_000 },
} satisfies Pick<WorkerOptions, 'removeOnComplete' | 'removeOnFail'>;

/**
 * Events BullMQ keeps in each queue's event stream (its default is 10,000, for every one of 16 shards: up to
 * 19 MiB of Redis in the fairness bench's backlog). Only a job's event stream (SSE) reads them, from 5 s back
 * (api/job-waiter.ts): 4,000 hold that at ~750 events a second per shard (3,000 jobs/s over 16 shards).
 */
export const eventStreamMaxLen = 4000;

/**
 * How many jobs one shard's worker runs at once: the type's concurrency divided over its shards, at least
 * 2 (so one long job never leaves a shard idle). Jobs spread evenly over shards, so the sum behaves like one
 * worker of the full concurrency.
 */
export function shardConcurrency(typeConcurrency: number, shards: number): number {
  return Math.max(2, Math.ceil(typeConcurrency / shards));
}

/** Where the queues live: the plain BullMQ prefix and the shard count of sharded types. */
export type QueueLayout = Pick<Config, 'queuePrefix' | 'queueShards'> & Partial<Pick<Config, 'jobBundleSize'>>;

/**
 * The job types' BullMQ queues: one per type and shard (`{invoke.0}` … `{invoke.15}`), one for a type
 * that is not sharded (`{metering}`). A job's queue follows from its type and id (`forJob`).
 */
export interface JobQueues {
  /** The plain BullMQ prefix they live under. */
  readonly prefix: string;
  /** Most jobs of one bulk submit one BullMQ job carries (JOB_BUNDLE_SIZE; 1: none). */
  readonly bundleSize: number;
  /** The job types, in registry order. */
  types(): string[];
  /** Every queue of a type, shard 0 first (one for a type that is not sharded). Throws for an unknown type. */
  ofType(type: string): JobQueue[];
  /** The queue holding job `id` of `type` (its shard: `shardOf(id)`). Throws for an unknown type. */
  forJob(type: string, id: string): JobQueue;
  /** Every queue of every type. */
  all(): JobQueue[];
  /** Pauses every queue (globally: no worker takes their jobs until resumed). */
  pause(): Promise<void>;
  close(): Promise<void>;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether a BullMQ job id can be a row's: every job is accepted as a row first and enqueued under the
 * row's UUID. Anything else (a scheduler's job from an earlier version, a hand-made add) has no row.
 */
export const isRowId = (queueJobId: string | undefined): queueJobId is string => queueJobId !== undefined && uuidPattern.test(queueJobId);

/**
 * One BullMQ queue per job type of `registry` (default: Chrysalis's) and shard — `queueShards` of them for
 * a type whose definition says `queue.sharded`, one otherwise — all sharing one connection.
 */
export function createQueues(connection: RedisClient, layout: QueueLayout, registry: JobRegistry = jobRegistry): JobQueues {
  const byType = new Map<string, JobQueue[]>();
  for (const definition of registry.values()) {
    const shards = definition.queue.sharded ? layout.queueShards : null;
    const names =
      shards === null
        ? [queueName(definition.name, null)]
        : Array.from({ length: shards }, (_, shard) => queueName(definition.name, shard));
    byType.set(
      definition.name,
      names.map((name) => {
        const queue = new Queue<QueuedJobData>(name, {
          connection,
          prefix: layout.queuePrefix,
          streams: { events: { maxLen: eventStreamMaxLen } },
          defaultJobOptions: {
            attempts: definition.queue.attempts,
            backoff: { type: 'exponential', delay: definition.queue.backoffMs },
          },
        });
        // A Queue re-emits its connection's errors; with no listener BullMQ prints each one's stack to stderr
        // (every reconnect attempt while Redis is down). A failed add is what matters, and its caller handles it.
        queue.on('error', () => undefined);
        return queue;
      }),
    );
  }
  const ofType = (type: string): JobQueue[] => {
    const queues = byType.get(type);
    if (!queues) throw new Error(`no queue for job type "${type}"`);
    return queues;
  };
  const all = () => [...byType.values()].flat();
  return {
    prefix: layout.queuePrefix,
    bundleSize: layout.jobBundleSize ?? 1,
    types: () => [...byType.keys()],
    ofType,
    forJob(type, id) {
      const queues = ofType(type);
      return queues[shardOf(id, queues.length)] as JobQueue;
    },
    all,
    async pause() {
      await Promise.all(all().map((queue) => queue.pause()));
    },
    async close() {
      await Promise.all(all().map((queue) => queue.close()));
    },
  };
}

/**
 * Splits jobs by the queue each belongs to (its type's shard for its id), keeping their order within a
 * queue: one `addBulk` or pipeline per group, never one across queues (on a cluster they are other slots).
 */
export function groupByQueue<Item>(
  queues: JobQueues,
  items: Iterable<Item>,
  keyOf: (item: Item) => { type: string; id: string },
): Map<JobQueue, Item[]> {
  const groups = new Map<JobQueue, Item[]>();
  for (const item of items) {
    const { type, id } = keyOf(item);
    const queue = queues.forJob(type, id);
    const group = groups.get(queue);
    if (group) group.push(item);
    else groups.set(queue, [item]);
  }
  return groups;
}
