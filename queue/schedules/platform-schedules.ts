import type { Config } from '../../config.js';
import type { ScheduleRepeat } from '../../jobs/define-job.js';
import { jobRegistry, type JobRegistry } from '../../jobs/registry.js';
import { tickJobOptions, type ScheduleTickQueue } from './tick-queue.js';

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
  type: string;
  repeat: ScheduleRepeat;
}

/** The back office's schedules (SPEC §6): each job type that declares a `schedule`, timed from the configuration. */
export function platformSchedules(config: Config, registry: JobRegistry = jobRegistry): PlatformSchedule[] {
  return [...registry.values()].flatMap((definition) =>
    definition.schedule ? [{ id: `platform:${definition.name}`, type: definition.name, repeat: definition.schedule(config) }] : [],
  );
}

/**
 * Creates or updates the platform's BullMQ job schedulers on the tick queue; each tick submits the run as
 * an ordinary job of the system customer. Called by every worker process at start: an upsert with
 * unchanged settings keeps the scheduler's next run (so restarts and extra processes neither duplicate nor
 * delay runs), and changed settings replace it. An `every` scheduler fires once at once.
 */
export async function upsertPlatformSchedules(
  ticks: ScheduleTickQueue,
  config: Config,
  registry: JobRegistry = jobRegistry,
): Promise<PlatformSchedule[]> {
  const schedules = platformSchedules(config, registry);
  for (const schedule of schedules) {
    await ticks.upsertJobScheduler(schedule.id, schedule.repeat, {
      name: 'tick',
      data: { kind: 'platform', type: schedule.type },
      opts: tickJobOptions,
    });
  }
  return schedules;
}
