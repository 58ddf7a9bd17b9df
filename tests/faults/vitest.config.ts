import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: real API and worker processes against a redis-server and a PostgreSQL of the
 * suite's own (spare ports, temp dirs), which the scenarios stop, kill and restart. One file at a time:
 * each scenario owns the machine while it breaks things.
 */
export default defineConfig({
  test: {
    include: ['tests/faults/**/*.test.ts'],
    globalSetup: ['tests/faults/harness/global-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 180_000,
    // The per-scenario counts line is the suite's output; keep it visible.
    silent: false,
  },
});
