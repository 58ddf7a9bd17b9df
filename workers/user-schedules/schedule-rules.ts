import { CronExpressionParser } from 'cron-parser';

/** No schedule fires more often than every 10 s. */
export const minScheduleIntervalMs = 10_000;
/** Nor less often than once a year (a longer `every_ms` is almost certainly a unit mistake). */
export const maxScheduleIntervalMs = 366 * 24 * 3600 * 1000;
/** Schedules one customer may keep (paused ones count). */
export const maxSchedulesPerCustomer = 100;

/** Upcoming runs inspected to tell how often a cron expression fires. */
const cronRunsChecked = 20;

/** Null when `tz` is an IANA time zone this runtime knows; else why not. */
export function timeZoneProblem(tz: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return null;
  } catch {
    return `${tz} is not an IANA time zone`;
  }
}

/**
 * Null when `cron` parses (cron-parser, the parser BullMQ itself uses; 5 fields, or 6 with seconds)
 * and no two of its next runs are closer than 10 s; else why not.
 */
export function cronProblem(cron: string, tz: string): string | null {
  let runs: number[];
  try {
    runs = CronExpressionParser.parse(cron, { tz })
      .take(cronRunsChecked)
      .map((date) => date.getTime());
  } catch (error) {
    return `cron expression does not parse: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (runs.length === 0) return 'cron expression never fires';
  for (let i = 1; i < runs.length; i++) {
    if ((runs[i] as number) - (runs[i - 1] as number) < minScheduleIntervalMs) return 'cron expression fires more often than every 10 seconds';
  }
  return null;
}

/** Null when an `every_ms` interval is allowed; else why not. */
export function intervalProblem(everyMs: number): string | null {
  if (everyMs < minScheduleIntervalMs) return `must be at least ${minScheduleIntervalMs} (10 seconds)`;
  if (everyMs > maxScheduleIntervalMs) return `must be at most ${maxScheduleIntervalMs} (366 days)`;
  return null;
}

/** The next run of a cron expression after `from`, or null if it never fires again. */
export function nextCronRun(cron: string, tz: string, from: Date = new Date()): Date | null {
  try {
    return CronExpressionParser.parse(cron, { tz, currentDate: from }).next().toDate();
  } catch {
    return null;
  }
}
