import { graphileWorkerSide } from './graphile-worker.side.js';
import { pgBossSide } from './pg-boss.side.js';
import { rawSide } from './raw.side.js';
import type { PeerSide } from './side.js';

/** Job concurrency of one worker process, as Chrysalis's worker (WORKER_CONCURRENCY) and the raw program run. */
const concurrency = 64;

/** The sides the peers scenario runs besides Chrysalis, raw first (every ratio's baseline). */
export function peerSides(options: { redisUrl: string; queuePrefix: string }): PeerSide[] {
  return [
    rawSide(options),
    graphileWorkerSide('graphile-worker tuned', {
      concurrentJobs: concurrency,
      localQueueSize: 500,
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    }),
    // Its defaults but for concurrency: at one job at a time it would measure a setting nobody runs.
    graphileWorkerSide('graphile-worker default', { concurrentJobs: concurrency }),
    pgBossSide({ workers: 4, batchSize: 100 }),
  ];
}
