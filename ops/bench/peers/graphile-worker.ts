/**
 * The graphile-worker side of the peers scenario: one process running graphile-worker on the side's
 * database with the settings in BENCH_PEER_SETTINGS (GraphileWorkerSettings), its `invoke` task doing
 * the same work as every other side (peer-work.ts). The bench enqueues with addJobs.
 */
import { Logger, run } from 'graphile-worker';
import type { GraphileWorkerSettings } from './graphile-worker.side.js';
import { createPeerWork } from './peer-work.js';
import type { EvaluateInput } from '../../../jobs/invoke/evaluate.task.js';

const settings = JSON.parse(process.env.BENCH_PEER_SETTINGS ?? '{}') as GraphileWorkerSettings;
const work = createPeerWork();
// Its info lines (one per job start and finish at debug) would cost CPU the other sides do not spend.
const logger = new Logger(() => (level: string, message: string) => {
  if (level === 'error') process.stderr.write(`${message}\n`);
});

const runner = await run({
  connectionString: process.env.DATABASE_URL,
  concurrency: settings.concurrentJobs,
  ...(settings.maxPoolSize ? { maxPoolSize: settings.maxPoolSize } : {}),
  noHandleSignals: true,
  logger,
  preset: {
    worker: {
      ...(settings.localQueueSize ? { localQueue: { size: settings.localQueueSize } } : {}),
      ...(settings.completeJobBatchDelay !== undefined ? { completeJobBatchDelay: settings.completeJobBatchDelay } : {}),
      ...(settings.failJobBatchDelay !== undefined ? { failJobBatchDelay: settings.failJobBatchDelay } : {}),
    },
  },
  taskList: {
    invoke: async (payload, helpers) => {
      const value = await work.evaluate(payload as EvaluateInput);
      await work.persist({ id: helpers.job.id, value });
    },
  },
});
await work.signalReady();

process.once('SIGTERM', async () => {
  await runner.stop();
  await work.close();
  process.exit(0);
});
