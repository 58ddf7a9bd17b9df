import { makeWorkerUtils } from 'graphile-worker';
import { collectGarbage, startChild } from '../harness.js';
import { inChunks, type PeerSide } from './side.js';

/** What the bench sets in the graphile-worker process; anything left out keeps graphile-worker's own default. */
export interface GraphileWorkerSettings {
  concurrentJobs: number;
  maxPoolSize?: number;
  /** `preset.worker.localQueue.size`: jobs fetched and locked per query (off by default). */
  localQueueSize?: number;
  /** `preset.worker.completeJobBatchDelay`: ms to gather completions into one statement (off, -1, by default). */
  completeJobBatchDelay?: number;
  failJobBatchDelay?: number;
}

/** graphile-worker in its own process (graphile-worker.ts); the bench enqueues with `addJobs`, 1,000 specs a call. */
export function graphileWorkerSide(name: string, settings: GraphileWorkerSettings): PeerSide {
  return {
    name,
    settings: { ...settings },
    async start(database) {
      const child = startChild(
        'ops/bench/peers/graphile-worker.ts',
        { DATABASE_URL: database.workerUrl, BENCH_PEER_SETTINGS: JSON.stringify(settings) },
        name,
      );
      await database.waitForWorker(child.process.pid);
      await collectGarbage(child.process.pid);
      const utils = await makeWorkerUtils({ connectionString: database.url });
      return {
        pid: child.process.pid,
        enqueue: (jobs) => inChunks(jobs, (chunk) => utils.addJobs(chunk.map((payload) => ({ identifier: 'invoke', payload })))),
        async stop() {
          await child.stop();
          await utils.release();
        },
      };
    },
  };
}
