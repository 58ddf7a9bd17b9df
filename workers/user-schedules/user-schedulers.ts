import type { Schedule } from '../../db/entities/schedule.entity.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { queueFor, type JobQueues } from '../queues.js';
import { nextCronRun } from './schedule-rules.js';

/**
 * The BullMQ job scheduler id of a customer's schedule. Names are per customer, so the customer id is
 * part of it; the jobs it creates (`repeat:<scheduler id>:<millis>`) are recorded under stable row ids
 * by the processor and carry `customerId`, so they are that customer's ordinary jobs.
 */
export const schedulerIdFor = (customerId: string, name: string): string => `cust:${customerId}:${name}`;

type ScheduleSpec = Pick<Schedule, 'customerId' | 'name' | 'cron' | 'everyMs' | 'tz' | 'jobType' | 'payload'>;

/** Creates or replaces the BullMQ job scheduler on the job type's queue. An `every` schedule fires at once, then every interval. */
export async function upsertScheduler(queues: JobQueues, schedule: ScheduleSpec): Promise<void> {
  const definition = getJobDefinition(schedule.jobType);
  if (!definition) throw new Error(`no job type "${schedule.jobType}"`);
  const repeat = schedule.cron !== null ? { pattern: schedule.cron, tz: schedule.tz } : { every: Number(schedule.everyMs) };
  await queueFor(queues, schedule.jobType).upsertJobScheduler(schedulerIdFor(schedule.customerId, schedule.name), repeat, {
    name: schedule.jobType,
    data: { customerId: schedule.customerId, payload: schedule.payload },
    opts: { attempts: definition.queue.attempts },
  });
}

/** Removes the BullMQ scheduler (and its pending next job). Absent is fine. */
export async function removeScheduler(queues: JobQueues, schedule: Pick<Schedule, 'customerId' | 'name' | 'jobType'>): Promise<void> {
  await queueFor(queues, schedule.jobType).removeJobScheduler(schedulerIdFor(schedule.customerId, schedule.name));
}

/**
 * When the schedule fires next: null while paused; else BullMQ's own next time, or — if Redis lost the
 * scheduler — what the cron expression says.
 */
export async function nextRunAt(queues: JobQueues, schedule: Schedule): Promise<Date | null> {
  if (schedule.paused) return null;
  const scheduler = await queueFor(queues, schedule.jobType).getJobScheduler(schedulerIdFor(schedule.customerId, schedule.name));
  if (scheduler?.next) return new Date(scheduler.next);
  return schedule.cron !== null ? nextCronRun(schedule.cron, schedule.tz) : null;
}
