import { Queue, type DefaultJobOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobRegistry, type JobRegistry } from '../jobs/registry.js';

/** What the submitter knows that saves a worker work. Absent on jobs the sweeper re-enqueues. */
export interface QueuedJobHints {
  /** Someone waits for the outcome (`Prefer: wait`): announce the finished row (queue/job-notices.ts). */
  notify?: boolean;
  /** The submitter looked the result up in the invocation cache just before and missed. */
  cacheMissed?: boolean;
}

/** What a BullMQ job carries; the PostgreSQL row (same id) holds the rest. */
export interface QueuedJobData extends QueuedJobHints {
  customerId: string;
  payload: unknown;
  /** Set when the job has its own webhook URL, so a worker knows without reading the row. */
  hasWebhookUrl?: boolean;
}

/**
 * Redis keeps finished jobs only briefly: PostgreSQL is the record. Completed jobs stay an hour
 * (at most 10,000 per queue), failed ones a day (at most 10,000), enough for Bull Board.
 */
export const retention: Pick<DefaultJobOptions, 'removeOnComplete' | 'removeOnFail'> = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 24 * 3600, count: 10_000 },
};

export type JobQueues = Map<string, Queue<QueuedJobData>>;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether a BullMQ job id can be a row's: every job is accepted as a row first and enqueued under the
 * row's UUID. Anything else (a scheduler's job from an earlier version, a hand-made add) has no row.
 */
export const isRowId = (queueJobId: string | undefined): queueJobId is string => queueJobId !== undefined && uuidPattern.test(queueJobId);

/** One BullMQ queue per job type of `registry` (default: Chrysalis's), sharing one connection. */
export function createQueues(connection: Redis, prefix: string, registry: JobRegistry = jobRegistry): JobQueues {
  const queues: JobQueues = new Map();
  for (const definition of registry.values()) {
    const queue = new Queue<QueuedJobData>(definition.name, {
      connection,
      prefix,
      defaultJobOptions: {
        attempts: definition.queue.attempts,
        backoff: { type: 'exponential', delay: definition.queue.backoffMs },
        ...retention,
      },
    });
    // A Queue re-emits its connection's errors; with no listener BullMQ prints each one's stack to stderr
    // (every reconnect attempt while Redis is down). A failed add is what matters, and its caller handles it.
    queue.on('error', () => undefined);
    queues.set(definition.name, queue);
  }
  return queues;
}

export function queueFor(queues: JobQueues, type: string): Queue<QueuedJobData> {
  const queue = queues.get(type);
  if (!queue) throw new Error(`no queue for job type "${type}"`);
  return queue;
}

export async function closeQueues(queues: JobQueues): Promise<void> {
  await Promise.all([...queues.values()].map((queue) => queue.close()));
}
