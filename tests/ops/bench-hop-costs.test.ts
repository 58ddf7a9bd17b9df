import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';

// A smoke run of ops/bench/hop-costs.ts: the steps it times must be the real ones (every final write completed
// its job, or it fails) and it must leave no database behind.
describe('bench hop-costs', () => {
  it('prints p50 and p90 of each step and drops its database', async () => {
    const { stdout } = await promisify(execFile)('npx', ['tsx', 'ops/bench/hop-costs.ts'], {
      env: { ...process.env, DATABASE_URL: inject('adminDatabaseUrl'), REDIS_URL: inject('redisUrl'), HOP_CALLS: '20' },
      timeout: 60_000,
    });
    const figures = JSON.parse(stdout) as Record<string, unknown>;
    const steps = Object.entries(figures).filter(([, value]) => typeof value === 'object') as Array<
      [string, { p50_ms: number; p90_ms: number }]
    >;
    expect(steps.map(([name]) => name)).toEqual([
      'quick job insert (insertJobs)',
      'final state write with notice (writeFinalStates)',
      'BullMQ add',
      'CEL evaluation through the worker pool (taskRunner)',
    ]);
    for (const [, { p50_ms, p90_ms }] of steps) {
      expect(p50_ms).toBeGreaterThan(0);
      expect(p90_ms).toBeGreaterThanOrEqual(p50_ms);
    }
    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    try {
      const { rows } = await admin.query(`select datname from pg_database where datname like 'chrysalis_hops_%'`);
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
    }
  }, 90_000);
});
