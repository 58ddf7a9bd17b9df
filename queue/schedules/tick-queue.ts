import { Queue } from 'bullmq';
import type { RedisClient } from '../../lib/redis.js';
import { queueName } from '../queue-names.js';

/**
 * The internal queue of schedule ticks. BullMQ job schedulers are the clock: each fires a small tick job
 * here naming the schedule, and the tick processor submits the run as an ordinary job (a UUIDv7 row first,
 * the same id in BullMQ). Its own hash tag, `{schedule-tick}`; one queue (ticks are few). Not a job type:
 * nobody can POST /jobs to it.
 */
export const scheduleTickQueueName = queueName('schedule-tick', null);

/** Which schedule a tick is for; the schedule's definition is read from PostgreSQL when it fires. */
export type ScheduleTickData = { kind: 'customer'; customerId: string; name: string } | { kind: 'platform'; type: string };

export type ScheduleTickQueue = Queue<ScheduleTickData>;

/**
 * A tick that fails (PostgreSQL down, say) is tried again for about a minute; it names its run by its own
 * BullMQ id, so a retried tick never submits a second job. Ticks are kept briefly: the jobs are the record.
 */
export const tickJobOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 24 * 3600, count: 1000 },
} as const;

export function createScheduleTickQueue(connection: RedisClient, prefix: string): ScheduleTickQueue {
  const queue = new Queue<ScheduleTickData>(scheduleTickQueueName, { connection, prefix, defaultJobOptions: tickJobOptions });
  // Connection errors re-emitted by the queue would otherwise be printed raw on every reconnect attempt.
  queue.on('error', () => undefined);
  return queue;
}
