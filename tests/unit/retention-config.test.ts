import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';
import { jobScanBound, uuidv7Floor } from '../../db/jobs/expire-jobs.js';

const services = {
  DATABASE_URL: 'postgresql://127.0.0.1:5432/unused',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATA_DIR: '.data/test',
  NODE_ENV: 'test',
};

describe('retention configuration', () => {
  it('defaults to jobs 30 days on every tier, request logs 90, webhook deliveries 30, hourly runs of 5,000-row steps', () => {
    const config = loadConfig(services);
    expect(config.jobRetentionDays).toEqual({ starter: 30, pro: 30, enterprise: 30 });
    expect([config.requestLogRetentionDays, config.webhookRetentionDays]).toEqual([90, 30]);
    expect([config.retentionEveryMs, config.retentionStepRows]).toEqual([3_600_000, 5000]);
  });

  it('takes per-tier days; a tier left out keeps JOB_RETENTION_DAYS, and 0 keeps a tier’s jobs', () => {
    const config = loadConfig({ ...services, JOB_RETENTION_DAYS: '14', JOB_RETENTION_DAYS_BY_TIER: 'starter=7, enterprise=0' });
    expect(config.jobRetentionDays).toEqual({ starter: 7, pro: 14, enterprise: 0 });
  });

  it('refuses a bad value, naming the variable', () => {
    for (const [name, value] of [
      ['JOB_RETENTION_DAYS', '-1'],
      ['JOB_RETENTION_DAYS', 'forever'],
      ['JOB_RETENTION_DAYS_BY_TIER', 'gold=5'],
      ['JOB_RETENTION_DAYS_BY_TIER', 'pro=-1'],
      ['JOB_RETENTION_DAYS_BY_TIER', 'pro=1.5'],
      ['REQUEST_LOG_RETENTION_DAYS', '2.5'],
      ['WEBHOOK_RETENTION_DAYS', '-3'],
      ['RETENTION_STEP_ROWS', '0'],
    ] as const) {
      expect(() => loadConfig({ ...services, [name]: value }), `${name}=${value}`).toThrow(ConfigError);
      expect(() => loadConfig({ ...services, [name]: value })).toThrow(new RegExp(name));
    }
  });
});

describe('WEBHOOK_SWEEP_INTERVAL_MS (the delivery sweep)', () => {
  it('defaults to a minute, takes another interval, and refuses a bad one naming the variable', () => {
    expect(loadConfig(services).webhookSweepIntervalMs).toBe(60_000);
    expect(loadConfig({ ...services, WEBHOOK_SWEEP_INTERVAL_MS: '5000' }).webhookSweepIntervalMs).toBe(5000);
    for (const value of ['50', 'soon', '-1', '1.5', '3600001']) {
      expect(() => loadConfig({ ...services, WEBHOOK_SWEEP_INTERVAL_MS: value }), value).toThrow(/WEBHOOK_SWEEP_INTERVAL_MS/);
    }
  });
});

describe('the job scan bound', () => {
  it('is the UUIDv7 of the newest cutoff (an hour later), and none when every tier keeps its jobs', () => {
    const now = new Date('2026-12-03T12:00:00Z');
    expect(jobScanBound({ starter: 7, pro: 30, enterprise: 0 }, now)).toBe(uuidv7Floor(new Date('2026-11-26T13:00:00Z')));
    expect(jobScanBound({ starter: 0, pro: 0, enterprise: 0 }, now)).toBeNull();
    expect(uuidv7Floor(new Date(0x0123456789ab))).toBe('01234567-89ab-0000-0000-000000000000');
  });

  it("shrinks with a soak's shortened day (RETENTION_DAY_SECONDS), its margin a 24th of that day", () => {
    const now = new Date('2026-12-03T12:00:00Z');
    // 7 "days" of 240 s each, less a 10 s margin: 1,670 s before now.
    expect(jobScanBound({ starter: 7, pro: 0, enterprise: 0 }, now, 240)).toBe(uuidv7Floor(new Date('2026-12-03T11:32:10Z')));
  });
});
