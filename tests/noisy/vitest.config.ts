import { defineConfig } from 'vitest/config';

/**
 * `npm run test:noisy`: the noisy-neighbour attacks of issue 15 against a real API process and a real
 * worker process, a victim customer measured throughout. One file, one instance, the attacks one after
 * another: each owns the machine while it runs. NOISY_SCALE (default 0.2) and NOISY_WINDOW_SECONDS
 * (default 12) size them; `npm run bench -- --only=noisy` runs them at full size.
 */
export default defineConfig({
  test: {
    include: ['tests/noisy/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
