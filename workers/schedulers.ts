import type { Config } from '../config.js';
import { getJobDefinition } from '../jobs/registry.js';
import { queueFor, type JobQueues } from './queues.js';

/**
 * The customer the platform's own scheduled jobs are recorded under: the nil UUID, which no customer has
 * (customer ids are UUIDv7). A fixed id rather than the admin's, so workers can schedule before any admin
 * exists and the runs never mix with an admin's own jobs; operators see them in Bull Board and in `jobs`
 * rows with this `customer_id`.
 */
export const systemCustomerId = '00000000-0000-0000-0000-000000000000';

export interface PlatformSchedule {
  /** BullMQ job scheduler id, `platform:<job type>` (user schedules use `cust:…`, so they never collide). */
  id: string;
  type: 'metering' | 'billing' | 'vault-export' | 'month-rollover';
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
 * Creates or updates the platform's BullMQ job schedulers. Called by every worker process at start: an
 * upsert with unchanged settings keeps the scheduler's next run (so restarts and extra processes neither
 * duplicate nor delay runs), and changed settings replace it. An `every` scheduler fires once at once.
 */
export async function upsertPlatformSchedules(queues: JobQueues, config: Parameters<typeof platformSchedules>[0]): Promise<PlatformSchedule[]> {
  const schedules = platformSchedules(config);
  for (const schedule of schedules) {
    const definition = getJobDefinition(schedule.type);
    if (!definition) throw new Error(`platform schedule ${schedule.id}: no job type "${schedule.type}"`);
    await queueFor(queues, schedule.type).upsertJobScheduler(schedule.id, schedule.repeat, {
      name: schedule.type,
      data: { customerId: systemCustomerId, payload: {} },
      opts: { attempts: definition.queue.attempts, backoff: { type: 'exponential', delay: definition.queue.backoffMs } },
    });
  }
  return schedules;
}
