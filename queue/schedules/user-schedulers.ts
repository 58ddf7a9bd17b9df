import type { Schedule } from '../../db/entities/schedule.entity.js';
import { tickJobOptions, type ScheduleTickQueue } from './tick-queue.js';
import { nextCronRun } from './schedule-rules.js';

/**
 * The BullMQ job scheduler id of a customer's schedule. Names are per customer, so the customer id is
 * part of it. Its ticks carry the customer and the name; each run is submitted as that customer's
 * ordinary job (see schedule-ticks/tick.processor.ts).
 */
export const schedulerIdFor = (customerId: string, name: string): string => `cust:${customerId}:${name}`;

/** What the clock needs: when to fire. The job itself is read from the schedule's row at each tick. */
type ScheduleTiming = Pick<Schedule, 'customerId' | 'name' | 'cron' | 'everyMs' | 'tz'>;

/**
 * When an `every` schedule whose scheduler is (re-)created fires first: one interval after its last run, or
 * at once if that time has passed or it never ran (`lastRunAt` null or not given, as for a new schedule).
 */
export function firstEveryRun(everyMs: number, lastRunAt: Date | null | undefined, now: number = Date.now()): number {
  return lastRunAt ? Math.max(lastRunAt.getTime() + everyMs, now) : now;
}

/**
 * BullMQ's repeat options. A cron scheduler fires at the next match after now, whatever came before. An
 * `every` scheduler BullMQ creates (none in Redis, or one with another interval) fires at once unless given
 * a `startDate`; so it gets the first run `firstEveryRun` names, and the `offset` (its phase in the interval)
 * that goes with it: BullMQ would otherwise keep the offset of the interval it replaces, which it uses to
 * realign the runs after missed ones.
 */
function repeatOf(schedule: ScheduleTiming, lastRunAt: Date | null | undefined) {
  if (schedule.cron !== null) return { pattern: schedule.cron, tz: schedule.tz };
  const every = Number(schedule.everyMs);
  const startDate = firstEveryRun(every, lastRunAt);
  return { every, startDate, offset: startDate % every };
}

/**
 * Creates or replaces the schedule's job scheduler on the tick queue. A cron one fires at its next match; an
 * `every` one an interval after `lastRunAt` (when the schedule last ran) or at once if that has passed, then
 * every interval. So resuming, re-timing or restoring a schedule gives it no extra run, and a new one (no
 * `lastRunAt`) runs at once.
 */
export async function upsertScheduler(ticks: ScheduleTickQueue, schedule: ScheduleTiming & { lastRunAt?: Date | null }): Promise<void> {
  await ticks.upsertJobScheduler(schedulerIdFor(schedule.customerId, schedule.name), repeatOf(schedule, schedule.lastRunAt), {
    name: 'tick',
    data: { kind: 'customer', customerId: schedule.customerId, name: schedule.name },
    opts: tickJobOptions,
  });
}

/**
 * Whether Redis holds the schedule's scheduler with this timing. Upserting one that does would be a
 * no-op at best: an `every` scheduler whose next tick is already due or running is given another.
 */
export async function schedulerMatches(ticks: ScheduleTickQueue, schedule: ScheduleTiming): Promise<boolean> {
  const scheduler = await ticks.getJobScheduler(schedulerIdFor(schedule.customerId, schedule.name));
  if (!scheduler) return false;
  return schedule.cron !== null
    ? scheduler.pattern === schedule.cron && (scheduler.tz ?? 'UTC') === schedule.tz
    : !scheduler.pattern && Number(scheduler.every) === Number(schedule.everyMs);
}

/** Removes the scheduler (and its pending tick). Absent is fine. */
export async function removeScheduler(ticks: ScheduleTickQueue, schedule: Pick<Schedule, 'customerId' | 'name'>): Promise<void> {
  await ticks.removeJobScheduler(schedulerIdFor(schedule.customerId, schedule.name));
}

/**
 * When the schedule fires next: null while paused; else BullMQ's own next time, or — if Redis lost the
 * scheduler (a worker starting up puts it back) — what the cron expression says.
 */
export async function nextRunAt(ticks: ScheduleTickQueue, schedule: Schedule): Promise<Date | null> {
  if (schedule.paused) return null;
  const scheduler = await ticks.getJobScheduler(schedulerIdFor(schedule.customerId, schedule.name));
  if (scheduler?.next) return new Date(scheduler.next);
  return schedule.cron !== null ? nextCronRun(schedule.cron, schedule.tz) : null;
}
