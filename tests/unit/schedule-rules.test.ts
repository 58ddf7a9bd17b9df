import { describe, expect, it } from 'vitest';
import { cronProblem, intervalProblem, nextCronRun, timeZoneProblem } from '../../queue/schedules/schedule-rules.js';

describe('schedule rules', () => {
  it('accepts 5-field and 6-field cron expressions that fire at most every 10 s', () => {
    expect(cronProblem('0 9 * * 1-5', 'UTC')).toBeNull();
    expect(cronProblem('*/10 * * * * *', 'UTC')).toBeNull();
    expect(cronProblem('@daily', 'Europe/Paris')).toBeNull();
  });

  it('refuses cron expressions that do not parse or fire too often, saying why', () => {
    expect(cronProblem('61 * * * *', 'UTC')).toBe('minute field "61" must be within 0-59');
    expect(cronProblem('every day', 'UTC')).toMatch(
      /^must be 5 fields \(minute hour day-of-month month day-of-week\) or 6 with seconds first/,
    );
    expect(cronProblem('* * * * * *', 'UTC')).toBe('fires more often than every 10 seconds');
    expect(cronProblem('0,5 * * * * *', 'UTC')).toBe('fires more often than every 10 seconds');
  });

  it('knows IANA zones, UTC included, and names an unknown one', () => {
    expect(timeZoneProblem('UTC')).toBeNull();
    expect(timeZoneProblem('America/New_York')).toBeNull();
    expect(timeZoneProblem('Moon/Tranquility')).toBe('Moon/Tranquility is not an IANA time zone');
  });

  it('bounds intervals to 10 s … 366 days', () => {
    expect(intervalProblem(10_000)).toBeNull();
    expect(intervalProblem(9_999)).toMatch(/at least 10000/);
    expect(intervalProblem(367 * 24 * 3600 * 1000)).toMatch(/at most/);
  });

  it('computes the next cron run in the schedule time zone', () => {
    const from = new Date('2026-03-01T12:00:00Z');
    expect(nextCronRun('0 9 * * *', 'Europe/Paris', from)?.toISOString()).toBe('2026-03-02T08:00:00.000Z');
    expect(nextCronRun('0 9 * * *', 'UTC', from)?.toISOString()).toBe('2026-03-02T09:00:00.000Z');
  });
});
