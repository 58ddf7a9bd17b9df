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

const fiveFields = ['minute', 'hour', 'day-of-month', 'month', 'day-of-week'];
const sixFields = ['second', ...fiveFields];

/** The message for a cron that is not cron-shaped at all (cron-parser's own would name an "alias"). */
const cronShapeProblem = `must be 5 fields (${fiveFields.join(' ')}) or 6 with seconds first, such as "0 9 * * *" (09:00 every day), or an alias such as @daily`;

/**
 * Null when `cron` parses (cron-parser, the parser BullMQ itself uses; 5 fields, or 6 with seconds),
 * names fixed times (no `H`) and no two of its next runs are closer than 10 s; else why not, in words a
 * person can act on, as a predicate of the field ("must be 5 fields …").
 */
export function cronProblem(cron: string, tz: string): string | null {
  // First: whether an expression with `H` parses, and how often it fires, depends on the draw.
  const hashed = hashedField(cron);
  if (hashed) return hashed;
  let runs: number[];
  try {
    runs = CronExpressionParser.parse(cron, { tz })
      .take(cronRunsChecked)
      .map((date) => date.getTime());
  } catch {
    return cronParseProblem(cron);
  }
  if (runs.length === 0) return 'never fires';
  for (let i = 1; i < runs.length; i++) {
    if ((runs[i] as number) - (runs[i - 1] as number) < minScheduleIntervalMs) return 'fires more often than every 10 seconds';
  }
  return null;
}

/**
 * Why `cron` is refused for using `H`, or null. cron-parser's extensions are all
 * deterministic (`?` is `*`; `L` and `#` name calendar days; it has no `W`) but `H`, in every form (`H`,
 * `H/15`, `H(0-29)`, `H(0-29)/5`, `H#3`): a random value, drawn again each time the expression is parsed
 * unless a seed is given. BullMQ parses the pattern again before every run without one, so `H * * * * *`
 * fires at a random second each time (runs 2 s apart, or 60 s and more), and the 10-second check above and
 * the per-minute budget would judge one random draw of it. Refusing `H` is the simple, safe rule. Read as
 * cron-parser does: month and day-of-week names (`THU`) are replaced before `H` is looked for.
 */
function hashedField(cron: string): string | null {
  const fields = cron.trim().split(/\s+/);
  const names = fields.length === 5 ? fiveFields : fields.length === 6 ? sixFields : null;
  if (!names) return null;
  for (const [index, value] of fields.entries()) {
    const name = names[index];
    const read = name === 'month' || name === 'day-of-week' ? value.replace(/[a-z]{3}/gi, '') : value;
    if (read.includes('H'))
      return `${name} field "${value}" uses H, which is not supported: H picks a new random value every time the expression is read, so the runs would come at random times; write a fixed value instead, such as 0 or a step such as */15`;
  }
  return null;
}

/**
 * Why cron-parser refused `cron`: the wrong number of fields, or the first field it refuses on its own
 * (every other field `*`), with the allowed range when cron-parser names one. Fields valid one by one
 * can still name no real date (`0 0 30 2 *`, February 30).
 */
function cronParseProblem(cron: string): string {
  const fields = cron.trim().split(/\s+/);
  const names = fields.length === 5 ? fiveFields : fields.length === 6 ? sixFields : null;
  if (!names || cron.trim().startsWith('@')) return cronShapeProblem;
  for (const [index, value] of fields.entries()) {
    const alone = fields.map((_, i) => (i === index ? value : '*')).join(' ');
    try {
      CronExpressionParser.parse(alone);
    } catch (fieldError) {
      const range = /expected range (\d+-\d+)/.exec(String(fieldError))?.[1];
      const named = names[index] === 'month' ? ', a name such as JAN' : names[index] === 'day-of-week' ? ', a name such as MON' : '';
      return range
        ? `${names[index]} field "${value}" must be within ${range}`
        : `${names[index]} field "${value}" is not valid: use a number, a range such as 1-5, a list such as 1,15, a step such as */15${named} or *`;
    }
  }
  return 'never fires: its fields together name no date that exists (such as day 30 of month 2)';
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

/** Upcoming runs of a cron expression inspected for its peak rate: at most 6 a minute, so this spans 10 minutes or more. */
const cronRunsForRate = 60;

/**
 * The most runs a schedule makes in any 60-second window: `ceil(60 s / every_ms)` for an interval; for a cron
 * expression, the densest minute among its next 60 runs. A schedule's cost is its peak, not its average:
 * an hourly run of 10,000 items submits all of them in one minute. Assumes the timing is valid (checked first).
 */
export function peakRunsPerMinute(timing: { cron: string; tz: string } | { everyMs: number }): number {
  if ('everyMs' in timing) return Math.ceil(60_000 / timing.everyMs);
  let runs: number[];
  try {
    runs = CronExpressionParser.parse(timing.cron, { tz: timing.tz })
      .take(cronRunsForRate)
      .map((date) => date.getTime());
  } catch {
    return 1;
  }
  let peak = runs.length > 0 ? 1 : 0;
  for (let first = 0, last = 0; last < runs.length; last++) {
    while ((runs[last] as number) - (runs[first] as number) >= 60_000) first++;
    peak = Math.max(peak, last - first + 1);
  }
  return peak;
}
