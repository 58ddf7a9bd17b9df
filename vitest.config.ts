import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/faults/**', 'tests/noisy/**', 'node_modules/**'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    pool: 'forks',
    // Files share their fork's module cache: each fork imports the platform once, not once per file (the suite
    // took 6.4 min instead of 10.5). So a test reads process-wide counters as deltas and never mocks a module.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
