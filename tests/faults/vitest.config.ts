import path from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The scenarios in the order issue 8 lists them, so the counts read as a report. */
const scenarioOrder = [
  'redis-down-submit',
  'postgres-down-submit',
  'worker-killed-mid-job',
  'worker-killing-job',
  'postgres-outage',
  'redis-restarts',
  'load-held',
  'cluster-failover',
];

class ScenarioOrder extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const index = scenarioOrder.indexOf(path.basename(file.moduleId, '.test.ts'));
      return index === -1 ? scenarioOrder.length : index;
    };
    return [...files].sort((a, b) => rank(a) - rank(b) || a.moduleId.localeCompare(b.moduleId));
  }
}

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
    sequence: { sequencer: ScenarioOrder },
    testTimeout: 240_000,
    hookTimeout: 180_000,
  },
});
