import type { Config } from '../../config.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { tickJobOptions, type PlatformJobType, type ScheduleTickQueue } from './tick-queue.js';

/**
 * The customer the platform's own scheduled jobs are recorded under: the nil UUID, which no customer has
 * (customer ids are UUIDv7). A fixed id rather than the admin's, so workers can schedule before any admin
 * exists and the runs never mix with an admin's own jobs; operators see them in Bull Board and in `jobs`
 * rows with this `customer_id`. Its runs are neither rate-limited nor recorded as usage, so never billed.
 */
export const systemCustomerId = '00000000-0000-0000-0000-000000000000';

export interface PlatformSchedule {
  /** BullMQ job scheduler id on the tick queue, `platform:<job type>` (user schedules use `cust:…`, so they never collide); also the runs' `schedule_name`. */
  id: string;
  type: PlatformJobType;
  repeat: { every: number } | { pattern: string; tz: 'UTC' };
}

/** The back office's schedules (SPEC §6): intervals and the rollover cron come from the configuration. */
export function platformSchedules(config: Pick<Config, 'meteringEveryMs' | 'billingEveryMs' | 'vaultExportEveryMs' | 'monthRolloverCron'>): PlatformSchedule[] {
  return [
    { id: 'platform:metering', type: 'metering', repeat: { every: config.meteringEveryMs } },
    { id: 'platform:billing', type: 'billing', repeat: { every: config.billingEveryMs } },
    { id: 'platform:vault-export', type: 'vault-export', repeat: { every: config.vaultExportEveryMs } },
    { id: 'platform:month-rollover', type: 'month-rollover', repeat: { pattern: config.monthRolloverCron, tz: 'UTC' } },
  ];
}

/**
 * Creates or updates the platform's BullMQ job schedulers on the tick queue; each tick submits the run as
 * an ordinary job of the system customer. Called by every worker process at start: an upsert with
 * unchanged settings keeps the scheduler's next run (so restarts and extra processes neither duplicate nor
 * delay runs), and changed settings replace it. An `every` scheduler fires once at once.
 */
export async function upsertPlatformSchedules(ticks: ScheduleTickQueue, config: Parameters<typeof platformSchedules>[0]): Promise<PlatformSchedule[]> {
  const schedules = platformSchedules(config);
  for (const schedule of schedules) {
    if (!getJobDefinition(schedule.type)) throw new Error(`platform schedule ${schedule.id}: no job type "${schedule.type}"`);
    await ticks.upsertJobScheduler(schedule.id, schedule.repeat, { name: 'tick', data: { kind: 'platform', type: schedule.type }, opts: tickJobOptions });
  }
  return schedules;
}
